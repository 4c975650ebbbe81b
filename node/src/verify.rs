//! Offline verification: a whole stored chain (`verify-chain`) and single receipts
//! (`verify-receipt`), trusting only the genesis file.

use std::borrow::Borrow;
use std::collections::HashMap;

use auditchain_consensus::pow::{self, PowConfig};
use auditchain_consensus::{Engine, RoundRobin};
use auditchain_contracts::StateRead;
use auditchain_genesis::Genesis;
use auditchain_primitives::block::tx_leaves;
use auditchain_primitives::merkle::{self, Frontier, NewNode};
use auditchain_primitives::receipt::ReceiptError;
use auditchain_primitives::tx::{TxError, verify_transactions};
use auditchain_primitives::vote::last_commit_hash;
use auditchain_primitives::{Block, Hash, Header, PublicKey, Receipt, Transaction};
use auditchain_storage::ChainStore;
use auditchain_storage::block_record::MIN_STORED_LEVEL;
use rayon::prelude::*;

use crate::chain::now_ms;
use crate::execute::{Executed, execute};

/// Transactions per signature-verification batch when many are split across cores (admission;
/// the size `bench ingest` measures its ceiling with).
pub const VERIFY_CHUNK: usize = 256;

/// Most transactions per batch when a whole block or sync answer is verified: larger batches
/// cost less per signature (on the reference machine one core verifies ~70k/s in batches of
/// 256 and ~90k/s in batches of 4,096), and a block's signatures are only needed all together.
pub const BLOCK_VERIFY_CHUNK_MAX: usize = 4096;

/// Verifies signatures of `txs` (ZIP-215) in batches of 256, spread over the threads of the
/// rayon pool it is called in (the global pool, one thread per core at normal priority, or
/// the admission pool inside [`crate::admission::run`]); fewer than 512 are one batch on the
/// calling thread. `txs` holds transactions or references to them (nothing is copied). One
/// result per transaction, in order.
pub fn verify_parallel<T: Borrow<Transaction> + Sync>(txs: &[T]) -> Vec<Result<(), TxError>> {
    if txs.len() < 2 * VERIFY_CHUNK {
        return verify_chunk(txs);
    }
    verify_in_chunks(txs, VERIFY_CHUNK)
}

/// As [`verify_parallel`], for the transactions of whole blocks (a proposal, a sync answer):
/// one batch per thread of the calling pool, each of 256 to [`BLOCK_VERIFY_CHUNK_MAX`].
pub fn verify_block_txs<T: Borrow<Transaction> + Sync>(txs: &[T]) -> Vec<Result<(), TxError>> {
    let chunk = txs
        .len()
        .div_ceil(rayon::current_num_threads())
        .clamp(VERIFY_CHUNK, BLOCK_VERIFY_CHUNK_MAX);
    verify_in_chunks(txs, chunk)
}

fn verify_chunk<T: Borrow<Transaction>>(txs: &[T]) -> Vec<Result<(), TxError>> {
    verify_transactions(&txs.iter().map(Borrow::borrow).collect::<Vec<_>>())
}

/// Batches of `chunk` on the calling pool's threads; at most `chunk` on the calling thread.
fn verify_in_chunks<T: Borrow<Transaction> + Sync>(
    txs: &[T],
    chunk: usize,
) -> Vec<Result<(), TxError>> {
    if txs.len() <= chunk {
        return verify_chunk(txs);
    }
    txs.par_chunks(chunk).flat_map_iter(verify_chunk).collect()
}

/// A block that passed [`check_block`]: what committing it needs.
pub struct CheckedBlock {
    /// Its hash.
    pub hash: Hash,
    /// Its transaction ids, in block order.
    pub ids: Vec<Hash>,
    /// The history frontier after it.
    pub frontier: Frontier,
    /// History-tree nodes it completes.
    pub nodes: Vec<NewNode>,
    /// Its execution result.
    pub executed: Executed,
}

/// The consensus rules a header must follow, per engine.
pub enum HeaderRules<'a> {
    /// Round robin: height, parent hash, timestamp bounds, the proposer of its round, seal.
    RoundRobin(&'a RoundRobin),
    /// Proof of work: height, parent hash, seal, miner, required difficulty and work,
    /// median-time-past and drift. `time_at(h)` gives the block time at height `h` on the
    /// parent's branch (for heights up to the parent's).
    Pow {
        /// The parameters.
        cfg: &'a PowConfig,
        /// Block times of the parent's branch by height.
        time_at: &'a dyn Fn(u64) -> Option<u64>,
    },
}

impl HeaderRules<'_> {
    /// Checks `block`'s header as the child of `parent` at local time `now_ms`.
    /// Errors: the rule broken, as text.
    pub fn check(&self, block: &Block, parent: &Header, now_ms: u64) -> Result<(), String> {
        match self {
            HeaderRules::RoundRobin(rules) => rules
                .verify_header(block, parent, now_ms)
                .map_err(|e| e.to_string()),
            HeaderRules::Pow { cfg, time_at } => {
                check_pow_header(cfg, block, parent, time_at, now_ms)
            }
        }
    }
}

/// The difficulty a proof-of-work block at `parent.height + 1` must have (the initial one on
/// top of genesis).
pub fn required_difficulty(
    cfg: &PowConfig,
    parent: &Header,
    time_at: &dyn Fn(u64) -> Option<u64>,
) -> u64 {
    match pow::fields(parent) {
        Ok((d, _)) => pow::required_difficulty(cfg, parent.height + 1, d, time_at),
        Err(_) => cfg.initial_difficulty,
    }
}

/// Proof-of-work header rules (see [`HeaderRules::Pow`]).
pub fn check_pow_header(
    cfg: &PowConfig,
    block: &Block,
    parent: &Header,
    time_at: &dyn Fn(u64) -> Option<u64>,
    now_ms: u64,
) -> Result<(), String> {
    let h = &block.header;
    if h.height != parent.height + 1 || h.parent_hash != parent.hash() {
        return Err(format!(
            "block {} does not extend block {} ({})",
            h.height,
            parent.height,
            parent.hash()
        ));
    }
    if h.last_commit_hash != Hash::ZERO {
        return Err("a proof-of-work header carries no last_commit_hash".into());
    }
    let required = required_difficulty(cfg, parent, time_at);
    let from = (parent.height + 1).saturating_sub(pow::MEDIAN_TIME_SPAN as u64);
    let recent: Vec<u64> = (from..=parent.height).filter_map(time_at).collect();
    pow::check_header(cfg, h, required, &recent, now_ms).map_err(|e| e.to_string())?;
    block
        .verify_seal()
        .map_err(|_| format!("seal does not verify for miner {}", h.proposer))
}

/// Checks `block` as the child of `parent` (whose history frontier is `frontier`) at local time
/// `now_ms`: the consensus header rules (`rules`), transaction signatures (batched across
/// cores; those for which `known_good` is true are skipped), `tx_root` and `tx_count`,
/// execution rules and `state_root`, `history_root` and `history_size`. `state` is the
/// contract state and `next_nonce` the committed nonces after `parent`. Errors: the first failed rule, as text.
#[allow(clippy::too_many_arguments)]
pub fn check_block<E: std::fmt::Display>(
    genesis: &Genesis,
    rules: &HeaderRules<'_>,
    parent: &Header,
    frontier: &Frontier,
    block: &Block,
    now_ms: u64,
    known_good: impl Fn(&Transaction) -> bool,
    state: &dyn StateRead,
    next_nonce: impl FnMut(&PublicKey) -> Result<u64, E>,
) -> Result<CheckedBlock, String> {
    rules.check(block, parent, now_ms)?;
    let unchecked: Vec<&Transaction> = block.txs.iter().filter(|t| !known_good(t)).collect();
    if verify_block_txs(&unchecked).iter().any(Result::is_err) {
        return Err("a transaction signature does not verify".into());
    }
    let ids: Vec<Hash> = block.txs.iter().map(Transaction::id).collect();
    let leaves = tx_leaves(&ids);
    if merkle::root(&leaves) != block.header.tx_root
        || ids.len() as u64 != u64::from(block.header.tx_count)
    {
        return Err("tx_root or tx_count does not match the transactions".into());
    }
    let executed = execute(
        genesis,
        &genesis.hash(),
        &parent.state_root,
        crate::execute::block_ctx(genesis, &block.header),
        &block.txs,
        state,
        next_nonce,
    )
    .map_err(|e| e.to_string())?;
    if executed.state_root != block.header.state_root {
        return Err("state_root does not match re-execution".into());
    }
    let mut frontier = frontier.clone();
    let mut nodes = Vec::with_capacity(ids.len());
    for leaf in leaves {
        frontier.append(leaf, |n| nodes.push(n));
    }
    if frontier.size() != block.header.history_size || frontier.root() != block.header.history_root
    {
        return Err("history_root or history_size does not match".into());
    }
    Ok(CheckedBlock {
        hash: block.hash(),
        ids,
        frontier,
        nodes,
        executed,
    })
}

/// The first problem found in a stored chain.
#[derive(Debug, thiserror::Error)]
#[error("block {height}: {reason}")]
pub struct ChainFault {
    /// Height of the first bad block.
    pub height: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// What a successful `verify-chain` checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainReport {
    /// Blocks checked, including genesis.
    pub blocks: u64,
    /// Transactions checked.
    pub txs: u64,
}

fn fault(height: u64, reason: impl std::fmt::Display) -> ChainFault {
    ChainFault {
        height,
        reason: reason.to_string(),
    }
}

/// Re-verifies every block from genesis: encoding, hash index, parent linkage, timestamps,
/// proposer and seal, tx signatures (batched, ZIP-215), tx root, execution rules and state
/// root, history root and size, the stored history nodes the block completed, and the commit
/// certificate stored with each block. `progress(height)` is called every 1,000 blocks.
/// Errors: the first [`ChainFault`].
pub fn verify_chain(
    store: &dyn ChainStore,
    genesis: &Genesis,
    mut progress: impl FnMut(u64),
) -> Result<ChainReport, ChainFault> {
    let chain_id = genesis.hash();
    match store.chain_id() {
        Ok(Some(id)) if id == chain_id => {}
        Ok(Some(id)) => {
            return Err(fault(
                0,
                format!("data dir is for chain {id}, genesis is {chain_id}"),
            ));
        }
        Ok(None) => return Err(fault(0, "data dir is empty")),
        Err(e) => return Err(fault(0, e)),
    }
    let head = store.head_height().map_err(|e| fault(0, e))?.unwrap_or(0);
    let g = store
        .block(0)
        .map_err(|e| fault(0, e))?
        .ok_or_else(|| fault(0, "missing"))?;
    if g != genesis.block() {
        return Err(fault(
            0,
            "stored genesis block differs from the genesis file",
        ));
    }
    let mut rr = genesis
        .round_robin()
        .map(|c| RoundRobin::new(c.clone(), None, 0, 0));
    let time_at = |h: u64| {
        store
            .header(h)
            .ok()
            .flatten()
            .map(|s| s.header.timestamp_ms)
    };
    let pow = genesis.pow();
    let mut parent = g.header;
    let mut frontier = Frontier::new();
    let mut nonces: HashMap<PublicKey, u64> = HashMap::new();
    let mut state = genesis
        .initial_state()
        .map_err(|e| fault(0, format!("genesis contract state: {e}")))?;
    let mut txs_checked = 0u64;
    // the stored validator-set witnesses must be exactly what re-execution gives (a data dir
    // from before witnesses were kept has none, which is not a fault)
    let mut witnesses: HashMap<u64, _> = store
        .set_change_witnesses(head.saturating_add(1))
        .map_err(|e| fault(0, e))?
        .into_iter()
        .collect();
    for h in 1..=head {
        let block = store
            .block(h)
            .map_err(|e| fault(h, e))?
            .ok_or_else(|| fault(h, "missing"))?;
        let hash = block.hash();
        if store.height_of(&hash).map_err(|e| fault(h, e))? != Some(h) {
            return Err(fault(h, format!("hash index does not map {hash} here")));
        }
        // the set of height h, from the state after h - 1 (governance changes it)
        let set = auditchain_contracts::system::validators_at(&state, h)
            .map_err(|e| fault(h, format!("validator set: {e}")))?;
        if let Some(rr) = rr.as_mut() {
            rr.set_validators(set.clone());
        }
        let rules = match (&rr, pow) {
            (Some(rr), _) => HeaderRules::RoundRobin(rr),
            (None, Some(cfg)) => HeaderRules::Pow {
                cfg,
                time_at: &time_at,
            },
            (None, None) => return Err(fault(0, "genesis names no consensus engine")),
        };
        let checked = check_block(
            genesis,
            &rules,
            &parent,
            &frontier,
            &block,
            now_ms().max(block.header.timestamp_ms),
            |_| false,
            &state,
            |s| Ok::<u64, std::convert::Infallible>(nonces.get(s).copied().unwrap_or(0)),
        )
        .map_err(|e| fault(h, e))?;
        // receipts are built from the stored history nodes, which sit in the block's log
        // record (no backend checksum): they must be the ones the transactions give
        for n in &checked.nodes {
            if n.level >= MIN_STORED_LEVEL
                && store
                    .history_node(n.level, n.index)
                    .map_err(|e| fault(h, e))?
                    != Some(n.hash)
            {
                return Err(fault(
                    h,
                    format!(
                        "stored history node ({}, {}) differs from the one the block's transactions give",
                        n.level, n.index
                    ),
                ));
            }
        }
        state.apply(&checked.executed.state_writes);
        if let Some(stored) = witnesses.remove(&h)
            && Some(&stored) != checked.executed.set_change_witness.as_ref()
        {
            return Err(fault(
                h,
                "stored validator-set change witness is not what the block wrote",
            ));
        }
        if rr.is_some() {
            let cert = store
                .certificate(h)
                .map_err(|e| fault(h, e))?
                .ok_or_else(|| fault(h, "commit certificate missing"))?;
            cert.check_header(&chain_id, &block.header, &set)
                .map_err(|e| fault(h, format!("commit certificate: {e}")))?;
            // the header commits to the parent's stored (canonical) certificate
            let parent_cert = if h == 1 {
                None
            } else {
                store.certificate(h - 1).map_err(|e| fault(h, e))?
            };
            if last_commit_hash(parent_cert.as_ref()) != block.header.last_commit_hash {
                return Err(fault(
                    h,
                    format!(
                        "last_commit_hash does not name the stored certificate of block {}",
                        h - 1
                    ),
                ));
            }
        }
        for t in &block.txs {
            nonces.insert(*t.signer(), t.body().nonce + 1);
        }
        let ids = checked.ids;
        frontier = checked.frontier;
        txs_checked += ids.len() as u64;
        parent = block.header;
        if h % 1000 == 0 {
            progress(h);
        }
    }
    Ok(ChainReport {
        blocks: head + 1,
        txs: txs_checked,
    })
}

/// Verifies a receipt offline against a genesis, the only thing trusted: chain id, tx
/// signature and id, both inclusion proofs, seal, that the proposer was scheduled for that
/// height and round in the validator set of that height, and the commit certificate (a
/// quorum of that set precommitted the block). The set of the receipt's height is followed
/// from the genesis set through the receipt's `validator_set_changes`
/// ([`receipt_validators`]). Errors: [`ReceiptError`].
///
/// On a proof-of-work chain there is no certificate: the receipt proves that a listed miner
/// sealed the header and that its hash meets the difficulty it claims; how deep the block is
/// (its finality) is not provable from one header.
pub fn verify_receipt(receipt: &Receipt, genesis: &Genesis) -> Result<(), ReceiptError> {
    let set = receipt_validators(receipt, genesis)?;
    verify_receipt_with(receipt, genesis, &set)
}

/// The validator set in force at the receipt's height, followed from the genesis set through
/// the receipt's validator-set changes: each must be certified by the set before it, and
/// they must be in height order at or below the receipt's height. Errors:
/// [`ReceiptError::ValidatorSetChange`] naming the change that fails.
///
/// What this cannot show: that no change was left out. A receipt without the latest change
/// is checked against the older set, which then must have certified the block; validators
/// that governance removed could still do that together. An auditor who already knows a
/// later set passes it to [`verify_receipt_with`] instead (CometBFT's light clients bound
/// the same risk with a trusting period).
pub fn receipt_validators(
    receipt: &Receipt,
    genesis: &Genesis,
) -> Result<Vec<PublicKey>, ReceiptError> {
    let changes = &receipt.validator_set_changes;
    if !changes.is_empty() && genesis.round_robin().is_none() {
        return Err(ReceiptError::ValidatorSetChange(
            "a proof-of-work chain does not change its miners".into(),
        ));
    }
    let chain_id = genesis.hash();
    let mut set = genesis.validators().to_vec();
    let mut last = 0;
    for change in changes {
        let from = change.from_height();
        if from <= last || from > receipt.header.height {
            return Err(ReceiptError::ValidatorSetChange(format!(
                "change at height {from} out of order (after {last}, receipt at {})",
                receipt.header.height
            )));
        }
        set = change.verify(&chain_id, &set, &crate::execute::validator_set_key(from))?;
        last = from;
    }
    Ok(set)
}

/// [`verify_receipt`] against `validators`, the validator set in force at the receipt's
/// height as the auditor already knows it (its validator-set changes are not used). Errors:
/// [`ReceiptError`].
pub fn verify_receipt_with(
    receipt: &Receipt,
    genesis: &Genesis,
    validators: &[PublicKey],
) -> Result<(), ReceiptError> {
    match (genesis.round_robin(), genesis.pow()) {
        (Some(rr), _) => {
            if receipt.certificate.is_none() {
                return Err(ReceiptError::Certificate(
                    "missing: a round-robin block is final only with its certificate".into(),
                ));
            }
            let mut engine = RoundRobin::new(rr.clone(), None, 0, 0);
            engine.set_validators(validators.to_vec());
            receipt.verify(&genesis.hash(), validators, |h| {
                engine.check_proposer(h).map_err(|e| e.to_string())
            })
        }
        (None, Some(cfg)) => receipt.verify(&genesis.hash(), genesis.validators(), |h| {
            let (d, _) = pow::fields(h).map_err(|e| e.to_string())?;
            if !cfg.miners.contains(&h.proposer) {
                return Err(format!("{} is not a miner of this chain", h.proposer));
            }
            if d < 1 || !pow::meets(&h.hash(), d) {
                return Err(format!("block hash does not meet its difficulty {d}"));
            }
            Ok(())
        }),
        (None, None) => Err(ReceiptError::Certificate("genesis names no engine".into())),
    }
}
