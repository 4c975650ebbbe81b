//! The bridge between the p2p task and the chain actor.
//!
//! Gossiped transactions arrive unparsed and are parsed and checked (canonical body, limits,
//! writer role, ZIP-215 signatures in batches) on the [`crate::admission`] pool before they
//! reach the mempool: one bad transaction rejects the whole message and penalises the peer.
//! Mempool refusals (full, stale nonces, duplicates) are not the sender's fault: the batch is
//! forwarded (Accept) if at least one of its transactions was new to this mempool, and ignored
//! otherwise.
//! Proposals and votes go to the chain actor, which judges them.
//!
//! Transaction batches are verified by their own task behind a queue of
//! [`TX_BATCHES_QUEUED`] messages, so consensus messages never wait behind signature checks
//! (under load they did, for seconds: no block was decided while the backlog drained). When
//! the queue is full a batch is ignored without penalty, as mempools do under load; its
//! transactions still reach the chain through the mempool of the node they were sent to.
//!
//! Sync requests from peers are served from storage, never above the durable (final, flushed)
//! head.

use std::sync::Arc;

use auditchain_genesis::Genesis;
use auditchain_p2p::{BlockProvider, InboundMessage, MessageRef, NetEvent, NetHandle, Verdict};
use auditchain_primitives::tx::WireTx;
use auditchain_primitives::vote::{CommitCertificate, WireCertifiedBlock};
use auditchain_primitives::{Header, Transaction};
use auditchain_storage::ChainStore;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::chain::{ChainHandle, Origin};
use crate::execute::check_tx;

/// Gossiped transaction batches verified at once (each uses all cores).
const TX_BATCHES_IN_FLIGHT: usize = 2;
/// Gossiped transaction batches waiting for verification (each up to 4,096 transactions).
pub const TX_BATCHES_QUEUED: usize = 32;

/// Serves block sync from storage up to the durable head.
pub struct StoreBlocks {
    /// Storage.
    pub store: Arc<dyn ChainStore>,
    /// The durable head.
    pub durable: watch::Receiver<Header>,
}

impl BlockProvider for StoreBlocks {
    fn head(&self) -> u64 {
        self.durable.borrow().height
    }

    fn blocks(&self, from: u64, to: u64) -> Vec<WireCertifiedBlock> {
        let to = to.min(self.head());
        let mut out = Vec::new();
        for h in from..=to {
            let Ok(certificate) = self.store.certificate(h) else {
                break;
            };
            let Ok(Some(block)) = self.store.block_wire(h, certificate) else {
                break;
            };
            out.push(block);
        }
        out
    }

    fn certificate(&self, height: u64) -> Option<CommitCertificate> {
        if height > self.head() {
            return None;
        }
        self.store.certificate(height).ok().flatten()
    }
}

/// Routes network events until the p2p task stops.
pub async fn pump(
    mut events: mpsc::Receiver<NetEvent>,
    net: NetHandle,
    chain: ChainHandle,
    genesis: Arc<Genesis>,
) {
    let (queue, mut batches) = mpsc::channel::<(MessageRef, Vec<WireTx>)>(TX_BATCHES_QUEUED);
    let verifier = {
        let (net, chain) = (net.clone(), chain.clone());
        tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(TX_BATCHES_IN_FLIGHT));
            while let Some((msg, txs)) = batches.recv().await {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                let (net, chain, genesis) = (net.clone(), chain.clone(), Arc::clone(&genesis));
                tokio::spawn(async move {
                    let v = gossiped_txs(txs, &chain, &genesis).await;
                    net.verdict(msg, v);
                    drop(permit);
                });
            }
        })
    };
    while let Some(ev) = events.recv().await {
        match ev {
            NetEvent::Message {
                msg,
                message: InboundMessage::Txs(txs),
            } => {
                if let Err(mpsc::error::TrySendError::Full((msg, txs))) = queue.try_send((msg, txs))
                {
                    tracing::debug!(
                        txs = txs.len(),
                        "transaction gossip backlog full: batch ignored"
                    );
                    net.verdict(msg, Verdict::Ignore);
                }
            }
            NetEvent::Message { msg, message } => {
                if chain.consensus(msg, message).await.is_err() {
                    break;
                }
            }
            NetEvent::PeerConnected(_) => {
                if chain.peer_connected().await.is_err() {
                    break;
                }
            }
            NetEvent::PeerDisconnected(_) => {}
        }
    }
    verifier.abort();
}

async fn gossiped_txs(wire: Vec<WireTx>, chain: &ChainHandle, genesis: &Arc<Genesis>) -> Verdict {
    let g = Arc::clone(genesis);
    let handle = chain.clone();
    let checked = crate::admission::run(move || {
        // copies of transactions verified here already (admitted, or committed from a
        // proposal that arrived first) are dropped for one hash each
        let chain_id = g.hash();
        let keys: Vec<_> = wire
            .iter()
            .map(|w| crate::recent::key(&w.id_on(&chain_id), &w.signature))
            .collect();
        let known = handle.recent().contains_each(&keys);
        let txs = wire
            .into_iter()
            .zip(known)
            .filter(|(_, known)| !known)
            .map(|(w, _)| Transaction::try_from(w))
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        if txs.iter().any(|t| check_tx(&g, &chain_id, t).is_err()) {
            return None;
        }
        if crate::admission::verify(&txs).iter().any(Result::is_err) {
            return None;
        }
        Some(txs.into_iter().map(|t| (t.id(), t)).collect::<Vec<_>>())
    })
    .await;
    let Some(Some(txs)) = checked else {
        return Verdict::Reject;
    };
    if txs.is_empty() {
        return Verdict::Ignore;
    }
    match chain.submit(txs, Origin::Peer).await {
        Ok(results) => {
            // worth forwarding if it taught this mempool something; the rest (stale
            // nonces, duplicates, a full mempool) is not the sender's fault
            let useful = results.iter().any(Result::is_ok);
            if useful {
                Verdict::Accept
            } else {
                Verdict::Ignore
            }
        }
        Err(_) => Verdict::Ignore,
    }
}
