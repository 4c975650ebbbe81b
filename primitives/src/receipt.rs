//! Receipts: everything an auditor needs to check one event offline.
//!
//! A receipt carries the signed transaction, the sealed header of its block, the RFC 6962
//! inclusion proof of the tx id in the block's `tx_root`, and the inclusion proof of the tx id in
//! the history tree at the header's `history_size`, and the block's commit certificate (the
//! precommits of a quorum of validators that made it final). [`Receipt::verify`] checks all of
//! it against a chain id, the validator set and a proposer rule supplied by the caller (from the
//! genesis file), contacting nothing. Specified in docs/blocks.md.

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
