//! Building this node's proposal: select from the mempool, execute, extend a copy of the
//! history frontier, seal.

use std::sync::Arc;

use anyhow::Context;
use auditchain_primitives::block::{ConsensusFields, HEADER_VERSION, tx_root};
use auditchain_primitives::{Block, Hash, Header, Transaction, merkle};

use super::{Actor, Candidate};
use crate::execute::{ExecError, execute};
use crate::verify::CheckedBlock;

impl Actor {
    /// Builds, executes and seals a block on the head; keeps it as a candidate. Returns its hash.
    pub(super) fn build(
        &mut self,
        height: u64,
        round: u32,
        timestamp_ms: u64,
    ) -> anyhow::Result<Hash> {
        let key = self.key.clone().context("not a validator")?;
        let l = &self.genesis.limits;
        let store = Arc::clone(&self.store);
        let mut picked = self
            .mempool
            .select(l.max_block_txs as usize, l.max_block_bytes, |s| {
                store.next_nonce(s).unwrap_or(0)
            });
        // Admission applies the same rules, so this loop only runs more than once if state
        // changed under a pending transaction; the offender is evicted, never silently kept.
        let (executed, txs) = loop {
            let txs: Vec<Transaction> = picked.iter().map(|(_, t)| t.clone()).collect();
            match execute(
                &self.genesis,
                &self.chain_id,
                &self.head.state_root,
                &txs,
                |s| store.next_nonce(s),
            ) {
                Ok(x) => break (x, txs),
                Err(ExecError::Tx { index, reason }) => {
                    let (id, _) = picked.remove(index);
                    tracing::warn!(%id, %reason, "evicting transaction that no longer applies");
                    self.mempool
                        .remove_committed(&[id], |s| store.next_nonce(s).unwrap_or(0));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let ids: Vec<Hash> = picked.into_iter().map(|(id, _)| id).collect();
        let mut frontier = self.frontier.clone();
        let mut nodes = Vec::with_capacity(ids.len() * 2);
        for id in &ids {
            frontier.append(merkle::leaf_hash(&id.0), |n| nodes.push(n));
        }
        let header = Header {
            version: HEADER_VERSION,
            height,
            parent_hash: self.head_hash,
            timestamp_ms,
            proposer: key.public_key(),
            tx_root: tx_root(&ids),
            tx_count: ids.len() as u32,
            history_root: frontier.root(),
            history_size: frontier.size(),
            state_root: executed.state_root,
            consensus: ConsensusFields::RoundRobin { round },
        };
        let block = Block::seal_with(header, txs, &key);
        let hash = block.hash();
        self.candidates.insert(
            hash,
            Candidate {
                block,
                checked: CheckedBlock {
                    hash,
                    ids,
                    frontier,
                    nodes,
                    executed,
                },
            },
        );
        Ok(hash)
    }
}
