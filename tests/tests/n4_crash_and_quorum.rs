//! Four validators on loopback. One down: finalization continues; restarted, it catches up by
//! block sync and agrees. Two down: no quorum, nothing is finalized (no conflicting block at any
//! height); restarted, finalization resumes.

use std::time::Duration;

use auditchain_rpc::AuditChainApiClient;
use auditchain_tests::{Testnet, wire};
use serde_json::json;

async fn submit(net: &Testnet, node: usize, w: usize, nonces: std::ops::Range<u64>) {
    let txs: Vec<_> = nonces
        .map(|n| net.record(w, n, "ssh_auth_failure", "LabSZ", json!({ "n": n })))
        .collect();
    let out = net
        .client(node)
        .submit_batch(txs.iter().map(wire).collect())
        .await
        .expect("submit");
    assert!(out.iter().all(|o| o.id.is_some()), "admitted: {out:?}");
}

/// Asserts every running node holds the same block hash at every height up to `height`.
async fn assert_agree(net: &Testnet, height: u64) {
    let mut reference = Vec::new();
    for (k, i) in net.running().into_iter().enumerate() {
        let c = net.client(i);
        let blocks = c.get_blocks(1, height).await.expect("blocks");
        let hashes: Vec<_> = blocks.iter().map(|b| b.hash).collect();
        assert_eq!(hashes.len() as u64, height, "node {i} serves every block");
        if k == 0 {
            reference = hashes;
        } else {
            assert_eq!(hashes, reference, "node {i} disagrees");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_one_down_continues_and_catches_up() {
    let mut net = Testnet::start(4, 1).await;
    submit(&net, 0, 0, 0..20).await;
    net.wait_all(20, 0, 30).await;
    net.stop_node(3).await;
    let stopped_at = net.client(0).get_head().await.expect("head").height;

    // three of four are a quorum: events keep becoming final
    submit(&net, 1, 0, 20..60).await;
    let h = net.wait_all(60, stopped_at + 5, 60).await;
    assert_agree(&net, h).await;

    // restarted, node 3 syncs the blocks it missed and follows again
    net.start_node(3).await;
    submit(&net, 2, 0, 60..80).await;
    let h = net.wait_all(80, h + 1, 60).await;
    assert_agree(&net, h).await;
    let head3 = net.client(3).get_head().await.expect("head");
    assert!(head3.height >= h);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_two_down_stops_finality_until_they_return() {
    let mut net = Testnet::start(4, 1).await;
    submit(&net, 0, 0, 0..10).await;
    net.wait_all(10, 0, 30).await;
    net.stop_node(2).await;
    net.stop_node(3).await;
    // a block the four decided just before the stop may still be written afterwards: take the
    // baseline once node 0's head has stood still for a second (empty blocks come every 0.5 s)
    let mut before = net.client(0).get_head().await.expect("head");
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = net.client(0).get_head().await.expect("head");
        if now.height == before.height {
            break;
        }
        before = now;
    }

    // two of four: no quorum; the events stay pending and no block is finalized
    submit(&net, 0, 0, 10..20).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in [0, 1] {
        let h = net.client(i).get_head().await.expect("head");
        assert_eq!(
            h.height, before.height,
            "node {i} finalized without a quorum"
        );
        assert_eq!(h.history_size, 10);
    }

    // node 0 has logged its votes of the undecided height (prevotes and precommits of the rounds
    // that failed); restarted, it resumes from that log instead of voting afresh
    let (logged_h, logged) = net
        .node(0)
        .store
        .own_votes()
        .expect("vote log")
        .expect("votes logged");
    assert_eq!(logged_h, before.height + 1);
    assert!(!logged.is_empty());
    assert!(
        logged
            .iter()
            .all(|v| v.body.validator == net.validators[0].public_key())
    );
    net.stop_node(0).await;
    net.start_node(0).await;

    // back to four: finalization resumes and the pending events become final everywhere
    net.start_node(2).await;
    net.start_node(3).await;
    let h = net.wait_all(20, before.height + 1, 90).await;
    assert_agree(&net, h).await;
    // no validator contradicted itself across the restarts
    for i in 0..4 {
        let ev = net
            .client(i)
            .get_evidence(None, None)
            .await
            .expect("evidence");
        assert!(ev.is_empty(), "node {i} recorded equivocation: {ev:?}");
    }
    net.stop_all().await;
}
