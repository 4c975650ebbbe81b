//! The node's implementation of the RPC [`Backend`]: submissions go through signature batches
//! and the chain actor; reads go straight to storage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auditchain_genesis::Genesis;
use auditchain_primitives::block::tx_leaves;
use auditchain_primitives::merkle::{self, MerkleError};
use auditchain_primitives::receipt::ValidatorSetChange;
use auditchain_primitives::tx::{Payload, TxError, WireTx, data_hash};
use auditchain_primitives::{Hash, Header, PublicKey, Receipt, Transaction};
use auditchain_rpc::types::*;
use auditchain_rpc::{Backend, RpcError};
use auditchain_storage::{ChainStore, IndexKey, StorageError, StoredTx};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::chain::{ActorGone, ChainHandle, Origin, now_ms};
use crate::execute::check_tx;
use crate::mempool::AdmitError;
use auditchain_p2p::NetHandle;

/// Most index entries one trail call examines before returning a partial page with a cursor.
const MAX_TRAIL_SCAN: usize = 50_000;

fn storage(e: StorageError) -> RpcError {
    RpcError::Unavailable(format!("storage: {e}"))
}

fn gone(_: ActorGone) -> RpcError {
    RpcError::Unavailable("chain actor stopped (node shutting down)".into())
}

fn merkle_err(e: MerkleError) -> RpcError {
    RpcError::Unavailable(format!("building proof: {e}"))
}

fn tx_error(e: TxError) -> RpcError {
    match e {
        TxError::Signature(_) => RpcError::BadSignature,
        other => RpcError::InvalidTransaction(other.to_string()),
    }
}

fn admit_error(id: &Hash, e: AdmitError) -> RpcError {
    match e {
        AdmitError::DuplicatePending => RpcError::Duplicate {
            id: id.to_hex(),
            state: "pending",
        },
        AdmitError::DuplicateCommitted => RpcError::Duplicate {
            id: id.to_hex(),
            state: "committed",
        },
        AdmitError::NonceTooLow { expected, got } => RpcError::NonceTooLow { expected, got },
        AdmitError::NonceTooHigh {
            expected,
            got,
            window,
        } => RpcError::NonceTooHigh {
            expected,
            got,
            window,
        },
        AdmitError::NonceTaken { nonce, other } => RpcError::NonceTaken {
            nonce,
            other: other.to_hex(),
        },
        AdmitError::Full(reason) => RpcError::MempoolFull { reason },
        AdmitError::Rejected(e) => e,
    }
}

/// The node's RPC backend.
pub struct NodeBackend {
    store: Arc<dyn ChainStore>,
    chain: ChainHandle,
    genesis: Arc<Genesis>,
    chain_id: Hash,
    heads: broadcast::Sender<HeadView>,
    finalized: broadcast::Sender<HeadView>,
    durable: watch::Receiver<Header>,
    validator: Option<PublicKey>,
    started: Instant,
    net: Option<NetHandle>,
}

/// What the backend serves from.
pub struct BackendParts {
    /// Storage (read only here).
    pub store: Arc<dyn ChainStore>,
    /// The chain actor.
    pub chain: ChainHandle,
    /// The genesis.
    pub genesis: Arc<Genesis>,
    /// New heads (`chain_subscribeNewHeads`).
    pub heads: broadcast::Sender<HeadView>,
    /// Newly finalized blocks (`chain_subscribeFinalized`).
    pub finalized: broadcast::Sender<HeadView>,
    /// The last head the actor flushed to disk: nothing above it is ever served, although
    /// sled may already show it.
    pub durable: watch::Receiver<Header>,
    /// This node's validator key, if any.
    pub validator: Option<PublicKey>,
    /// The network, if any.
    pub net: Option<NetHandle>,
}

impl NodeBackend {
    /// A backend over a store and a running chain actor.
    pub fn new(p: BackendParts) -> Self {
        Self {
            chain_id: p.genesis.hash(),
            store: p.store,
            chain: p.chain,
            genesis: p.genesis,
            heads: p.heads,
            finalized: p.finalized,
            durable: p.durable,
            validator: p.validator,
            started: Instant::now(),
            net: p.net,
        }
    }

    fn durable_height(&self) -> u64 {
        self.durable.borrow().height
    }

    fn location(&self, seq: u64, st: &StoredTx) -> Result<TxLocation, RpcError> {
        let h = self
            .store
            .header(st.height)
            .map_err(storage)?
            .ok_or_else(|| RpcError::Unavailable(format!("header {} missing", st.height)))?;
        Ok(TxLocation {
            height: st.height,
            index: st.index,
            seq,
            block_hash: h.header.hash(),
            block_time_ms: h.header.timestamp_ms,
        })
    }

    fn committed(&self, id: &Hash) -> Result<Option<(u64, StoredTx)>, RpcError> {
        let Some(seq) = self.store.tx_seq(id).map_err(storage)? else {
            return Ok(None);
        };
        let st = self
            .store
            .tx_at(seq)
            .map_err(storage)?
            .ok_or_else(|| RpcError::Unavailable(format!("transaction seq {seq} missing")))?;
        if st.height > self.durable_height() {
            return Ok(None); // applied but not yet flushed: still pending to clients
        }
        Ok(Some((seq, st)))
    }

    fn head_header(&self) -> Result<Header, RpcError> {
        Ok(self.durable.borrow().clone())
    }

    /// First sequence number of the first block with time ≥ `t` (history size if none).
    fn seq_at_time(&self, t: u64, head: &Header) -> Result<u64, RpcError> {
        let (mut lo, mut hi) = (1u64, head.height + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let h = self
                .store
                .header(mid)
                .map_err(storage)?
                .ok_or_else(|| RpcError::Unavailable(format!("header {mid} missing")))?
                .header;
            if h.timestamp_ms >= t {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        if lo > head.height {
            return Ok(head.history_size);
        }
        let h = self
            .store
            .header(lo)
            .map_err(storage)?
            .ok_or_else(|| RpcError::Unavailable(format!("header {lo} missing")))?
            .header;
        Ok(h.history_size - u64::from(h.tx_count))
    }

    fn block_view(&self, height: u64, full: bool) -> Result<Option<BlockView>, RpcError> {
        if height > self.durable_height() {
            return Ok(None);
        }
        let Some(b) = self.store.block(height).map_err(storage)? else {
            return Ok(None);
        };
        let tx_ids: Vec<Hash> = b.txs.iter().map(Transaction::id).collect();
        let txs = full.then(|| {
            b.txs
                .iter()
                .zip(&tx_ids)
                .map(|(t, id)| tx_view(*id, t))
                .collect()
        });
        let certificate = self.store.certificate(height).map_err(storage)?;
        Ok(Some(BlockView {
            hash: b.hash(),
            header: b.header,
            seal: b.seal,
            certificate,
            tx_ids,
            txs,
        }))
    }
}

fn tx_view(id: Hash, t: &Transaction) -> TxView {
    TxView {
        id,
        body: t.body().clone(),
        tx: WireTx::from(t.clone()),
    }
}

fn matches(q: &TrailQuery, t: &Transaction) -> bool {
    let b = t.body();
    q.entity
        .as_deref()
        .is_none_or(|e| b.payload.entity_id() == e)
        && q.signer.is_none_or(|s| b.signer == s)
        && q.event_type
            .as_deref()
            .is_none_or(|ty| b.payload.event_type() == ty)
}

impl Backend for NodeBackend {
    async fn submit(&self, wire: Vec<WireTx>) -> Vec<Result<Hash, RpcError>> {
        let genesis = Arc::clone(&self.genesis);
        let chain_id = self.chain_id;
        let n = wire.len();
        // Parse, check and verify on the admission pool (below consensus priority, off the
        // async workers): this is most of the CPU per event.
        let checked = crate::admission::run(move || {
            let mut results: Vec<Result<Hash, RpcError>> = Vec::with_capacity(n);
            let mut good: Vec<(usize, Transaction)> = Vec::with_capacity(n);
            for (i, w) in wire.into_iter().enumerate() {
                let r = Transaction::try_from(w)
                    .map_err(tx_error)
                    .and_then(|tx| check_tx(&genesis, &chain_id, &tx).map(|()| tx));
                match r {
                    Ok(tx) => {
                        results.push(Ok(Hash::ZERO));
                        good.push((i, tx));
                    }
                    Err(e) => results.push(Err(e)),
                }
            }
            let txs: Vec<Transaction> = good.iter().map(|(_, t)| t.clone()).collect();
            let sigs = crate::admission::verify(&txs);
            let mut admit = Vec::with_capacity(good.len());
            let mut slots = Vec::with_capacity(good.len());
            for ((i, tx), sig) in good.into_iter().zip(sigs) {
                match sig {
                    Ok(()) => {
                        let id = tx.id();
                        results[i] = Ok(id);
                        slots.push(i);
                        admit.push((id, tx));
                    }
                    Err(e) => results[i] = Err(tx_error(e)),
                }
            }
            (results, slots, admit)
        })
        .await;
        let Some((mut results, slots, admit)) = checked else {
            return (0..n)
                .map(|_| Err(RpcError::Unavailable("verification task failed".into())))
                .collect();
        };
        if admit.is_empty() {
            return results;
        }
        match self.chain.submit(admit, Origin::Local).await {
            Ok(admitted) => {
                for (slot, r) in slots.into_iter().zip(admitted) {
                    if let Err(e) = r {
                        let id = results[slot].clone().unwrap_or(Hash::ZERO);
                        results[slot] = Err(admit_error(&id, e));
                    }
                }
            }
            Err(e) => {
                for slot in slots {
                    results[slot] = Err(gone(ActorGone));
                }
                tracing::warn!("submit: {e}");
            }
        }
        results
    }

    async fn wait_receipt(&self, id: Hash, timeout_ms: u64) -> Result<Receipt, RpcError> {
        let rx = self.chain.watch(id).await.map_err(gone)?;
        match tokio::time::timeout(Duration::from_millis(timeout_ms), rx).await {
            Ok(Ok(Some(_seq))) => self.receipt(&id),
            Ok(Ok(None)) => Err(RpcError::NotFound(format!(
                "transaction {id} is neither pending nor committed"
            ))),
            Ok(Err(_)) => Err(RpcError::Unavailable(format!(
                "transaction {id} was dropped from the mempool before commit"
            ))),
            Err(_) => Err(RpcError::Timeout {
                id: id.to_hex(),
                timeout_ms,
            }),
        }
    }

    async fn transaction(&self, id: Hash) -> Result<TxStatusView, RpcError> {
        if let Some((seq, st)) = self.committed(&id)? {
            return Ok(TxStatusView {
                status: TxStatus::Committed,
                location: Some(self.location(seq, &st)?),
                tx: tx_view(id, &st.tx),
            });
        }
        match self.chain.pending(id).await.map_err(gone)? {
            Some(t) => Ok(TxStatusView {
                status: TxStatus::Pending,
                location: None,
                tx: tx_view(id, &t),
            }),
            None => Err(RpcError::NotFound(format!("transaction {id}"))),
        }
    }

    async fn next_nonce(&self, signer: PublicKey) -> Result<u64, RpcError> {
        self.chain.next_nonce(signer).await.map_err(gone)
    }

    fn trail(&self, q: &TrailQuery) -> Result<TrailPage, RpcError> {
        let limit = q.limit.unwrap_or(DEFAULT_TRAIL_LIMIT);
        if limit == 0 || limit > MAX_TRAIL_LIMIT {
            return Err(RpcError::params(
                "limit",
                format!("must be 1–{MAX_TRAIL_LIMIT}, got {limit}"),
            ));
        }
        let cursor = match &q.cursor {
            None => 0,
            Some(c) => c.parse::<u64>().map_err(|_| {
                RpcError::params("cursor", "not a cursor returned by audit_getTrail")
            })?,
        };
        let head = self.head_header()?;
        let mut lo = cursor;
        let mut hi = head.history_size;
        if let Some(f) = q.from_ms {
            lo = lo.max(self.seq_at_time(f, &head)?);
        }
        if let Some(t) = q.to_ms {
            hi = hi.min(self.seq_at_time(t, &head)?);
        }
        let index = if let Some(e) = &q.entity {
            Some(IndexKey::Entity(e.clone()))
        } else if let Some(s) = q.signer {
            Some(IndexKey::Signer(s))
        } else {
            q.event_type.clone().map(IndexKey::EventType)
        };
        let mut events = Vec::new();
        let mut pos = lo;
        let mut scanned = 0usize;
        while pos < hi && events.len() < limit as usize && scanned < MAX_TRAIL_SCAN {
            let chunk = (limit as usize * 2).min(MAX_TRAIL_SCAN - scanned).max(1);
            let seqs: Vec<u64> = match &index {
                Some(ix) => self.store.scan(ix, pos, hi, chunk).map_err(storage)?,
                None => (pos..hi.min(pos + chunk as u64)).collect(),
            };
            if seqs.is_empty() {
                pos = hi;
                break;
            }
            for seq in seqs {
                scanned += 1;
                pos = seq + 1;
                let st = self.store.tx_at(seq).map_err(storage)?.ok_or_else(|| {
                    RpcError::Unavailable(format!("transaction seq {seq} missing"))
                })?;
                if matches(q, &st.tx) {
                    events.push(EventView {
                        location: self.location(seq, &st)?,
                        tx: tx_view(st.tx.id(), &st.tx),
                    });
                    if events.len() == limit as usize {
                        break;
                    }
                }
            }
        }
        Ok(TrailPage {
            events,
            next_cursor: (pos < hi).then(|| pos.to_string()),
        })
    }

    fn receipt(&self, id: &Hash) -> Result<Receipt, RpcError> {
        let (seq, st) = self
            .committed(id)?
            .ok_or_else(|| RpcError::NotFound(format!("committed transaction {id}")))?;
        // the block's ids only: parsing its transactions (thousands under load) would cost
        // each receipt more than everything else it does
        let (block, ids) = self
            .store
            .block_tx_ids(st.height)
            .map_err(storage)?
            .ok_or_else(|| RpcError::Unavailable(format!("block {} missing", st.height)))?;
        let leaves = tx_leaves(&ids);
        let tx_proof =
            merkle::inclusion_proof(&leaves[..], u64::from(st.index), leaves.len() as u64)
                .map_err(merkle_err)?;
        let history_proof = merkle::inclusion_proof(&*self.store, seq, block.header.history_size)
            .map_err(merkle_err)?;
        let certificate = self.store.certificate(st.height).map_err(storage)?;
        if certificate.is_none() && self.genesis.round_robin().is_some() {
            return Err(RpcError::Unavailable(format!(
                "commit certificate of block {} missing",
                st.height
            )));
        }
        Ok(Receipt {
            chain_id: self.chain_id,
            tx_id: *id,
            tx: st.tx,
            header: block.header,
            seal: block.seal,
            tx_index: st.index,
            tx_proof,
            history_index: seq,
            history_proof,
            certificate,
            validator_set_changes: validator_set_changes(&*self.store, st.height)?,
        })
    }

    fn verify_record(&self, id: &Hash, data: &Value) -> Result<VerifyRecordView, RpcError> {
        let (seq, st) = self
            .committed(id)?
            .ok_or_else(|| RpcError::NotFound(format!("committed transaction {id}")))?;
        let Payload::RecordEvent {
            data_hash: recorded,
            ..
        } = &st.tx.body().payload
        else {
            return Err(RpcError::params(
                "id",
                format!("{id} is not a record_event"),
            ));
        };
        let computed = data_hash(data).map_err(|e| RpcError::params("data", e.to_string()))?;
        Ok(VerifyRecordView {
            id: *id,
            matches: computed == *recorded,
            recorded_data_hash: *recorded,
            computed_data_hash: computed,
            location: self.location(seq, &st)?,
        })
    }

    fn evidence(&self, sha256: &Hash) -> Result<EvidenceVerifyView, RpcError> {
        let seqs = self
            .store
            .scan(&IndexKey::Evidence(*sha256), 0, u64::MAX, 1000)
            .map_err(storage)?;
        // only anchorings the evidence contract accepted (a re-anchoring stays in its block
        // as a failed call)
        let accepted: std::collections::HashSet<Hash> =
            crate::contract_queries::anchorings(&*self.store, sha256)?
                .into_iter()
                .map(|a| a.tx_id)
                .collect();
        let mut anchors = Vec::new();
        for seq in seqs {
            let Some(st) = self.store.tx_at(seq).map_err(storage)? else {
                continue;
            };
            if st.height > self.durable_height() || !accepted.contains(&st.tx.id()) {
                continue;
            }
            if let Payload::AnchorEvidence {
                entity_id,
                sha256,
                size_bytes,
                uri,
            } = &st.tx.body().payload
            {
                anchors.push(EvidenceView {
                    tx_id: st.tx.id(),
                    entity_id: entity_id.clone(),
                    sha256: *sha256,
                    size_bytes: *size_bytes,
                    uri: uri.clone(),
                    signer: *st.tx.signer(),
                    location: self.location(seq, &st)?,
                });
            }
        }
        Ok(EvidenceVerifyView {
            sha256: *sha256,
            anchored: !anchors.is_empty(),
            anchors,
        })
    }

    fn head(&self) -> Result<HeadView, RpcError> {
        Ok(HeadView::of(&self.head_header()?))
    }

    fn block_by_height(&self, height: u64, full: bool) -> Result<Option<BlockView>, RpcError> {
        self.block_view(height, full)
    }

    fn block_by_hash(&self, hash: &Hash, full: bool) -> Result<Option<BlockView>, RpcError> {
        match self.store.height_of(hash).map_err(storage)? {
            Some(h) => self.block_view(h, full),
            None => Ok(None),
        }
    }

    async fn stats(&self) -> Result<StatsView, RpcError> {
        let head = self.head_header()?;
        let lo = head.height.saturating_sub(100).max(1);
        let average_block_time_ms = if head.height > lo {
            let first = self
                .store
                .header(lo)
                .map_err(storage)?
                .map(|h| h.header.timestamp_ms)
                .unwrap_or(head.timestamp_ms);
            Some((head.timestamp_ms - first) as f64 / (head.height - lo) as f64)
        } else {
            None
        };
        let mempool = self.chain.stats().await.map_err(gone)?;
        Ok(StatsView {
            blocks: head.height + 1,
            events: head.history_size,
            events_per_type: self.store.event_type_counts().map_err(storage)?,
            average_block_time_ms,
            mempool_txs: mempool.txs as u64,
        })
    }

    fn genesis(&self) -> Result<Value, RpcError> {
        serde_json::to_value(&*self.genesis).map_err(|e| RpcError::Unavailable(e.to_string()))
    }

    async fn status(&self) -> Result<NodeStatus, RpcError> {
        let mempool = self.chain.stats().await.map_err(gone)?;
        Ok(NodeStatus {
            chain_id: self.chain_id,
            chain_name: self.genesis.chain_name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            head: self.head()?,
            validator: self.validator,
            mempool_txs: mempool.txs as u64,
            mempool_bytes: mempool.bytes as u64,
            mining: mempool.mining,
            uptime_ms: self.started.elapsed().as_millis() as u64,
        })
    }

    fn health(&self) -> Result<HealthView, RpcError> {
        let head = self.head_header()?;
        let age = now_ms().saturating_sub(head.timestamp_ms);
        let max = match (self.genesis.round_robin(), self.genesis.pow()) {
            (Some(rr), _) => 3 * rr.max_empty_interval_ms,
            (None, Some(p)) => 20 * p.target_block_time_ms,
            (None, None) => u64::MAX,
        };
        let healthy = head.height == 0 || age <= max;
        Ok(HealthView {
            healthy,
            head_height: head.height,
            head_age_ms: age,
            reason: (!healthy).then(|| format!("no block for {age} ms (more than {max} ms)")),
        })
    }

    fn subscribe_heads(&self) -> broadcast::Receiver<HeadView> {
        self.heads.subscribe()
    }

    fn subscribe_finalized(&self) -> broadcast::Receiver<HeadView> {
        self.finalized.subscribe()
    }

    async fn peers(&self) -> Result<Vec<PeerView>, RpcError> {
        let Some(net) = &self.net else {
            return Ok(Vec::new());
        };
        let peers = net
            .peers()
            .await
            .map_err(|e| RpcError::Unavailable(format!("network: {e}")))?;
        Ok(peers
            .into_iter()
            .map(|p| PeerView {
                peer_id: p.peer_id,
                address: p.address,
                outbound: p.outbound,
                rejected_messages: p.rejected_messages,
                agent: p.agent,
            })
            .collect())
    }

    fn validators(&self, height: Option<u64>) -> Result<Vec<ValidatorView>, RpcError> {
        let next = self.durable_height() + 1;
        let height = height.unwrap_or(next);
        if height == 0 || height > next {
            return Err(RpcError::InvalidParams {
                field: "height".into(),
                reason: format!("{height} is not between 1 and the next block {next}"),
            });
        }
        let set = auditchain_contracts::system::validators_at(
            &crate::execute::StoreState(&*self.store),
            height,
        )
        .map_err(|e| RpcError::Unavailable(format!("storage: {e}")))?;
        Ok(set
            .iter()
            .enumerate()
            .map(|(i, v)| ValidatorView {
                index: i as u32,
                public_key: *v,
                peer_id: auditchain_p2p::peer_id_of(v),
            })
            .collect())
    }

    fn finalized(&self) -> Result<FinalizedView, RpcError> {
        let head = self.durable.borrow().clone();
        let height = crate::chain::finalized_height(&self.genesis, head.height);
        let header = if height == head.height {
            head
        } else {
            self.store
                .header(height)
                .map_err(storage)?
                .ok_or_else(|| RpcError::Unavailable(format!("header {height} missing")))?
                .header
        };
        let certificate = self.store.certificate(height).map_err(storage)?;
        Ok(FinalizedView {
            head: HeadView::of(&header),
            certificate,
        })
    }

    async fn signer_metrics(&self) -> Result<Vec<SignerMetricsView>, RpcError> {
        let list = self.chain.signer_metrics().await.map_err(gone)?;
        Ok(list
            .into_iter()
            .map(|(validator, m)| SignerMetricsView {
                validator,
                proposed: m.proposed,
                missed_turns: m.missed_turns,
                votes: m.votes,
                last_seen_ms: m.last_seen_ms,
            })
            .collect())
    }

    async fn node_metrics(&self) -> Result<auditchain_rpc::ops::NodeMetrics, RpcError> {
        let stats = self.chain.stats().await.map_err(gone)?;
        let signers = self.chain.signer_metrics().await.map_err(gone)?;
        let head = self.durable.borrow().clone();
        let peers = match &self.net {
            Some(n) => n.peers().await.map(|p| p.len() as u64).unwrap_or(0),
            None => 0,
        };
        Ok(auditchain_rpc::ops::NodeMetrics {
            head_height: head.height,
            finalized_height: crate::chain::finalized_height(&self.genesis, head.height),
            peers,
            networked: self.net.is_some(),
            mempool_txs: stats.txs as u64,
            mempool_bytes: stats.bytes as u64,
            events_committed: head.history_size,
            best_peer_height: stats.best_peer_height,
            validators: signers
                .into_iter()
                .map(|(v, m)| (v.to_string(), m.proposed, m.missed_turns))
                .collect(),
        })
    }

    fn contract_query(
        &self,
        q: auditchain_rpc::types::ContractQuery,
    ) -> Result<serde_json::Value, RpcError> {
        crate::contract_queries::contract_query(&*self.store, q)
    }

    fn block_notifications(&self, height: u64) -> Result<Vec<serde_json::Value>, RpcError> {
        crate::contract_queries::block_notifications(&*self.store, height)
    }

    fn equivocations(&self, from: u64, limit: usize) -> Result<Vec<EquivocationView>, RpcError> {
        Ok(self
            .store
            .equivocations(from, limit)
            .map_err(storage)?
            .into_iter()
            .map(|(seq, evidence)| EquivocationView { seq, evidence })
            .collect())
    }
}

/// The proofs of every validator-set change in force at or below `height`, in order:
/// each block that wrote a new set, with its certificate and state-root witness.
fn validator_set_changes(
    store: &dyn ChainStore,
    height: u64,
) -> Result<Vec<ValidatorSetChange>, RpcError> {
    let mut out = Vec::new();
    for (h, witness) in store.set_change_witnesses(height).map_err(storage)? {
        let header = store
            .header(h)
            .map_err(storage)?
            .ok_or_else(|| RpcError::Unavailable(format!("header {h} missing")))?
            .header;
        let certificate = store.certificate(h).map_err(storage)?.ok_or_else(|| {
            RpcError::Unavailable(format!("commit certificate of block {h} missing"))
        })?;
        out.push(ValidatorSetChange {
            header,
            certificate,
            witness,
        });
    }
    Ok(out)
}
