//! Opening a data dir: bind it to the genesis and re-verify the stored head before anything
//! runs on it.

use anyhow::{Context, bail};
use auditchain_consensus::pow;
use auditchain_consensus::{Engine, RoundRobin};
use auditchain_genesis::Genesis;
use auditchain_primitives::block::tx_root;
use auditchain_primitives::merkle::Frontier;
use auditchain_primitives::{Hash, Header, Transaction};
use auditchain_storage::ChainStore;

/// Verified starting point of the chain read from storage.
pub struct ChainStart {
    /// The head header.
    pub head: Header,
    /// The history frontier at the head.
    pub frontier: Frontier,
}

/// Binds the store to the genesis (refusing another chain's data dir), then re-verifies the
/// stored head: hash index, tx root, history root against stored nodes, seal, proposer and
/// commit certificate. Errors: a message naming what failed.
pub fn open_chain(store: &dyn ChainStore, genesis: &Genesis) -> anyhow::Result<ChainStart> {
    let gblock = genesis.block();
    let state = genesis
        .initial_state()
        .map_err(anyhow::Error::msg)
        .context("genesis contract state")?;
    store
        .init(&gblock, &genesis.to_json_pretty(), &state.0)
        .context("opening the data dir")?;
    let height = store
        .head_height()?
        .context("store has no head after init")?;
    let head = (|| -> anyhow::Result<ChainStart> {
        let block = store
            .block(height)?
            .with_context(|| format!("head block {height} missing"))?;
        let hash = block.hash();
        if store.height_of(&hash)? != Some(height) {
            bail!("hash index does not map {hash} to height {height}");
        }
        let ids: Vec<Hash> = block.txs.iter().map(Transaction::id).collect();
        if tx_root(&ids) != block.header.tx_root {
            bail!("tx_root does not match the stored transactions");
        }
        let frontier = Frontier::from_source(store, block.header.history_size)
            .context("reading history nodes")?;
        if frontier.root() != block.header.history_root {
            bail!("history_root does not match the stored history tree");
        }
        if height == 0 {
            if block != gblock {
                bail!("stored genesis block differs from the genesis file");
            }
        } else if let Some(rr) = genesis.round_robin() {
            let set = auditchain_contracts::system::validators_at(
                &crate::execute::StoreState(store),
                height,
            )
            .context("validator set")?;
            let mut rules = RoundRobin::new(rr.clone(), None, 0, 0);
            rules.set_validators(set.clone());
            rules.check_proposer(&block.header)?;
            block.verify_seal()?;
            store
                .certificate(height)?
                .context("commit certificate missing")?
                .check_header(&genesis.hash(), &block.header, &set)
                .context("commit certificate")?;
        } else if let Some(cfg) = genesis.pow() {
            let (d, _) = pow::fields(&block.header)?;
            if !cfg.miners.contains(&block.header.proposer) || !pow::meets(&hash, d) {
                bail!("the head is not a valid proof-of-work block of a listed miner");
            }
            block.verify_seal()?;
        }
        Ok(ChainStart {
            head: block.header,
            frontier,
        })
    })()
    .with_context(|| {
        format!(
            "stored head at height {height} fails verification; the data dir may be damaged \
             (run `auditchain verify-chain` to find the first bad block)"
        )
    })?;
    Ok(head)
}
