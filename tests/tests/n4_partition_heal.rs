//! Four validators partitioned 2 | 2 through the operators' admin API (each side refuses the
//! other's peers): neither side has a quorum, so nothing is finalized and no two conflicting
//! blocks exist at any height; healed, all converge on one chain and the events submitted during
//! the partition become final. Also: admin methods exist only on the admin listener, and their
//! bad input is refused.

use std::time::Duration;

use auditchain_rpc::AuditChainApiClient;
use auditchain_rpc::admin::AdminApiClient;
use auditchain_tests::{Testnet, wire};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_methods_only_on_the_admin_listener_and_bad_input() {
    let mut net = Testnet::start(1, 0).await;
    // not on the public port
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"admin_refusePeer","params":["x"]}"#;
    let addr = net.node(0).rpc_addr;
    let answer = tokio::task::spawn_blocking(move || auditchain_tests::raw_post(addr, body))
        .await
        .expect("post");
    assert!(answer.contains("-32601"), "not served publicly: {answer}");
    let c = net.admin(0);
    for (field, r) in [
        ("peer_id", c.refuse_peer("not-a-peer-id".into()).await),
        ("multiaddr", c.add_peer("/not/a/multiaddr".into()).await),
        ("filter", c.set_log_level("info,[bad".into()).await),
        // a chain that is not proof of work has no miner to pause
        ("enabled", c.set_mining(false).await),
    ] {
        let (code, msg) = auditchain_tests::rpc_error(&r.expect_err(field));
        assert_eq!(code, -32602, "{field}: {msg}");
        assert!(
            msg.starts_with(&format!("{field}: ")),
            "names {field}: {msg}"
        );
    }
    // a parameter of the wrong type is refused before any backend sees it
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"admin_setMining","params":["yes"]}"#;
    let admin = net.node(0).admin_addr.expect("admin listener");
    let answer = tokio::task::spawn_blocking(move || auditchain_tests::raw_post(admin, body))
        .await
        .expect("post");
    assert!(
        answer.contains("-32602") && answer.contains("expected a boolean"),
        "a string for a bool: {answer}"
    );
    let status = net.client(0).node_status().await.expect("status");
    assert!(!status.mining, "a round-robin validator does not mine");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_partition_2_2_then_heal() {
    let mut net = Testnet::start(4, 2).await;
    let rec = |w: usize, n: u64| net.record(w, n, "login", "host", json!({ "n": n }));
    net.client(0)
        .submit_batch((0..5).map(|n| wire(&rec(0, n))).collect())
        .await
        .expect("submit");
    net.wait_all(5, 0, 30).await;

    for (a, b) in [(0, 2), (0, 3), (1, 2), (1, 3)] {
        net.set_link(a, b, false).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut before = Vec::new();
    for i in 0..4 {
        before.push(net.client(i).get_head().await.expect("head").height);
    }
    // both sides receive events, neither can finalize them
    net.client(0)
        .submit_batch((5..10).map(|n| wire(&rec(0, n))).collect())
        .await
        .expect("submit");
    net.client(3)
        .submit_batch((0..5).map(|n| wire(&rec(1, n))).collect())
        .await
        .expect("submit");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (i, b) in before.iter().enumerate() {
        // at most a block that was already being decided when the links went down
        let h = net.client(i).get_head().await.expect("head").height;
        assert!(h <= b + 1, "node {i} went from {b} to {h} without a quorum");
    }

    for (a, b) in [(0, 2), (0, 3), (1, 2), (1, 3)] {
        net.set_link(a, b, true).await;
    }
    // refused peers are dialed again from the bootstrap lists (nodes 2 and 3 dial 0 and 1)
    net.wait_connected().await;
    let h = net.wait_all(15, 0, 90).await;
    let mut reference = Vec::new();
    for i in 0..4 {
        let blocks = net.client(i).get_blocks(1, h).await.expect("blocks");
        let hashes: Vec<_> = blocks.iter().map(|b| b.hash).collect();
        if i == 0 {
            reference = hashes;
        } else {
            assert_eq!(hashes, reference, "node {i} diverged");
        }
    }
    net.stop_all().await;
}
