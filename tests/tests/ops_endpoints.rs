//! `/health`, `/ready` and `/metrics` on a running cluster: ready once peered and synced, not
//! ready without peers; the metrics follow the chain.

use auditchain_rpc::AuditChainApiClient;
use auditchain_tests::{Testnet, http_get, wait_until, wire};
use serde_json::json;

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_ready_and_metrics_follow_the_cluster() {
    let mut net = Testnet::start(3, 1).await;
    let c = net.client(0);
    let mut ids = Vec::new();
    for n in 0..5 {
        let tx = net.record(0, n, "login", "web1", json!({"n": n}));
        ids.push(c.submit(wire(&tx)).await.expect("submit"));
    }
    net.wait_all(5, 1, 30).await;
    let addr = net.node(1).rpc_addr;
    let (code, body) = http_get(addr, "/health");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"healthy\":true"));
    let (code, body) = http_get(addr, "/ready");
    assert_eq!(code, 200, "{body}");
    let (code, text) = http_get(addr, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metric(&text, "auditchain_head_height").expect("head") >= 1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "auditchain_events_committed_total"),
        Some(5.0)
    );
    assert_eq!(metric(&text, "auditchain_peers"), Some(2.0));
    assert!(text.contains("auditchain_rpc_request_duration_seconds_count{method="));
    let (code, text0) = http_get(net.node(0).rpc_addr, "/metrics");
    assert_eq!(code, 200);
    assert!(
        text0.contains("auditchain_rpc_request_duration_seconds_count{method=\"audit_submit\"} 5"),
        "{text0}"
    );
    // JSON-RPC still answers on the same port
    assert!(c.get_head().await.is_ok());

    // a node whose peers are all gone is healthy for a while but not ready
    net.stop_node(0).await;
    net.stop_node(2).await;
    wait_until("node 1 has no peers", 20, async || {
        http_get(addr, "/ready").0 == 503
    })
    .await;
    let (_, body) = http_get(addr, "/ready");
    assert!(body.contains("no peers"), "{body}");
    net.stop_all().await;
}
