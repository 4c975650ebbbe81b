//! Headers, blocks, seals and the state-root accumulator.
//!
//! Block hash = SHA-256 of the canonical encoding ([`crate::codec`]) of the [`Header`]; the seal
//! is not part of it. The round-robin seal is the proposer's ed25519 signature over
//! `"auditchain:seal:v1" ‖ 0x00 ‖ block_hash`. Layouts are pinned by golden tests and specified in
//! docs/blocks.md.
//!
//! Invariants of a valid chain (checked by the consensus and node crates, not by these types):
//! `height = parent.height + 1`, `parent_hash = hash(parent)`, `timestamp_ms > parent.timestamp_ms`,
//! `tx_root = MTH(tx ids)`, `history_size = parent.history_size + tx_count`,
//! `history_root = MTH(every tx id since genesis)`.

use serde::{Deserialize, Serialize};

use crate::bytes::{Hash, PublicKey, Signature, sha256, sha256_parts};
use crate::codec::{CodecError, encode};
use crate::keys::{SecretKey, SignatureError, verify};
use crate::merkle;
use crate::tx::Transaction;

/// Domain tag of the seal preimage (followed by one 0x00 byte).
pub const SEAL_DOMAIN: &[u8] = b"auditchain:seal:v1\x00";

/// Current header format version (2: `last_commit_hash` added).
pub const HEADER_VERSION: u32 = 2;

/// Consensus-specific header fields (hashed with the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsensusFields {
    /// The genesis block (height 0): no proposer, no seal.
    Genesis,
    /// Round-robin proof of authority: `round` counts proposer changes at this height
    /// (0 = the scheduled proposer).
    RoundRobin {
        /// Round number at this height.
        round: u32,
    },
    /// Proof of work: the block hash must meet `difficulty` (expected hashes); `nonce` is
    /// varied by the miner. Encoded as variant 2 after the round-robin one, so existing
    /// encodings are unchanged.
    Pow {
        /// Difficulty the block claims (checked against the chain's retarget rule).
        difficulty: u64,
        /// The miner's nonce.
        nonce: u64,
    },
}

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Format version, [`HEADER_VERSION`].
    pub version: u32,
    /// Height; genesis is 0.
    pub height: u64,
    /// Hash of the parent header ([`Hash::ZERO`] for genesis).
    pub parent_hash: Hash,
    /// Block time, ms since the Unix epoch; strictly increasing along the chain.
    pub timestamp_ms: u64,
    /// The validator that proposed (and sealed) the block; all zero for genesis.
    pub proposer: PublicKey,
    /// RFC 6962 root over the ids of this block's transactions, in block order.
    pub tx_root: Hash,
    /// Number of transactions in the block.
    pub tx_count: u32,
    /// RFC 6962 root over the ids of every transaction since genesis (the history tree).
    pub history_root: Hash,
    /// Number of leaves in the history tree after this block.
    pub history_size: u64,
    /// Commitment to the chain state after this block (see [`state_root`]).
    pub state_root: Hash,
    /// SHA-256 of the canonical encoding of the parent's commit certificate, which travels
    /// with the proposal and becomes the parent's stored certificate (CometBFT's `LastCommit`):
    /// so every node holds the same certificate for every block below the head. Zero for
    /// height 1 (genesis has no certificate) and on proof-of-work chains.
    pub last_commit_hash: Hash,
    /// Consensus-specific fields.
    pub consensus: ConsensusFields,
}

impl Header {
    /// Canonical bytes of the header (the block-hash preimage). Errors: [`CodecError`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        encode(self)
    }

    /// The block hash: SHA-256 of [`Header::to_bytes`].
    pub fn hash(&self) -> Hash {
        // A header only holds fixed-size fields, so encoding cannot fail.
        sha256(&self.to_bytes().unwrap_or_default())
    }
}

/// The seal preimage for a block hash.
pub fn seal_preimage(block_hash: &Hash) -> Vec<u8> {
    [SEAL_DOMAIN, &block_hash.0].concat()
}

/// A block: header, the proposer's seal, transactions in execution order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// Proposer's signature over [`seal_preimage`] (all zero for genesis).
    pub seal: Signature,
    /// The transactions.
    pub txs: Vec<Transaction>,
}

impl Block {
    /// The block hash (see [`Header::hash`]).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Seals the header with `key` (which must be `header.proposer`'s key).
    pub fn seal_with(header: Header, txs: Vec<Transaction>, key: &SecretKey) -> Block {
        let seal = key.sign(&seal_preimage(&header.hash()));
        Block { header, seal, txs }
    }

    /// Checks the seal against `header.proposer`. Errors: [`SignatureError`].
    pub fn verify_seal(&self) -> Result<(), SignatureError> {
        verify(
            &self.header.proposer,
            &seal_preimage(&self.hash()),
            &self.seal,
        )
    }
}

/// RFC 6962 root over transaction ids.
pub fn tx_root(ids: &[Hash]) -> Hash {
    merkle::root(&tx_leaves(ids))
}

/// The RFC 6962 leaf hashes of transaction ids, one per id in order: the leaves of
/// [`tx_root`] and, appended in block order, of the history tree. A block's builder and
/// checker compute them once for both trees.
pub fn tx_leaves(ids: &[Hash]) -> Vec<Hash> {
    ids.iter().map(|id| merkle::leaf_hash(&id.0)).collect()
}

/// Advances the state root by one block's state writes.
///
/// `state_root(prev, writes) = SHA-256(0x02 ‖ prev ‖ Σ (u32 len(key) ‖ key ‖ SHA-256(value)))` over
/// the writes sorted by key (a later write to the same key replaces an earlier one). Two nodes
/// whose state diverges get different roots from the first divergent block on. This is an
/// accumulator of state changes, not a sparse Merkle tree: it proves equality of histories,
/// not membership of a single key.
pub fn state_root(prev: &Hash, writes: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>) -> Hash {
    state_root_of_hashes(prev, writes.iter().map(|(k, v)| (k.as_slice(), sha256(v))))
}

/// [`state_root`] from the writes' keys and value hashes, in the order given (a verifier
/// holding a block's write list, [`crate::receipt::SetChangeWitness`]). Keys are at most
/// 4 GiB, as every key a block can write is.
pub fn state_root_of_hashes<'a>(
    prev: &Hash,
    writes: impl IntoIterator<Item = (&'a [u8], Hash)>,
) -> Hash {
    let writes = writes.into_iter();
    let mut buf = Vec::with_capacity(33 + writes.size_hint().0 * 72);
    buf.push(0x02);
    buf.extend_from_slice(&prev.0);
    for (k, h) in writes {
        buf.extend_from_slice(&(k.len() as u32).to_be_bytes());
        buf.extend_from_slice(k);
        buf.extend_from_slice(&h.0);
    }
    sha256_parts(&[&buf])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            version: HEADER_VERSION,
            height: 1,
            parent_hash: Hash([1; 32]),
            timestamp_ms: 2,
            proposer: SecretKey::from_seed(&[3; 32]).public_key(),
            tx_root: merkle::empty_root(),
            tx_count: 0,
            history_root: merkle::empty_root(),
            history_size: 0,
            state_root: Hash([4; 32]),
            last_commit_hash: Hash::ZERO,
            consensus: ConsensusFields::RoundRobin { round: 0 },
        }
    }

    #[test]
    fn seal_verifies_and_binds_the_header() {
        let b = Block::seal_with(header(), vec![], &SecretKey::from_seed(&[3; 32]));
        assert!(b.verify_seal().is_ok());
        let mut b2 = b.clone();
        b2.header.timestamp_ms += 1;
        assert!(b2.verify_seal().is_err());
        let enc = crate::codec::encode(&b).unwrap();
        assert_eq!(crate::codec::decode::<Block>(&enc).unwrap(), b);
    }

    #[test]
    fn state_root_depends_on_every_write() {
        let mut w = std::collections::BTreeMap::new();
        w.insert(b"a".to_vec(), b"1".to_vec());
        let r1 = state_root(&Hash::ZERO, &w);
        w.insert(b"a".to_vec(), b"2".to_vec());
        assert_ne!(state_root(&Hash::ZERO, &w), r1);
        assert_ne!(state_root(&Hash([1; 32]), &w), state_root(&Hash::ZERO, &w));
    }

    #[test]
    fn state_root_from_value_hashes_matches_and_binds_the_order() {
        let mut w = std::collections::BTreeMap::new();
        w.insert(b"events".to_vec(), b"[]".to_vec());
        w.insert(b"state/vset".to_vec(), b"[\"ab\"]".to_vec());
        let prev = Hash([7; 32]);
        let hashed: Vec<(&[u8], Hash)> = w.iter().map(|(k, v)| (k.as_slice(), sha256(v))).collect();
        assert_eq!(
            state_root_of_hashes(&prev, hashed.clone()),
            state_root(&prev, &w)
        );
        let reversed: Vec<_> = hashed.into_iter().rev().collect();
        assert_ne!(state_root_of_hashes(&prev, reversed), state_root(&prev, &w));
    }
}
