//! The state transition of a block: the transaction rules, then the native contracts
//! (`auditchain-contracts`).
//!
//! Rules, checked per transaction in block order; a block with any failing transaction is
//! invalid as a whole:
//! - the body's `chain_id` is this chain's genesis hash;
//! - the signer holds the `writer` role in the state so far (roles change by governance);
//! - the transaction fits `max_tx_bytes` and its `data` fits `max_data_bytes`;
//! - the nonce equals the signer's next nonce (0 for a new signer, then +1 each);
//! - the block fits `max_block_txs` and `max_block_bytes`.
//!
//! A contract call that fails (a transfer over balance, a second vote) does *not* make the
//! block invalid: it stays in the block, uses its nonce, changes nothing, and its block's
//! events record why (`call_failed`), as in Ethereum and Substrate.
//!
//! State writes fed to `state_root` (docs/blocks.md): `nonce/‖signer → next nonce (u64 BE)`,
//! `state/‖key → value` for each contract state write (the empty value for a deletion), and
//! `events → the block's contract events (JSON)`. Deterministic: no clock, no randomness, no
//! hash-map order.

use std::collections::{BTreeMap, HashMap};

use auditchain_contracts::{BlockCtx, BlockExec, EventRecord, StateError, StateRead, Writes};
use auditchain_genesis::{Genesis, Role};
use auditchain_primitives::bytes::sha256;
use auditchain_primitives::receipt::{SetChangeWitness, StateWrite};
use auditchain_primitives::{Hash, Header, PublicKey, Transaction, block::state_root};
use auditchain_rpc::RpcError;
use auditchain_storage::ChainStore;

/// Committed contract state (after the head block) read from a [`ChainStore`].
pub struct StoreState<'a>(pub &'a dyn ChainStore);

impl StateRead for StoreState<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.0.state_get(key).map_err(|e| StateError(e.to_string()))
    }
    fn scan(
        &self,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<auditchain_contracts::state::Rows, StateError> {
        self.0
            .state_scan(from, to, limit)
            .map_err(|e| StateError(e.to_string()))
    }
}

/// The contract context of a block with `header` on this chain.
pub fn block_ctx(genesis: &Genesis, header: &Header) -> BlockCtx {
    BlockCtx {
        height: header.height,
        timestamp_ms: header.timestamp_ms,
        proposer: header.proposer,
        round_robin: genesis.round_robin().is_some(),
    }
}

/// Whether `signer` holds the writer role in `state`. Errors: [`RpcError::NotPermitted`],
/// or an internal error if state cannot be read.
pub fn check_writer(state: &dyn StateRead, signer: &PublicKey) -> Result<(), RpcError> {
    match auditchain_contracts::system::has_role(state, signer, Role::Writer) {
        Ok(true) => Ok(()),
        Ok(false) => Err(RpcError::NotPermitted {
            signer: signer.to_hex(),
            reason: "does not hold the writer role".into(),
        }),
        Err(e) => Err(RpcError::Unavailable(e.to_string())),
    }
}

/// A transaction-level rule violation that needs no state (chain, sizes).
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
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    /// Contract state writes to commit (`None` deletes).
    pub state_writes: Writes,
    /// The block's contract events, in execution order.
    pub events: Vec<EventRecord>,
    /// The events as stored (JSON array).
    pub events_json: Vec<u8>,
    /// The validator set from the next height on, when this block changed it.
    pub validators: Option<Vec<PublicKey>>,
    /// The new state root.
    pub state_root: Hash,
    /// When this block changed the validator set: what its state root was computed from,
    /// the proof of the change that receipts carry.
    pub set_change_witness: Option<SetChangeWitness>,
}

/// Executes `txs` of the block with context `ctx` on top of the state with root `prev_root`
/// and contents `state` (after the parent), where `next_nonce` reads the committed next
/// nonce of a signer. Errors: [`ExecError`].
#[allow(clippy::too_many_arguments)]
pub fn execute<E: std::fmt::Display>(
    genesis: &Genesis,
    chain_id: &Hash,
    prev_root: &Hash,
    ctx: BlockCtx,
    txs: &[Transaction],
    state: &dyn StateRead,
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
    let state_err = |e: StateError| ExecError::State(e.to_string());
    let mut exec = BlockExec::begin(state, ctx).map_err(state_err)?;
    let mut nonces: HashMap<PublicKey, u64> = HashMap::new();
    let mut writers: HashMap<PublicKey, bool> = HashMap::new();
    let mut writes = BTreeMap::new();
    for (index, tx) in txs.iter().enumerate() {
        let fail = |reason: String| ExecError::Tx { index, reason };
        check_tx(genesis, chain_id, tx).map_err(|e| fail(e.to_string()))?;
        let signer = *tx.signer();
        // roles only change at the end of a block (governance), so one read per signer
        let writer = match writers.get(&signer) {
            Some(w) => *w,
            None => {
                let w = exec.has_role(&signer, Role::Writer).map_err(state_err)?;
                writers.insert(signer, w);
                w
            }
        };
        if !writer {
            return Err(fail(format!(
                "signer {signer} does not hold the writer role"
            )));
        }
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
        exec.apply(index as u32, tx).map_err(state_err)?;
    }
    let out = exec.finish().map_err(state_err)?;
    for (k, v) in &out.writes {
        writes.insert(
            [b"state/".as_slice(), k].concat(),
            v.clone().unwrap_or_default(),
        );
    }
    let events_json =
        serde_json::to_vec(&out.events).map_err(|e| ExecError::State(e.to_string()))?;
    writes.insert(b"events".to_vec(), events_json.clone());
    let state_root = state_root(prev_root, &writes);
    let set_change_witness = match out.validators {
        Some(_) => Some(set_change_witness(prev_root, &writes, ctx.height)?),
        None => None,
    };
    Ok(Executed {
        state_writes: out.writes,
        events: out.events,
        events_json,
        validators: out.validators,
        state_root,
        set_change_witness,
    })
}

/// The state-root key of the validator set in force from `from_height` (a contract write, so
/// under `state/`); [`ValidatorSetChange::verify`] looks the new set up there.
///
/// [`ValidatorSetChange::verify`]: auditchain_primitives::receipt::ValidatorSetChange::verify
pub fn validator_set_key(from_height: u64) -> Vec<u8> {
    [
        b"state/".as_slice(),
        &auditchain_contracts::keys::validators_at(from_height),
    ]
    .concat()
}

/// The witness of block `height`, which wrote the set for `height + 1`: the state-root
/// preimage (`prev_root` and every write hashed) and the set as written. Errors: the block
/// wrote no set for that height, or not as UTF-8 text.
fn set_change_witness(
    prev_root: &Hash,
    writes: &BTreeMap<Vec<u8>, Vec<u8>>,
    height: u64,
) -> Result<SetChangeWitness, ExecError> {
    let key = validator_set_key(height + 1);
    let value = writes
        .get(&key)
        .ok_or_else(|| ExecError::State(format!("no validator set written for {}", height + 1)))?;
    let validators_json = String::from_utf8(value.clone())
        .map_err(|_| ExecError::State("a validator set that is not UTF-8".into()))?;
    Ok(SetChangeWitness {
        prev_state_root: *prev_root,
        writes: writes
            .iter()
            .map(|(k, v)| StateWrite {
                key: k.clone(),
                value_hash: sha256(v),
            })
            .collect(),
        validators_json,
    })
}
