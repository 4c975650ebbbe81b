//! A fresh node (an observer, so the four validators keep their pace) joins at height ≥ 1,000
//! and catches up by block sync (certificates, seals, roots and execution verified), ending with
//! the same head and state root as the validators.

use std::time::Duration;

use auditchain_rpc::AuditChainApiClient;
use auditchain_tests::{Testnet, wire};
use serde_json::json;

const TARGET: u64 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_observer_syncs_1000_blocks_from_genesis() {
    let mut net = Testnet::with_observers(4, 1, 1, |g| {
        let rr = g.round_robin_mut().expect("a round-robin genesis");
        rr.block_time_ms = 10;
        rr.max_empty_interval_ms = 10;
    });
    for i in 0..4 {
        net.start_node(i).await;
    }
    net.wait_connected().await;
    // some events along the way, so synced blocks carry transactions to re-verify
    let txs: Vec<_> = (0..300)
        .map(|n| {
            net.record(
                0,
                n,
                "hdfs_block",
                &format!("blk_{}", n % 7),
                json!({ "n": n }),
            )
        })
        .collect();
    for chunk in txs.chunks(50) {
        net.client(0)
            .submit_batch(chunk.iter().map(wire).collect())
            .await
            .expect("submit");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    net.wait_all(300, TARGET, 240).await;

    net.start_node(4).await;
    let h = net.wait_all(300, TARGET, 240).await;
    let fresh = net
        .client(4)
        .get_block_by_height(h, Some(false))
        .await
        .expect("block");
    let other = net
        .client(0)
        .get_block_by_height(h, Some(false))
        .await
        .expect("block");
    let (fresh, other) = (fresh.expect("synced"), other.expect("present"));
    assert_eq!(fresh.hash, other.hash);
    assert_eq!(fresh.header.state_root, other.header.state_root);
    assert_eq!(fresh.header.history_root, other.header.history_root);
    net.stop_all().await;
}
