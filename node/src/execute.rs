//! The state transition of a block (the native executor until the contracts crate exists).
//!
//! Rules, checked per transaction in block order; a block with any failing transaction is
//! invalid as a whole:
//! - the body's `chain_id` is this chain's genesis hash;
//! - the signer holds the `writer` role in genesis;
//! - the transaction fits `max_tx_bytes` and its `data` fits `max_data_bytes`;
//! - the nonce equals the signer's next nonce (0 for a new signer, then +1 each);
//! - the block fits `max_block_txs` and `max_block_bytes`.
//!
//! State writes (fed to `state_root`): `nonce/‖signer → next nonce (u64 BE)` and, for evidence,
//! `evidence/‖sha256‖entity → tx id`. Deterministic: no clock, no randomness, no hash-map order.

use std::collections::{BTreeMap, HashMap};

use auditchain_genesis::{Genesis, Role};
use auditchain_primitives::tx::Payload;
use auditchain_primitives::{Hash, PublicKey, Transaction, block::state_root};
use auditchain_rpc::RpcError;

/// A transaction-level rule violation, independent of nonces.
pub fn check_tx(genesis: &Genesis, chain_id: &Hash, tx: &Transaction) -> Result<(), RpcError> {
    if tx.chain_id() != chain_id {
        return Err(RpcError::WrongChain {
            expected: chain_id.to_hex(),
            found: tx.chain_id().to_hex(),
        });
    }
    let l = &genesis.limits;
    let size = tx.size_bytes() as u64;
    if size > u64::from(l.max_tx_bytes) {
        return Err(RpcError::TooLarge {
            field: "transaction".into(),
            size,
            limit: u64::from(l.max_tx_bytes),
        });
    }
    let data = tx.data_bytes() as u64;
    if data > u64::from(l.max_data_bytes) {
        return Err(RpcError::TooLarge {
            field: "body.payload.data".into(),
            size: data,
            limit: u64::from(l.max_data_bytes),
        });
    }
    if !genesis.has_role(tx.signer(), Role::Writer) {
        return Err(RpcError::NotPermitted {
            signer: tx.signer().to_hex(),
            reason: "does not hold the writer role".into(),
        });
    }
    Ok(())
}

/// Why a block's transactions are invalid.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Transaction `index` breaks a rule.
    #[error("transaction {index}: {reason}")]
    Tx {
        /// Index in the block.
        index: usize,
        /// The rule broken.
        reason: String,
    },
    /// The block is over a size limit.
    #[error("block: {0}")]
    Block(String),
    /// State could not be read.
    #[error("state: {0}")]
    State(String),
}

/// The outcome of executing a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// State writes, sorted by key.
    pub writes: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The new state root.
    pub state_root: Hash,
}

/// Executes `txs` on top of the state with root `prev_root`, where `next_nonce` reads the
/// committed next nonce of a signer. Errors: [`ExecError`].
pub fn execute<E: std::fmt::Display>(
    genesis: &Genesis,
    chain_id: &Hash,
    prev_root: &Hash,
    txs: &[Transaction],
    mut next_nonce: impl FnMut(&PublicKey) -> Result<u64, E>,
) -> Result<Executed, ExecError> {
    let l = &genesis.limits;
    if txs.len() > l.max_block_txs as usize {
        return Err(ExecError::Block(format!(
            "{} transactions exceed max_block_txs {}",
            txs.len(),
            l.max_block_txs
        )));
    }
    let bytes: u64 = txs.iter().map(|t| t.size_bytes() as u64).sum();
    if bytes > l.max_block_bytes {
        return Err(ExecError::Block(format!(
            "{bytes} bytes exceed max_block_bytes {}",
            l.max_block_bytes
        )));
    }
    let mut nonces: HashMap<PublicKey, u64> = HashMap::new();
    let mut writes = BTreeMap::new();
    for (index, tx) in txs.iter().enumerate() {
        let fail = |reason: String| ExecError::Tx { index, reason };
        check_tx(genesis, chain_id, tx).map_err(|e| fail(e.to_string()))?;
        let signer = *tx.signer();
        let expected = match nonces.get(&signer) {
            Some(n) => *n,
            None => next_nonce(&signer).map_err(|e| ExecError::State(e.to_string()))?,
        };
        let body = tx.body();
        if body.nonce != expected {
            return Err(fail(format!(
                "nonce {} but signer {signer} expects {expected}",
                body.nonce
            )));
        }
        nonces.insert(signer, expected + 1);
        writes.insert(
            [b"nonce/".as_slice(), &signer.0].concat(),
            (expected + 1).to_be_bytes().to_vec(),
        );
        if let Payload::AnchorEvidence {
            entity_id, sha256, ..
        } = &body.payload
        {
            writes.insert(
                [b"evidence/".as_slice(), &sha256.0, entity_id.as_bytes()].concat(),
                tx.id().0.to_vec(),
            );
        }
    }
    let state_root = state_root(prev_root, &writes);
    Ok(Executed { writes, state_root })
}
