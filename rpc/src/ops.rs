//! Operations endpoints on the RPC port, for load balancers and Prometheus:
//!
//! - `GET /health` — 200 `{"healthy":true,…}` while the node produces or follows blocks
//!   (the head is younger than the chain's bound, see `node_health`), else 503.
//! - `GET /ready` — 200 when the node is ready to serve: healthy, peered (at least one peer, on
//!   a node with a network) and synced (its head within 2 blocks of the highest head a peer
//!   reported), else 503 with the reason.
//! - `GET /metrics` — OpenMetrics 1.0 text (prometheus-client; Prometheus scrapes it): head
//!   and finalized
//!   height, peers, mempool transactions and bytes, events committed, blocks proposed and
//!   missed turns per validator, sync target, and `auditchain_rpc_request_duration_seconds`
//!   histograms per JSON-RPC method (recorded by [`RpcMetricsLayer`]).
//!
//! Every other request goes to the JSON-RPC service unchanged.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use jsonrpsee::core::BoxError;
use jsonrpsee::server::middleware::rpc::{Batch, Notification, Request, RpcServiceT};
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;

/// Label set of one series: `[(name, value)]`.
type Labels = Vec<(String, String)>;

fn new_histogram() -> Histogram {
    // 0.1 ms … ~3.3 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// RPC latency histograms per method, shared by the middleware and the `/metrics` handler.
#[derive(Clone)]
pub struct RpcMetrics {
    latency: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for RpcMetrics {
    fn default() -> Self {
        RpcMetrics {
            latency: Family::new_with_constructor(new_histogram),
        }
    }
}

impl RpcMetrics {
    fn observe(&self, method: &str, started: Instant) {
        self.latency
            .get_or_create(&vec![("method".to_string(), method.to_string())])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// What the node reports for `/metrics` and `/ready` (gathered when scraped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeMetrics {
    /// Head height.
    pub head_height: u64,
    /// Finalized height.
    pub finalized_height: u64,
    /// Connected peers.
    pub peers: u64,
    /// Whether the node runs with a network (a one-validator chain does not).
    pub networked: bool,
    /// Mempool transactions.
    pub mempool_txs: u64,
    /// Mempool bytes.
    pub mempool_bytes: u64,
    /// Events committed since genesis (history size).
    pub events_committed: u64,
    /// Highest head height a peer reported (sync answers, proposals); 0 if none yet.
    pub best_peer_height: u64,
    /// Per validator (hex key): blocks proposed and missed turns, as seen by this node.
    pub validators: Vec<(String, u64, u64)>,
}

/// Result of `GET /ready`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadyView {
    /// Whether the node is ready to serve.
    pub ready: bool,
    /// Head height.
    pub head_height: u64,
    /// Highest head height a peer reported.
    pub best_peer_height: u64,
    /// Connected peers.
    pub peers: u64,
    /// Why not ready, when not.
    pub reason: Option<String>,
}

/// Most blocks a ready node may be behind the best head a peer reported.
pub const READY_MAX_LAG: u64 = 2;

impl NodeMetrics {
    /// Readiness from these figures and the health verdict.
    pub fn ready(&self, healthy: bool) -> ReadyView {
        let reason = if !healthy {
            Some("unhealthy: no recent block".to_string())
        } else if self.networked && self.peers == 0 {
            Some("no peers".to_string())
        } else if self.head_height + READY_MAX_LAG < self.best_peer_height {
            Some(format!(
                "syncing: head {} of {}",
                self.head_height, self.best_peer_height
            ))
        } else {
            None
        };
        ReadyView {
            ready: reason.is_none(),
            head_height: self.head_height,
            best_peer_height: self.best_peer_height,
            peers: self.peers,
            reason,
        }
    }

    /// The Prometheus text exposition of these figures plus the RPC latency histograms.
    pub fn encode(&self, rpc: &RpcMetrics) -> String {
        let mut r = Registry::with_prefix("auditchain");
        let gauge = |r: &mut Registry, name: &str, help: &str, v: u64| {
            let g = Gauge::<i64>::default();
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
            r.register(name, help, g);
        };
        gauge(
            &mut r,
            "head_height",
            "Height of the head block",
            self.head_height,
        );
        gauge(
            &mut r,
            "finalized_height",
            "Height up to which blocks are final",
            self.finalized_height,
        );
        gauge(&mut r, "peers", "Connected peers", self.peers);
        gauge(
            &mut r,
            "mempool_txs",
            "Transactions in the mempool",
            self.mempool_txs,
        );
        gauge(
            &mut r,
            "mempool_bytes",
            "Bytes in the mempool",
            self.mempool_bytes,
        );
        gauge(
            &mut r,
            "sync_target_height",
            "Highest head height a peer reported (0 if none yet)",
            self.best_peer_height,
        );
        let events = Counter::<u64>::default();
        events.inc_by(self.events_committed);
        r.register("events_committed", "Events committed since genesis", events);
        let proposed = Family::<Labels, Gauge>::default();
        let missed = Family::<Labels, Gauge>::default();
        for (v, p, m) in &self.validators {
            let l = vec![("validator".to_string(), v.clone())];
            proposed
                .get_or_create(&l)
                .set(i64::try_from(*p).unwrap_or(i64::MAX));
            missed
                .get_or_create(&l)
                .set(i64::try_from(*m).unwrap_or(i64::MAX));
        }
        r.register(
            "blocks_proposed",
            "Final blocks proposed per validator, seen by this node since it started",
            proposed,
        );
        r.register(
            "proposer_missed_turns",
            "Rounds a validator was proposer of a height decided later, since this node started",
            missed,
        );
        r.register(
            "rpc_request_duration_seconds",
            "JSON-RPC request latency per method (batches as `batch`)",
            rpc.latency.clone(),
        );
        let mut out = String::new();
        // writing to a String cannot fail
        let _ = encode(&mut out, &r);
        out
    }
}

/// JSON-RPC middleware recording each call's latency in [`RpcMetrics`].
#[derive(Clone)]
pub struct RpcMetricsLayer<S> {
    service: S,
    metrics: RpcMetrics,
}

impl<S> RpcMetricsLayer<S> {
    /// Wraps `service`.
    pub fn new(service: S, metrics: RpcMetrics) -> Self {
        RpcMetricsLayer { service, metrics }
    }
}

impl<S> RpcServiceT for RpcMetricsLayer<S>
where
    S: RpcServiceT + Clone + Send + Sync + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let service = self.service.clone();
        let metrics = self.metrics.clone();
        async move {
            let method = req.method_name().to_string();
            let started = Instant::now();
            let r = service.call(req).await;
            metrics.observe(&method, started);
            r
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        let service = self.service.clone();
        let metrics = self.metrics.clone();
        async move {
            let started = Instant::now();
            let r = service.batch(batch).await;
            metrics.observe("batch", started);
            r
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(n)
    }
}

/// Tower layer serving `/health`, `/ready` and `/metrics` in front of the JSON-RPC service.
pub struct OpsLayer<B> {
    backend: Arc<B>,
    metrics: RpcMetrics,
}

impl<B> Clone for OpsLayer<B> {
    fn clone(&self) -> Self {
        OpsLayer {
            backend: Arc::clone(&self.backend),
            metrics: self.metrics.clone(),
        }
    }
}

impl<B> OpsLayer<B> {
    /// Serves the endpoints from `backend` and `metrics`.
    pub fn new(backend: Arc<B>, metrics: RpcMetrics) -> Self {
        OpsLayer { backend, metrics }
    }
}

impl<S, B> tower::Layer<S> for OpsLayer<B> {
    type Service = Ops<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        Ops {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`OpsLayer`] builds.
pub struct Ops<S, B> {
    inner: S,
    layer: OpsLayer<B>,
}

impl<S: Clone, B> Clone for Ops<S, B> {
    fn clone(&self) -> Self {
        Ops {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

fn respond(status: u16, content_type: &'static str, body: String) -> HttpResponse {
    let mut r = HttpResponse::new(HttpBody::from(body));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

const JSON: &str = "application/json";

/// `v` as JSON, 200 when `ok`, else 503.
fn json(ok: bool, v: &impl Serialize) -> HttpResponse {
    let body = serde_json::to_string(v).unwrap_or_default();
    respond(if ok { 200 } else { 503 }, JSON, body)
}

/// 503 with `{"error": …}`.
fn unavailable(e: &crate::RpcError) -> HttpResponse {
    json(false, &serde_json::json!({"error": e.to_string()}))
}

async fn serve<B: Backend>(path: &str, b: &B, rpc: &RpcMetrics) -> HttpResponse {
    match path {
        "/health" => match b.health() {
            Ok(h) => json(h.healthy, &h),
            Err(e) => unavailable(&e),
        },
        "/ready" => match b.node_metrics().await {
            Ok(m) => {
                let r = m.ready(b.health().is_ok_and(|h| h.healthy));
                json(r.ready, &r)
            }
            Err(e) => unavailable(&e),
        },
        _ => match b.node_metrics().await {
            Ok(m) => respond(
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                m.encode(rpc),
            ),
            Err(e) => respond(503, "text/plain; charset=utf-8", format!("# {e}\n")),
        },
    }
}

impl<S, B, Body> tower::Service<HttpRequest<Body>> for Ops<S, B>
where
    S: tower::Service<HttpRequest<Body>, Response = HttpResponse> + Send,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: Backend,
    Body: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HttpRequest<Body>) -> Self::Future {
        let path = req.uri().path();
        if req.method() == http::Method::GET && matches!(path, "/health" | "/ready" | "/metrics") {
            let path = path.to_string();
            let layer = self.layer.clone();
            return Box::pin(
                async move { Ok(serve(&path, &*layer.backend, &layer.metrics).await) },
            );
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_health_peers_and_sync() {
        let mut m = NodeMetrics {
            head_height: 10,
            networked: true,
            peers: 2,
            best_peer_height: 12,
            ..NodeMetrics::default()
        };
        assert!(m.ready(true).ready);
        assert!(!m.ready(false).ready);
        m.best_peer_height = 13;
        assert!(m.ready(true).reason.expect("lagging").contains("syncing"));
        m.best_peer_height = 0;
        m.peers = 0;
        assert_eq!(m.ready(true).reason.as_deref(), Some("no peers"));
        m.networked = false;
        assert!(m.ready(true).ready, "a one-node chain needs no peers");
    }

    #[test]
    fn metrics_text_has_every_series() {
        let rpc = RpcMetrics::default();
        rpc.observe("audit_submit", Instant::now());
        let m = NodeMetrics {
            head_height: 7,
            finalized_height: 6,
            peers: 3,
            networked: true,
            mempool_txs: 4,
            mempool_bytes: 5000,
            events_committed: 123,
            best_peer_height: 7,
            validators: vec![("ab01".into(), 2, 1)],
        };
        let text = m.encode(&rpc);
        for line in [
            "auditchain_head_height 7",
            "auditchain_finalized_height 6",
            "auditchain_peers 3",
            "auditchain_mempool_txs 4",
            "auditchain_mempool_bytes 5000",
            "auditchain_events_committed_total 123",
            "auditchain_blocks_proposed{validator=\"ab01\"} 2",
            "auditchain_proposer_missed_turns{validator=\"ab01\"} 1",
            "auditchain_rpc_request_duration_seconds_count{method=\"audit_submit\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
