//! Receipts: everything an auditor needs to check one event offline.
//!
//! A receipt carries the signed transaction, the sealed header of its block, the RFC 6962
//! inclusion proof of the tx id in the block's `tx_root`, and the inclusion proof of the tx id in
//! the history tree at the header's `history_size`, and the block's commit certificate (the
//! precommits of a quorum of validators that made it final). [`Receipt::verify`] checks all of
//! it against a chain id, the validator set and a proposer rule supplied by the caller (from the
//! genesis file), contacting nothing. After governance changed the validator set, the receipt
//! also carries one [`ValidatorSetChange`] per change, each verifiable by the set before it,
//! so the set of the receipt's height follows from the genesis set. Specified in
//! docs/blocks.md.

use serde::{Deserialize, Serialize};

use crate::block::{Header, seal_preimage};
use crate::bytes::{Hash, Signature};
use crate::keys::verify;
use crate::merkle::{self, MerkleError};
use crate::tx::{Transaction, TxError};
use crate::vote::{CertificateError, CommitCertificate};

/// Why a receipt failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The receipt is for another chain.
    #[error("receipt is for chain {found}, expected {expected}")]
    WrongChain {
        /// Expected genesis hash.
        expected: Hash,
        /// Genesis hash in the receipt.
        found: Hash,
    },
    /// The transaction's signature or body is invalid.
    #[error("transaction: {0}")]
    Tx(#[from] TxError),
    /// `tx_id` is not the id of `tx`.
    #[error("tx_id {claimed} is not the id of the transaction ({computed})")]
    TxIdMismatch {
        /// Recomputed id.
        computed: Hash,
        /// Id in the receipt.
        claimed: Hash,
    },
    /// The block inclusion proof fails.
    #[error("inclusion proof in block tx_root: {0}")]
    BlockProof(MerkleError),
    /// The history inclusion proof fails.
    #[error("inclusion proof in history tree: {0}")]
    HistoryProof(MerkleError),
    /// The seal does not verify.
    #[error("header seal does not verify for proposer {0}")]
    BadSeal(crate::bytes::PublicKey),
    /// The proposer is not allowed to seal this header.
    #[error("proposer {proposer} may not seal height {height}: {reason}")]
    BadProposer {
        /// The header's proposer.
        proposer: crate::bytes::PublicKey,
        /// The header's height.
        height: u64,
        /// Why not.
        reason: String,
    },
    /// The commit certificate is for another block or does not verify.
    #[error("commit certificate: {0}")]
    Certificate(String),
    /// A validator-set change carried by the receipt does not verify.
    #[error("validator set change: {0}")]
    ValidatorSetChange(String),
}

impl From<CertificateError> for ReceiptError {
    fn from(e: CertificateError) -> Self {
        ReceiptError::Certificate(e.to_string())
    }
}

/// An offline-verifiable proof that a transaction is in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The genesis hash of the chain.
    pub chain_id: Hash,
    /// The transaction id (SHA-256 of its signing preimage).
    pub tx_id: Hash,
    /// The signed transaction.
    pub tx: Transaction,
    /// Header of the including block.
    pub header: Header,
    /// The block's seal.
    pub seal: Signature,
    /// Position of the transaction in the block.
    pub tx_index: u32,
    /// RFC 6962 audit path from the tx leaf to `header.tx_root`, leaf to root.
    pub tx_proof: Vec<Hash>,
    /// Position of the transaction in the history tree (its global sequence number).
    pub history_index: u64,
    /// RFC 6962 audit path from the tx leaf to `header.history_root` at `header.history_size`.
    pub history_proof: Vec<Hash>,
    /// The precommits that finalized the block (see [`CommitCertificate`]); absent on
    /// proof-of-work chains, whose blocks are final by depth, not by votes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CommitCertificate>,
    /// Every change of the validator set from genesis up to the receipt's height, in order
    /// (round-robin chains whose governance changed the set; empty otherwise): with them the
    /// genesis set alone suffices to verify the receipt (see [`ValidatorSetChange`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validator_set_changes: Vec<ValidatorSetChange>,
}

impl Receipt {
    /// Verifies everything: chain, tx signature (ZIP-215), tx id, both inclusion proofs, the
    /// seal, `check_proposer(header)` (which says whether the header's proposer may seal it,
    /// and for proof of work whether the work is there), and, when present, that the commit
    /// certificate names this header and holds valid precommits of a quorum of `validators`.
    /// Whether a certificate is required is the caller's rule (round-robin chains: always).
    /// Errors: the first [`ReceiptError`] found.
    pub fn verify(
        &self,
        chain_id: &Hash,
        validators: &[crate::bytes::PublicKey],
        check_proposer: impl Fn(&Header) -> Result<(), String>,
    ) -> Result<(), ReceiptError> {
        if self.chain_id != *chain_id {
            return Err(ReceiptError::WrongChain {
                expected: *chain_id,
                found: self.chain_id,
            });
        }
        if self.tx.chain_id() != chain_id {
            return Err(ReceiptError::WrongChain {
                expected: *chain_id,
                found: *self.tx.chain_id(),
            });
        }
        self.tx.verify()?;
        let computed = self.tx.id();
        if computed != self.tx_id {
            return Err(ReceiptError::TxIdMismatch {
                computed,
                claimed: self.tx_id,
            });
        }
        let leaf = merkle::leaf_hash(&self.tx_id.0);
        merkle::verify_inclusion(
            &leaf.0,
            u64::from(self.tx_index),
            u64::from(self.header.tx_count),
            &self.tx_proof,
            &self.header.tx_root.0,
        )
        .map_err(ReceiptError::BlockProof)?;
        merkle::verify_inclusion(
            &leaf.0,
            self.history_index,
            self.header.history_size,
            &self.history_proof,
            &self.header.history_root.0,
        )
        .map_err(ReceiptError::HistoryProof)?;
        verify(
            &self.header.proposer,
            &seal_preimage(&self.header.hash()),
            &self.seal,
        )
        .map_err(|_| ReceiptError::BadSeal(self.header.proposer))?;
        check_proposer(&self.header).map_err(|reason| ReceiptError::BadProposer {
            proposer: self.header.proposer,
            height: self.header.height,
            reason,
        })?;
        if let Some(c) = &self.certificate {
            c.check_header(chain_id, &self.header, validators)?;
        }
        Ok(())
    }
}

/// One entry of a block's state-root preimage (see [`crate::block::state_root`]): a key the
/// block wrote and the SHA-256 of the value it wrote (of the empty value for a deletion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateWrite {
    /// The state key, hex in JSON.
    #[serde(with = "hex_bytes")]
    pub key: Vec<u8>,
    /// SHA-256 of the written value.
    pub value_hash: Hash,
}

/// What a block's state root was computed from, kept for blocks that change the validator
/// set: the previous block's state root and every write of the block in key order, plus the
/// new set as written (canonical JSON array of public keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetChangeWitness {
    /// State root of the block before.
    pub prev_state_root: Hash,
    /// The block's writes, ascending by key.
    pub writes: Vec<StateWrite>,
    /// The value written at the validator-set key: the new set, a JSON array of hex keys.
    pub validators_json: String,
}

/// Proof that the chain changed its validator set (governance), verifiable by the set before
/// the change alone: the header of the last block under the old set (height `F − 1`), that
/// set's commit certificate for it, and the [`SetChangeWitness`] showing that the header's
/// `state_root` covers a write of the new set at the key for height `F`. This is how a light
/// client follows validator-set changes (CometBFT's sequential verification), with the state
/// root in place of a `next_validators_hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorSetChange {
    /// Header of block `F − 1`.
    pub header: Header,
    /// The old set's commit certificate for that header.
    pub certificate: CommitCertificate,
    /// The header's state-root preimage and the new set.
    pub witness: SetChangeWitness,
}

impl ValidatorSetChange {
    /// First height of the new set (`F`).
    pub fn from_height(&self) -> u64 {
        self.header.height.saturating_add(1)
    }

    /// Checks the change against `trusted`, the set in force at `header.height`, and returns
    /// the new set: the certificate holds precommits of a quorum of `trusted` for the header;
    /// the witness recomputes the header's `state_root`; one of its writes is at `set_key`
    /// (the state key of the set for height `F`, given by the caller's key layout) with the
    /// hash of `validators_json`, which parses as a non-empty list of keys. Errors: which of
    /// these fails.
    pub fn verify(
        &self,
        chain_id: &Hash,
        trusted: &[crate::bytes::PublicKey],
        set_key: &[u8],
    ) -> Result<Vec<crate::bytes::PublicKey>, ReceiptError> {
        let fail = |what: String| {
            ReceiptError::ValidatorSetChange(format!(
                "change at height {}: {what}",
                self.from_height()
            ))
        };
        self.certificate
            .check_header(chain_id, &self.header, trusted)
            .map_err(|e| fail(format!("certificate: {e}")))?;
        let w = &self.witness;
        if w.writes.iter().any(|s| u32::try_from(s.key.len()).is_err()) {
            return Err(fail("a key too long".into()));
        }
        let root = crate::block::state_root_of_hashes(
            &w.prev_state_root,
            w.writes.iter().map(|s| (s.key.as_slice(), s.value_hash)),
        );
        if root != self.header.state_root {
            return Err(fail(
                "the writes do not give the header's state root".into(),
            ));
        }
        let written = w
            .writes
            .iter()
            .find(|s| s.key == set_key)
            .ok_or_else(|| fail("the block wrote no validator set for that height".into()))?;
        if crate::bytes::sha256(w.validators_json.as_bytes()) != written.value_hash {
            return Err(fail("the set is not the value written".into()));
        }
        let set: Vec<crate::bytes::PublicKey> = serde_json::from_str(&w.validators_json)
            .map_err(|e| fail(format!("the set does not parse: {e}")))?;
        if set.is_empty() {
            return Err(fail("an empty set".into()));
        }
        Ok(set)
    }
}

/// Bytes as lowercase hex in human-readable formats, as bytes otherwise.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(v))
        } else {
            s.serialize_bytes(v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            let t = String::deserialize(d)?;
            hex::decode(&t).map_err(serde::de::Error::custom)
        } else {
            Vec::<u8>::deserialize(d)
        }
    }
}
