//! Chain storage: the [`ChainStore`] trait and its one implementation, [`Store`], over a
//! key-value backend ([`Kv`]): sled 0.34.7 ([`SledKv`]) on disk, or a `BTreeMap` ([`MemKv`]) in
//! tests. `sled` is named nowhere else in the workspace.
//!
//! Invariants:
//! - one writer (the node's chain actor) calls [`ChainStore::commit_block`]; everyone reads;
//! - a block and all its index entries are written in **one atomic batch**, then flushed to disk
//!   before `commit_block` returns, so nothing acknowledged is lost in a crash; its record
//!   (transactions and history nodes) goes first to the backend's append-only log and is made
//!   durable before that batch (which holds its location) is applied, so no key ever points at
//!   bytes a crash can lose, and bytes no key points at are cut from the log's end at start-up;
//! - every table lives in one ordered keyspace under a one-byte prefix (see [`keys`]); main tables
//!   are keyed by height or sequence number, hashes map to positions in separate indexes;
//! - the store belongs to one chain: [`ChainStore::init`] refuses a data dir of another chain,
//!   and a data dir of another key layout ([`keys::LAYOUT`]) except the one it upgrades in
//!   place ([`keys::UPGRADES_IN_PLACE`]);
//! - sled is paid per key written and rewrites large values, so a block writes few small
//!   values: its transactions and history nodes in one record in the log ([`block_record`]),
//!   index entries per block ([`id_index`], posting lists in [`keys`]).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod block_record;
pub mod id_index;
pub mod keys;
pub mod kv;
mod store;

pub use kv::{Kv, MemKv, SledKv};
pub use store::Store;

use std::collections::BTreeMap;

use auditchain_primitives::codec::CodecError;
use auditchain_primitives::merkle::NewNode;
use auditchain_primitives::receipt::SetChangeWitness;
use auditchain_primitives::tx::WireTx;
use auditchain_primitives::vote::{CommitCertificate, Equivocation, Vote, WireCertifiedBlock};
use auditchain_primitives::{Block, Hash, Header, PublicKey, Signature, Transaction};
use serde::{Deserialize, Serialize};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The backend (sled, file system) failed.
    #[error("storage backend: {0}")]
    Backend(String),
    /// A stored value does not decode or contradicts another.
    #[error("corrupt store: {what}")]
    Corrupt {
        /// What is wrong, naming the key or height.
        what: String,
    },
    /// The data dir belongs to another chain.
    #[error("data dir belongs to chain {found}, but the genesis is for chain {expected}")]
    WrongChain {
        /// Genesis hash of the configured genesis.
        expected: Hash,
        /// Genesis hash stored in the data dir.
        found: Hash,
    },
    /// The data dir was written with another key layout ([`keys::LAYOUT`]).
    #[error(
        "data dir uses storage layout {found}, this node reads layout {expected}: start with an empty data dir and let the node sync from its peers"
    )]
    Layout {
        /// Layout found (1 when the data dir predates layout versions).
        found: u64,
        /// Layout of this build.
        expected: u64,
    },
    /// A commit does not extend the head.
    #[error("block {height} does not extend head {head}")]
    NotNext {
        /// Height of the block offered.
        height: u64,
        /// Current head height.
        head: u64,
    },
    /// Encoding a value failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// A header with its seal, as stored per height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedHeader {
    /// The header.
    pub header: Header,
    /// The proposer's seal.
    pub seal: Signature,
}

/// A committed transaction with its position. Decoded from storage through
/// [`Transaction::from_stored`] (the node checked it in full before storing it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredTxWire")]
pub struct StoredTx {
    /// Height of the including block.
    pub height: u64,
    /// Index within the block.
    pub index: u32,
    /// The transaction.
    pub tx: Transaction,
}

impl StoredTx {
    /// Appends the canonical encoding of the transaction `tx` at `(height, index)` to `out`:
    /// the bytes [`auditchain_primitives::codec::encode`] gives for a [`StoredTx`] (height
    /// `u64`, index `u32`, body text prefixed by its length as a `u64`, 64 signature bytes, all
    /// big-endian; the codec of `docs/blocks.md`), written directly: the serde path wrote the
    /// signature one byte at a time, about a tenth of the block writer's CPU under ingest.
    pub fn encode_into(height: u64, index: u32, tx: &Transaction, out: &mut Vec<u8>) {
        let body = tx.body_text().as_bytes();
        out.reserve(8 + 4 + 8 + body.len() + Signature::LEN);
        out.extend_from_slice(&height.to_be_bytes());
        out.extend_from_slice(&index.to_be_bytes());
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&tx.signature().0);
    }
}

/// The stored form of [`StoredTx`]: the same bytes (a transaction encodes as its
/// [`WireTx`]), decoded without the canonical-form check.
#[derive(Deserialize)]
struct StoredTxWire {
    height: u64,
    index: u32,
    tx: WireTx,
}

impl TryFrom<StoredTxWire> for StoredTx {
    type Error = auditchain_primitives::TxError;
    fn try_from(w: StoredTxWire) -> Result<Self, Self::Error> {
        Ok(StoredTx {
            height: w.height,
            index: w.index,
            tx: Transaction::from_stored(w.tx)?,
        })
    }
}

/// A secondary index over committed transactions, scanned in sequence (chain) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexKey {
    /// Transactions about an entity.
    Entity(String),
    /// Transactions by a signer.
    Signer(PublicKey),
    /// Transactions of an event type (see `Payload::event_type`).
    EventType(String),
    /// Evidence anchors of a file hash.
    Evidence(Hash),
}

/// Everything [`ChainStore::commit_block`] writes for one block.
#[derive(Debug, Clone, Copy)]
pub struct BlockCommit<'a> {
    /// The block (header, seal, transactions).
    pub block: &'a Block,
    /// Its hash.
    pub hash: Hash,
    /// Ids of its transactions, in block order.
    pub tx_ids: &'a [Hash],
    /// History-tree nodes completed by appending the tx ids.
    pub history_nodes: &'a [NewNode],
    /// The commit certificate that made the block final (BFT chains); stored beside it.
    pub certificate: Option<&'a CommitCertificate>,
    /// The parent's canonical certificate (the one the header commits to with
    /// `last_commit_hash`); replaces the parent's stored certificate.
    pub parent_certificate: Option<&'a CommitCertificate>,
    /// Contract state writes of the block (`None` deletes), kept in the undo record.
    pub state_writes: &'a BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The block's contract events, encoded by the caller (opaque here).
    pub contract_events: &'a [u8],
    /// When the block wrote the next height's validator set (a governance change): its
    /// state-root preimage, served in receipts as proof of the change.
    pub set_change_witness: Option<&'a SetChangeWitness>,
}

/// Storage for one chain. All methods are safe to call from many threads.
pub trait ChainStore: Send + Sync {
    /// Binds an empty store to a chain by writing its genesis block and document, or checks that
    /// a used store belongs to that chain (a data dir of layout [`keys::UPGRADES_IN_PLACE`] is
    /// marked [`keys::LAYOUT`]). Errors: [`StorageError::WrongChain`], [`StorageError::Layout`]
    /// for any other layout, [`StorageError::Corrupt`] if the log lost committed bytes, backend
    /// errors.
    /// `state` is the contract state before block 1, written with the genesis block.
    fn init(
        &self,
        genesis: &Block,
        genesis_json: &str,
        state: &BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), StorageError>;

    /// The contract state value at `key` after the head block.
    fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Contract state entries with `from <= key < to` after the head block, ascending, at
    /// most `limit`.
    fn state_scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<kv::Rows, StorageError>;

    /// The encoded contract events stored with the block at `height`.
    fn contract_events(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError>;

    /// The chain id (genesis hash) the store is bound to, if any.
    fn chain_id(&self) -> Result<Option<Hash>, StorageError>;

    /// The genesis document stored by [`ChainStore::init`].
    fn genesis_json(&self) -> Result<Option<String>, StorageError>;

    /// Height of the head block, if initialised.
    fn head_height(&self) -> Result<Option<u64>, StorageError>;

    /// Header and seal at `height` of the canonical chain.
    fn header(&self, height: u64) -> Result<Option<SealedHeader>, StorageError>;

    /// Whole block at `height`.
    fn block(&self, height: u64) -> Result<Option<Block>, StorageError>;

    /// Header, seal and transaction ids of the block at `height`: what a receipt needs,
    /// without the JSON parse of every transaction that [`ChainStore::block`] does (an id is
    /// the SHA-256 of the stored body's signing preimage). `None` above the head. Errors:
    /// [`StorageError::Corrupt`] if a transaction of the block is missing or unreadable.
    fn block_tx_ids(&self, height: u64) -> Result<Option<(SealedHeader, Vec<Hash>)>, StorageError>;

    /// The block at `height` in its wire form with `certificate` attached, its transactions
    /// as stored and not parsed: for serving block sync, without the JSON parse and id hash
    /// that [`ChainStore::block`] does per transaction (the receiver checks everything).
    fn block_wire(
        &self,
        height: u64,
        certificate: Option<CommitCertificate>,
    ) -> Result<Option<WireCertifiedBlock>, StorageError>;

    /// Height of the canonical block with this hash.
    fn height_of(&self, hash: &Hash) -> Result<Option<u64>, StorageError>;

    /// Global sequence number (history-tree leaf index) of a committed transaction.
    fn tx_seq(&self, id: &Hash) -> Result<Option<u64>, StorageError>;

    /// The committed transaction with sequence number `seq`.
    fn tx_at(&self, seq: u64) -> Result<Option<StoredTx>, StorageError>;

    /// The next nonce expected from `signer` (0 if it never committed a transaction).
    fn next_nonce(&self, signer: &PublicKey) -> Result<u64, StorageError>;

    /// The history-tree node of `2^level` leaves at `index` (RFC 6962 perfect subtree).
    fn history_node(&self, level: u32, index: u64) -> Result<Option<Hash>, StorageError>;

    /// Sequence numbers in `[from_seq, to_seq)` present in `index`, ascending, at most `limit`.
    fn scan(
        &self,
        index: &IndexKey,
        from_seq: u64,
        to_seq: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StorageError>;

    /// Committed transaction count per event type.
    fn event_type_counts(&self) -> Result<BTreeMap<String, u64>, StorageError>;

    /// Atomically commits the next block and its indexes, then flushes to disk. Also writes
    /// the block's undo record (previous values of the keys it overwrites).
    /// Errors: [`StorageError::NotNext`] if the block's height is not head + 1.
    fn commit_block(&self, commit: BlockCommit<'_>) -> Result<(), StorageError>;

    /// Like [`ChainStore::commit_block`] but without the flush: the block is applied
    /// atomically (one batch) and readable, but not durable until [`ChainStore::flush`]. For
    /// committing many blocks with one flush (block sync); nothing may be acknowledged before
    /// the flush. Errors: as `commit_block`.
    fn apply_block(&self, commit: BlockCommit<'_>) -> Result<(), StorageError>;

    /// Makes everything applied so far durable (fsync). Errors: backend failures.
    fn flush(&self) -> Result<(), StorageError>;

    /// The commit certificate stored with the block at `height`, if any.
    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StorageError>;

    /// Witnesses of the blocks below `below` that changed the validator set, ascending by
    /// height, as `(height, witness)`. Errors: backend failures, undecodable entries.
    fn set_change_witnesses(
        &self,
        below: u64,
    ) -> Result<Vec<(u64, SetChangeWitness)>, StorageError>;

    /// Appends equivocation evidence (two conflicting votes of one validator) and flushes.
    /// Evidence already stored (the same pair) is not stored twice. Returns its sequence number.
    fn record_equivocation(&self, evidence: &Equivocation) -> Result<u64, StorageError>;

    /// Stored equivocation evidence with sequence numbers from `from`, at most `limit`, in
    /// order, as `(sequence, evidence)`.
    fn equivocations(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Equivocation)>, StorageError>;

    /// Replaces this validator's vote log with its own votes at `height` and flushes: written
    /// before the votes are sent, so a restarted validator never signs a vote contradicting
    /// one it already sent.
    fn save_own_votes(&self, height: u64, votes: &[Vote]) -> Result<(), StorageError>;

    /// The vote log: `(height, votes)` as last saved, if any.
    fn own_votes(&self) -> Result<Option<(u64, Vec<Vote>)>, StorageError>;

    /// Atomically removes the head block and everything it wrote, restoring every key it
    /// overwrote, then flushes: afterwards the store is byte for byte what it was before the
    /// block was committed (fork choice reorganisations). Returns the removed block.
    /// Errors: the head is genesis, or a missing / corrupt undo record.
    fn revert_head(&self) -> Result<Block, StorageError>;
}

/// The stored history tree as an RFC 6962 node source (levels ≥ 4 stored, lower ones recomputed
/// by the store), for proofs and frontiers over any [`ChainStore`].
impl auditchain_primitives::merkle::TreeSource for dyn ChainStore + '_ {
    fn perfect(
        &self,
        level: u32,
        index: u64,
    ) -> Result<Hash, auditchain_primitives::merkle::MerkleError> {
        use auditchain_primitives::merkle::MerkleError;
        self.history_node(level, index)
            .map_err(|e| MerkleError::Source(e.to_string()))?
            .ok_or_else(|| MerkleError::Source(format!("history node ({level}, {index}) missing")))
    }
}
