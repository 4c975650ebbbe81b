//! Block sync from a peer that serves the real chain with a forged certificate for the block
//! before the range (the asker's head; sync protocol 2): a behind observer commits nothing
//! from it, penalises it until it is banned, and then catches up from a real validator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use auditchain_node::Node;
use auditchain_p2p::BlockProvider;
use auditchain_primitives::vote::{CommitCertificate, WireCertifiedBlock};
use auditchain_rpc::AuditChainApiClient;
use auditchain_storage::ChainStore;
use auditchain_tests::{Testnet, wait_banned, wait_until};
use serde_json::json;

/// Serves a validator's real blocks, but the certificate of the block before each range keeps
/// a single signature: short of a quorum of 4 validators.
struct ForgedParentCertificate {
    store: Arc<dyn ChainStore>,
    served: Arc<AtomicU64>,
}

impl BlockProvider for ForgedParentCertificate {
    fn head(&self) -> u64 {
        self.store.head_height().ok().flatten().unwrap_or(0)
    }
    fn blocks(&self, from: u64, to: u64) -> Vec<WireCertifiedBlock> {
        self.served.fetch_add(1, Ordering::SeqCst);
        (from..=to.min(self.head()))
            .map_while(|h| {
                let cert = self.store.certificate(h).ok()?;
                self.store.block_wire(h, cert).ok()?
            })
            .collect()
    }
    fn certificate(&self, height: u64) -> Option<CommitCertificate> {
        let mut c = self.store.certificate(height).ok()??;
        c.signatures.truncate(1);
        Some(c)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_head_certificate_in_a_sync_answer_is_refused_and_penalised() {
    let mut net = Testnet::with_observers(4, 2, 1, |_| {});
    for i in 0..4 {
        net.start_node(i).await;
    }
    net.wait_connected().await;
    record_final(&net, 0, 0..3).await;

    // an observer that follows validator 0 only, then loses it and falls behind
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = net
        .start_outside_observer(1, dir.path(), vec![net.p2p_addrs[0].clone().expect("addr")])
        .await;
    let height = |n: &Node| n.store.head_height().ok().flatten().unwrap_or(0);
    let synced = height(net.node(0));
    wait_until("the observer syncs from validator 0", 30, async || {
        height(&fresh) >= synced
    })
    .await;
    let fnet = fresh.net.clone().expect("net");
    let v0 = fnet
        .peers()
        .await
        .expect("peers")
        .into_iter()
        .next()
        .expect("validator 0")
        .peer_id;
    fnet.set_allowed(&v0, false).await.expect("cut");
    wait_until("the observer is alone", 10, async || {
        fnet.peers().await.map(|p| p.is_empty()).unwrap_or(false)
    })
    .await;
    let stuck = height(&fresh);
    record_final(&net, 1, 3..6).await;
    assert!(height(net.node(0)) > stuck + 1);

    // its only peer now serves the real blocks after its head, with a forged certificate of
    // its head: every answer is refused and penalised until the peer is banned
    let served = Arc::new(AtomicU64::new(0));
    let (inj, _events) = net
        .injector(
            0,
            Arc::new(ForgedParentCertificate {
                store: Arc::clone(&net.node(0).store),
                served: Arc::clone(&served),
            }),
            4,
        )
        .await;
    let inj_id = inj.local_peer_id().to_string();
    for a in inj.listen_addrs().await.expect("addrs") {
        let _ = fnet.dial(&a).await;
    }
    wait_banned(
        "the forging peer is banned for its sync answers",
        30,
        &fnet,
        &inj_id,
        &served,
    )
    .await;
    assert_eq!(
        height(&fresh),
        stuck,
        "nothing committed from the forged answers"
    );

    // back on a real validator, the same blocks sync
    fnet.set_allowed(&v0, true).await.expect("restore");
    fnet.dial(net.p2p_addrs[0].as_deref().expect("addr"))
        .await
        .expect("dial");
    let target = height(net.node(0));
    wait_until("the observer catches up from validator 0", 30, async || {
        height(&fresh) >= target
    })
    .await;
    fresh.stop().await;
    inj.shutdown().await;
    net.stop_all().await;
}

/// Writer 0 records one event per nonce in `nonces` through node `via`, each waited final.
async fn record_final(net: &Testnet, via: usize, nonces: std::ops::Range<u64>) {
    for n in nonces {
        let t = net.record(0, n, "login", "host", json!({ "n": n }));
        net.client(via)
            .submit_and_wait(auditchain_tests::wire(&t), None)
            .await
            .expect("final");
    }
}
