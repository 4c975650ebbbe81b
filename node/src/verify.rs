//! Offline verification: a whole stored chain (`verify-chain`) and single receipts
//! (`verify-receipt`), trusting only the genesis file.

use std::collections::HashMap;

use auditchain_consensus::{Engine, RoundRobin};
use auditchain_genesis::Genesis;
use auditchain_primitives::block::tx_root;
use auditchain_primitives::merkle::{self, Frontier};
use auditchain_primitives::receipt::ReceiptError;
use auditchain_primitives::tx::verify_transactions;
use auditchain_primitives::{Hash, PublicKey, Receipt, Transaction};
use auditchain_storage::ChainStore;

use crate::chain::now_ms;
use crate::execute::execute;

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
/// root, history root and size. `progress(height)` is called every 1,000 blocks.
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
    let engine = RoundRobin::new(genesis.round_robin().clone(), None, 0, 0);
    let mut parent = g.header;
    let mut frontier = Frontier::new();
    let mut nonces: HashMap<PublicKey, u64> = HashMap::new();
    let mut txs_checked = 0u64;
    for h in 1..=head {
        let block = store
            .block(h)
            .map_err(|e| fault(h, e))?
            .ok_or_else(|| fault(h, "missing"))?;
        let hash = block.hash();
        if store.height_of(&hash).map_err(|e| fault(h, e))? != Some(h) {
            return Err(fault(h, format!("hash index does not map {hash} here")));
        }
        engine
            .verify_header(&block, &parent, now_ms().max(block.header.timestamp_ms))
            .map_err(|e| fault(h, e))?;
        let refs: Vec<&Transaction> = block.txs.iter().collect();
        if let Some(i) = verify_transactions(&refs).iter().position(Result::is_err) {
            return Err(fault(
                h,
                format!("transaction {i}: signature does not verify"),
            ));
        }
        let ids: Vec<Hash> = block.txs.iter().map(Transaction::id).collect();
        if tx_root(&ids) != block.header.tx_root
            || ids.len() as u64 != u64::from(block.header.tx_count)
        {
            return Err(fault(
                h,
                "tx_root or tx_count does not match the transactions",
            ));
        }
        let executed = execute(genesis, &chain_id, &parent.state_root, &block.txs, |s| {
            Ok::<u64, std::convert::Infallible>(nonces.get(s).copied().unwrap_or(0))
        })
        .map_err(|e| fault(h, e))?;
        if executed.state_root != block.header.state_root {
            return Err(fault(h, "state_root does not match re-execution"));
        }
        for t in &block.txs {
            nonces.insert(*t.signer(), t.body().nonce + 1);
        }
        for id in &ids {
            frontier.append(merkle::leaf_hash(&id.0), |_| {});
        }
        if frontier.size() != block.header.history_size
            || frontier.root() != block.header.history_root
        {
            return Err(fault(h, "history_root or history_size does not match"));
        }
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

/// Verifies a receipt offline against a genesis: chain id, tx signature and id, both inclusion
/// proofs, seal, and that the proposer was scheduled for that height in the genesis validator
/// set. Errors: [`ReceiptError`].
pub fn verify_receipt(receipt: &Receipt, genesis: &Genesis) -> Result<(), ReceiptError> {
    let engine = RoundRobin::new(genesis.round_robin().clone(), None, 0, 0);
    receipt.verify(&genesis.hash(), |h| {
        engine.check_proposer(h).map_err(|e| e.to_string())
    })
}
