//! The server: [`AuditChainApiServer`] over a [`Backend`], started with explicit limits.

use std::net::SocketAddr;
use std::sync::Arc;

use auditchain_primitives::{Hash, PublicKey, Receipt};
use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::server::{
    BatchRequestConfig, PendingSubscriptionSink, Server, ServerConfig, ServerHandle,
    SubscriptionMessage,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::api::AuditChainApiServer;
use crate::backend::Backend;
use crate::error::RpcError;
use crate::ops::{OpsLayer, RpcMetrics, RpcMetricsLayer};
use crate::types::*;
use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;

/// Default wait of `audit_submitAndWait`, ms.
pub const DEFAULT_WAIT_MS: u64 = 10_000;
/// Longest wait of `audit_submitAndWait`, ms.
pub const MAX_WAIT_MS: u64 = 120_000;

/// Listener address and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Listen address (HTTP and WebSocket), default `127.0.0.1:8645`.
    pub addr: SocketAddr,
    /// Largest request body, bytes (default 64 MiB: a batch of 10,000 transactions).
    pub max_request_body_bytes: u32,
    /// Largest response body, bytes (default 64 MiB).
    pub max_response_body_bytes: u32,
    /// Most concurrent connections (default 256).
    pub max_connections: u32,
    /// Most calls in one JSON-RPC batch request (default 1,000).
    pub max_batch_len: u32,
    /// Most subscriptions per WebSocket connection (default 16).
    pub max_subscriptions_per_connection: u32,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8645)),
            max_request_body_bytes: 64 << 20,
            max_response_body_bytes: 64 << 20,
            max_connections: 256,
            max_batch_len: 1000,
            max_subscriptions_per_connection: 16,
        }
    }
}

/// The API implementation over a backend.
pub struct RpcImpl<B: Backend> {
    backend: Arc<B>,
}

fn ok<T>(r: Result<T, RpcError>) -> RpcResult<T> {
    r.map_err(Into::into)
}

#[async_trait]
impl<B: Backend> AuditChainApiServer for RpcImpl<B> {
    async fn submit(&self, tx: TxParam) -> RpcResult<Hash> {
        let tx = tx.parse(|| "tx".into())?;
        let mut out = self.backend.submit(vec![tx]).await;
        ok(out
            .pop()
            .unwrap_or_else(|| Err(RpcError::Unavailable("no result".into()))))
    }

    async fn submit_batch(&self, txs: Vec<TxParam>) -> RpcResult<Vec<SubmitOutcome>> {
        if txs.len() > MAX_SUBMIT_BATCH {
            return ok(Err(RpcError::params(
                "txs",
                format!(
                    "{} transactions; at most {MAX_SUBMIT_BATCH} per call",
                    txs.len()
                ),
            )));
        }
        // Items that do not even parse get their error in place; the rest go to the backend.
        let mut results: Vec<Option<Result<Hash, RpcError>>> = Vec::with_capacity(txs.len());
        let mut good = Vec::with_capacity(txs.len());
        for (i, t) in txs.into_iter().enumerate() {
            match t.parse(|| format!("txs[{i}]")) {
                Ok(w) => {
                    results.push(None);
                    good.push(w);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let mut admitted = self.backend.submit(good).await.into_iter();
        Ok(results
            .into_iter()
            .map(|r| {
                r.or_else(|| admitted.next())
                    .unwrap_or_else(|| Err(RpcError::Unavailable("no result".into())))
            })
            .map(|r| match r {
                Ok(id) => SubmitOutcome {
                    id: Some(id),
                    error: None,
                },
                Err(e) => SubmitOutcome {
                    id: None,
                    error: Some(ErrorView {
                        code: e.code(),
                        message: e.to_string(),
                    }),
                },
            })
            .collect())
    }

    async fn submit_and_wait(&self, tx: TxParam, timeout_ms: Option<u64>) -> RpcResult<Receipt> {
        let timeout_ms = timeout_ms.unwrap_or(DEFAULT_WAIT_MS);
        if timeout_ms > MAX_WAIT_MS {
            return ok(Err(RpcError::params(
                "timeout_ms",
                format!("{timeout_ms} exceeds the maximum of {MAX_WAIT_MS}"),
            )));
        }
        let id = self.submit(tx).await?;
        ok(self.backend.wait_receipt(id, timeout_ms).await)
    }

    async fn next_nonce(&self, signer: PublicKey) -> RpcResult<u64> {
        ok(self.backend.next_nonce(signer).await)
    }

    async fn get_transaction(&self, id: Hash) -> RpcResult<TxStatusView> {
        ok(self.backend.transaction(id).await)
    }

    async fn get_trail(&self, query: TrailQuery) -> RpcResult<TrailPage> {
        ok(self.backend.trail(&query))
    }

    async fn get_proof(&self, id: Hash) -> RpcResult<Receipt> {
        ok(self.backend.receipt(&id))
    }

    async fn verify_record(&self, id: Hash, data: Value) -> RpcResult<VerifyRecordView> {
        ok(self.backend.verify_record(&id, &data))
    }

    async fn evidence_verify(&self, sha256: Hash) -> RpcResult<EvidenceVerifyView> {
        ok(self.backend.evidence(&sha256))
    }

    async fn get_head(&self) -> RpcResult<HeadView> {
        ok(self.backend.head())
    }

    async fn get_block_by_height(
        &self,
        height: u64,
        full: Option<bool>,
    ) -> RpcResult<Option<BlockView>> {
        ok(self.backend.block_by_height(height, full.unwrap_or(false)))
    }

    async fn get_block_by_hash(
        &self,
        hash: Hash,
        full: Option<bool>,
    ) -> RpcResult<Option<BlockView>> {
        ok(self.backend.block_by_hash(&hash, full.unwrap_or(false)))
    }

    async fn get_blocks(&self, from: u64, to: u64) -> RpcResult<Vec<BlockView>> {
        if to < from || to - from >= MAX_BLOCK_RANGE {
            return ok(Err(RpcError::params(
                "to",
                format!(
                    "range {from}..={to} must be ascending and at most {MAX_BLOCK_RANGE} blocks"
                ),
            )));
        }
        let mut out = Vec::new();
        for h in from..=to {
            match self.backend.block_by_height(h, false)? {
                Some(b) => out.push(b),
                None => break,
            }
        }
        Ok(out)
    }

    async fn get_stats(&self) -> RpcResult<StatsView> {
        ok(self.backend.stats().await)
    }

    async fn get_genesis(&self) -> RpcResult<Value> {
        ok(self.backend.genesis())
    }

    async fn node_status(&self) -> RpcResult<NodeStatus> {
        ok(self.backend.status().await)
    }

    async fn node_health(&self) -> RpcResult<HealthView> {
        ok(self.backend.health())
    }

    async fn node_peers(&self) -> RpcResult<Vec<PeerView>> {
        ok(self.backend.peers().await)
    }

    async fn get_validators(&self, height: Option<u64>) -> RpcResult<Vec<ValidatorView>> {
        ok(self.backend.validators(height))
    }

    async fn get_finalized(&self) -> RpcResult<FinalizedView> {
        ok(self.backend.finalized())
    }

    async fn get_signer_metrics(&self) -> RpcResult<Vec<SignerMetricsView>> {
        ok(self.backend.signer_metrics().await)
    }

    async fn get_evidence(
        &self,
        from: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<Vec<EquivocationView>> {
        let limit = page_limit(limit, MAX_PAGE)?;
        ok(self.backend.equivocations(from.unwrap_or(0), limit))
    }

    async fn token_get_balance(&self, account: PublicKey) -> RpcResult<Value> {
        self.query(ContractQuery::Balance(account))
    }

    async fn token_get_supply(&self) -> RpcResult<Value> {
        self.query(ContractQuery::Supply)
    }

    async fn token_get_history(
        &self,
        account: PublicKey,
        cursor: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<Value> {
        let limit = page_limit(limit, DEFAULT_CONTRACT_PAGE)?;
        self.query(ContractQuery::History(account, cursor.unwrap_or(0), limit))
    }

    async fn gov_get_proposal(&self, id: u64) -> RpcResult<Value> {
        self.query(ContractQuery::Proposal(id))
    }

    async fn gov_list_proposals(
        &self,
        status: Option<String>,
        cursor: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<Value> {
        let limit = page_limit(limit, DEFAULT_CONTRACT_PAGE)?;
        self.query(ContractQuery::Proposals(status, cursor.unwrap_or(0), limit))
    }

    async fn gov_get_votes(&self, id: u64) -> RpcResult<Value> {
        self.query(ContractQuery::Votes(id))
    }

    async fn qa_list_rules(&self) -> RpcResult<Value> {
        self.query(ContractQuery::Rules)
    }

    async fn qa_get_alerts(
        &self,
        filter: Option<Value>,
        cursor: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<Value> {
        let limit = page_limit(limit, DEFAULT_CONTRACT_PAGE)?;
        self.query(ContractQuery::Alerts(
            filter.unwrap_or(Value::Null),
            cursor.unwrap_or(0),
            limit,
        ))
    }

    async fn sla_get_status(&self, entity: String) -> RpcResult<Value> {
        self.query(ContractQuery::SlaStatus(entity))
    }

    async fn sla_list_breaches(&self, cursor: Option<u64>, limit: Option<u32>) -> RpcResult<Value> {
        let limit = page_limit(limit, DEFAULT_CONTRACT_PAGE)?;
        self.query(ContractQuery::Breaches(cursor.unwrap_or(0), limit))
    }

    async fn chain_get_contract_events(&self, height: u64) -> RpcResult<Value> {
        self.query(ContractQuery::Events(height))
    }

    async fn subscribe_contract_events(
        &self,
        pending: PendingSubscriptionSink,
        types: Option<Vec<String>>,
    ) -> SubscriptionResult {
        let wanted = |item: &Value| {
            types.as_ref().is_none_or(|t| {
                let ty = item.get("type").and_then(Value::as_str);
                ty.is_some_and(|ty| t.iter().any(|x| x == ty))
            })
        };
        forward_heads(self.backend.subscribe_heads(), pending, |head| {
            match self.backend.block_notifications(head.height) {
                Ok(items) => items.into_iter().filter(|i| wanted(i)).collect(),
                Err(e) => {
                    tracing::debug!(error = %e, "contract events unavailable");
                    Vec::new()
                }
            }
        })
        .await
    }

    async fn subscribe_finalized(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        forward_heads(self.backend.subscribe_finalized(), pending, |h| vec![h]).await
    }

    async fn subscribe_new_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        forward_heads(self.backend.subscribe_heads(), pending, |h| vec![h]).await
    }
}

/// Most items per page of `chain_getEvidence` and the contract queries.
const MAX_PAGE: u32 = 1000;

/// Default page of the contract queries.
const DEFAULT_CONTRACT_PAGE: u32 = 100;

/// A page size: `limit`, or `default` when absent. Errors: -32602 outside 1–[`MAX_PAGE`].
fn page_limit(limit: Option<u32>, default: u32) -> RpcResult<usize> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > MAX_PAGE {
        return ok(Err(RpcError::params(
            "limit",
            format!("must be 1 to {MAX_PAGE}"),
        )));
    }
    Ok(limit as usize)
}

impl<B: Backend> RpcImpl<B> {
    fn query(&self, q: ContractQuery) -> RpcResult<Value> {
        ok(self.backend.contract_query(q))
    }
}

/// Sends a subscriber the notifications `expand` makes of each new head, until it leaves or
/// the node stops. A subscriber that lags skips heads (logged).
async fn forward_heads<T: Serialize>(
    mut rx: tokio::sync::broadcast::Receiver<HeadView>,
    pending: PendingSubscriptionSink,
    mut expand: impl FnMut(HeadView) -> Vec<T>,
) -> SubscriptionResult {
    let sink = pending.accept().await?;
    loop {
        tokio::select! {
            _ = sink.closed() => return Ok(()),
            r = rx.recv() => match r {
                Ok(head) => {
                    for item in expand(head) {
                        let msg = SubscriptionMessage::from(serde_json::value::to_raw_value(&item)?);
                        if sink.send(msg).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                Err(RecvError::Lagged(n)) => tracing::debug!(skipped = n, "head subscriber lagged"),
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// Starts the server on `cfg.addr` (port 0 picks a free port), with `/health`, `/ready` and
/// `/metrics` ([`crate::ops`]) beside JSON-RPC. Returns the bound address and
/// the handle that stops it. Errors: bind failures.
pub async fn start<B: Backend>(
    cfg: &RpcConfig,
    backend: Arc<B>,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let config = ServerConfig::builder()
        .max_request_body_size(cfg.max_request_body_bytes)
        .max_response_body_size(cfg.max_response_body_bytes)
        .max_connections(cfg.max_connections)
        .max_subscriptions_per_connection(cfg.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(cfg.max_batch_len))
        .build();
    let metrics = RpcMetrics::default();
    let m = metrics.clone();
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(
            tower::ServiceBuilder::new().layer(OpsLayer::new(Arc::clone(&backend), metrics)),
        )
        .set_rpc_middleware(
            RpcServiceBuilder::new().layer_fn(move |s| RpcMetricsLayer::new(s, m.clone())),
        )
        .build(cfg.addr)
        .await?;
    let addr = server.local_addr()?;
    let handle = server.start(RpcImpl { backend }.into_rpc());
    Ok((addr, handle))
}
