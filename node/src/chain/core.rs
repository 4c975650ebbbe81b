//! What the round-robin and the proof-of-work actors share: admission to the mempool, waiters,
//! metrics, block assembly, making a committed block the head, and asking peers for blocks.

use std::sync::Arc;

use anyhow::Context;
use auditchain_p2p::GossipMessage;
use auditchain_primitives::block::{ConsensusFields, HEADER_VERSION, tx_leaves};
use auditchain_primitives::{Hash, Header, PublicKey, Transaction, merkle};
use auditchain_rpc::types::HeadView;

use super::{Command, Core, GOSSIP_TXS, MempoolStats, Origin, now_ms};
use auditchain_contracts::BlockCtx;

use auditchain_primitives::tx::Payload;
use auditchain_rpc::RpcError;

use crate::execute::{ExecError, StoreState, check_writer, execute};
use crate::verify::CheckedBlock;

impl Core {
    /// Handles the commands both engines treat alike; returns the others.
    pub(super) fn handle_common(&mut self, cmd: Command) -> Option<Command> {
        match cmd {
            Command::Submit { txs, origin, reply } => {
                let store = &self.store;
                let state = StoreState(&**store);
                let ctx = BlockCtx {
                    height: self.head.height + 1,
                    timestamp_ms: now_ms().max(self.head.timestamp_ms),
                    proposer: self.head.proposer,
                    round_robin: self.genesis.round_robin().is_some(),
                };
                let mut writers: std::collections::HashMap<PublicKey, Result<(), RpcError>> =
                    Default::default();
                let mut committed_nonces: std::collections::HashMap<PublicKey, u64> =
                    Default::default();
                let mut admitted = Vec::new();
                let out = txs
                    .into_iter()
                    .map(|(id, tx)| {
                        let signer = *tx.signer();
                        writers
                            .entry(signer)
                            .or_insert_with(|| check_writer(&state, &signer))
                            .clone()?;
                        // records never fail in a block; every other kind can
                        if !matches!(tx.body().payload, Payload::RecordEvent { .. }) {
                            admission_dry_run(&state, ctx, &tx)?;
                        }
                        // the committed nonce cannot change during this command
                        let next = *committed_nonces
                            .entry(signer)
                            .or_insert_with(|| store.next_nonce(&signer).unwrap_or(0));
                        // Telling a committed duplicate from a stale nonce costs an index
                        // lookup; only a client is told which (peers' late gossip is common
                        // under load, and was a fifth of a cluster's CPU in this lookup).
                        let r = self.mempool.admit(tx.clone(), id, next, || {
                            origin == Origin::Local && store.tx_seq(&id).ok().flatten().is_some()
                        });
                        if r.is_ok() {
                            admitted.push(tx);
                        }
                        r
                    })
                    .collect();
                if self.net.is_some() {
                    // only gossip can bring a copy
                    self.recent.insert(&admitted);
                }
                let _ = reply.send(out);
                // a client's transactions are gossiped by this node; a peer's were by gossip
                if let (Some(net), Origin::Local) = (&self.net, origin) {
                    for chunk in admitted.chunks(GOSSIP_TXS) {
                        if !net.publish(GossipMessage::Txs(chunk.to_vec())) {
                            tracing::warn!("network queue full: transactions not gossiped");
                        }
                    }
                }
            }
            Command::Watch { id, reply } => {
                if self.mempool.get(&id).is_some() {
                    // pending, or in the block being written: answered after the flush
                    self.waiters.entry(id).or_default().push(reply);
                } else if let Ok(Some(seq)) = self.store.tx_seq(&id) {
                    let _ = reply.send(Some(seq));
                } else {
                    let _ = reply.send(None);
                }
            }
            Command::Pending { id, reply } => {
                let _ = reply.send(self.mempool.get(&id).cloned());
            }
            Command::NextNonce { signer, reply } => {
                let committed = self.store.next_nonce(&signer).unwrap_or(0);
                let _ = reply.send(self.mempool.next_nonce(&signer, committed));
            }
            Command::Stats { reply } => {
                let _ = reply.send(MempoolStats {
                    txs: self.mempool.len(),
                    bytes: self.mempool.bytes(),
                    best_peer_height: self.best_peer_height,
                    mining: self.mining,
                });
            }
            Command::SignerMetrics { reply } => {
                let list = self
                    .validators_or_genesis(self.head.height + 1)
                    .iter()
                    .map(|v| (*v, self.metrics.get(v).copied().unwrap_or_default()))
                    .collect();
                let _ = reply.send(list);
            }
            Command::SetMining { reply, .. } if self.genesis.pow().is_none() => {
                let _ = reply.send(Err("this chain does not use proof of work".into()));
            }
            other => return Some(other),
        }
        None
    }

    /// The validator set that certifies blocks at `height`, from the committed state's
    /// validator-set history (governance changes it; see docs/contracts.md). Errors: the state
    /// cannot be read, as text.
    pub(super) fn validators_at(&self, height: u64) -> Result<Vec<PublicKey>, String> {
        auditchain_contracts::system::validators_at(&StoreState(&*self.store), height)
            .map_err(|e| format!("validator set of height {height}: {e}"))
    }

    /// [`Core::validators_at`] for metrics and views: the genesis set if state cannot be read
    /// (logged).
    fn validators_or_genesis(&self, height: u64) -> Vec<PublicKey> {
        self.validators_at(height).unwrap_or_else(|e| {
            tracing::error!(error = %e, "using the genesis validator set");
            self.genesis.validators().to_vec()
        })
    }

    /// Records activity of a validator (a vote when `vote`, else a proposal or block).
    pub(super) fn saw(&mut self, validator: PublicKey, vote: bool) {
        let m = self.metrics.entry(validator).or_default();
        m.last_seen_ms = Some(now_ms());
        if vote {
            m.votes += 1;
        }
    }

    /// Selects transactions from the mempool and executes them on the head, extending a copy
    /// of the history frontier: the header (sealed by the caller) and what committing needs.
    /// Transactions that no longer apply are evicted, never kept silently.
    pub(super) fn assemble(
        &mut self,
        proposer: PublicKey,
        timestamp_ms: u64,
        consensus: ConsensusFields,
        last_commit_hash: Hash,
    ) -> anyhow::Result<(Header, Vec<Transaction>, CheckedBlock)> {
        let l = &self.genesis.limits;
        let store = Arc::clone(&self.store);
        let mut picked = self
            .mempool
            .select(l.max_block_txs as usize, l.max_block_bytes, |s| {
                store.next_nonce(s).unwrap_or(0)
            });
        let (executed, txs) = loop {
            let txs: Vec<Transaction> = picked.iter().map(|(_, t)| t.clone()).collect();
            let ctx = BlockCtx {
                height: self.head.height + 1,
                timestamp_ms,
                proposer,
                round_robin: self.genesis.round_robin().is_some(),
            };
            match execute(
                &self.genesis,
                &self.chain_id,
                &self.head.state_root,
                ctx,
                &txs,
                &StoreState(&*store),
                |s| store.next_nonce(s),
            ) {
                Ok(x) => break (x, txs),
                Err(ExecError::Tx { index, reason }) => {
                    let (id, _) = picked.remove(index);
                    tracing::warn!(%id, %reason, "evicting transaction that no longer applies");
                    self.mempool
                        .remove_committed(&[id], |s| store.next_nonce(s).unwrap_or(0));
                }
                Err(e) => return Err(e).context("executing the block"),
            }
        };
        let ids: Vec<Hash> = picked.into_iter().map(|(id, _)| id).collect();
        let mut frontier = self.frontier.clone();
        let mut nodes = Vec::with_capacity(ids.len() * 2);
        let leaves = tx_leaves(&ids);
        for leaf in &leaves {
            frontier.append(*leaf, |n| nodes.push(n));
        }
        let header = Header {
            version: HEADER_VERSION,
            height: self.head.height + 1,
            parent_hash: self.head_hash,
            timestamp_ms,
            proposer,
            tx_root: merkle::root(&leaves),
            tx_count: ids.len() as u32,
            history_root: frontier.root(),
            history_size: frontier.size(),
            state_root: executed.state_root,
            last_commit_hash,
            consensus,
        };
        let checked = CheckedBlock {
            hash: header.hash(),
            ids,
            frontier,
            nodes,
            executed,
        };
        Ok((header, txs, checked))
    }

    /// Makes a committed, flushed block the head: mempool, waiters, subscribers, metrics.
    pub(super) fn published(&mut self, header: Header, checked: CheckedBlock) {
        self.metrics.entry(header.proposer).or_default().proposed += 1;
        if let ConsensusFields::RoundRobin { round } = header.consensus
            && round > 0
        {
            let set = self.validators_or_genesis(header.height);
            let n = set.len().max(1) as u64;
            for r in 0..round.min(64) {
                let i = (header.height + u64::from(r)) % n;
                if let Some(missed) = set.get(i as usize) {
                    self.metrics.entry(*missed).or_default().missed_turns += 1;
                }
            }
        }
        let store = Arc::clone(&self.store);
        self.frontier = checked.frontier;
        self.head = header;
        self.head_hash = checked.hash;
        self.mempool
            .remove_committed(&checked.ids, |s| store.next_nonce(s).unwrap_or(0));
        let _ = self.durable.send(self.head.clone());
        if !self.waiters.is_empty() {
            let first = self.head.history_size - checked.ids.len() as u64;
            for (i, id) in checked.ids.iter().enumerate() {
                if let Some(ws) = self.waiters.remove(id) {
                    for w in ws {
                        let _ = w.send(Some(first + i as u64));
                    }
                }
            }
            self.waiters.retain(|_, ws| {
                ws.retain(|w| !w.is_closed());
                !ws.is_empty()
            });
        }
        let _ = self.heads.send(HeadView::of(&self.head));
        let fin = super::finalized_height(&self.genesis, self.head.height);
        if fin > self.last_finalized {
            self.last_finalized = fin;
            let header = if fin == self.head.height {
                Some(self.head.clone())
            } else {
                self.store.header(fin).ok().flatten().map(|s| s.header)
            };
            if let Some(h) = header {
                let _ = self.finalized.send(HeadView::of(&h));
            }
        }
    }
}

/// Mempool admission of a contract call or evidence anchor: it must succeed on the committed
/// state as the first transaction of the next block, so callers get the contract's error
/// (over balance, not an admin, a second vote, re-anchoring) at once instead of a failed
/// transaction in a block. It can still fail in a block when earlier transactions change
/// the state first; the block's events then say why. Errors: [`RpcError::CallRejected`].
fn admission_dry_run(
    state: &StoreState<'_>,
    ctx: BlockCtx,
    tx: &Transaction,
) -> Result<(), RpcError> {
    match auditchain_contracts::dry_run(state, ctx, tx) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(RpcError::CallRejected(e.to_string())),
        Err(e) => Err(RpcError::Unavailable(e.to_string())),
    }
}
