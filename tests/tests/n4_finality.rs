//! Four validators over real libp2p on loopback: events submitted to any node are finalized on
//! all of them, every node holds the same block at every height, and receipts from different
//! nodes are identical and verify offline against the genesis (certificates included).

use std::collections::BTreeMap;

use auditchain_node::verify::verify_receipt;
use auditchain_primitives::Hash;
use auditchain_rpc::AuditChainApiClient;
use auditchain_tests::{Testnet, wire};
use serde_json::json;

const PER_WRITER: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_events_to_any_node_are_final_everywhere() {
    let mut net = Testnet::start(4, 4).await;
    let ws = auditchain_rpc::ws_client(&net.node(2).ws_url())
        .await
        .expect("ws");
    let mut finalized = ws.subscribe_finalized().await.expect("subscribe");
    // writer w submits through node w
    let mut ids: Vec<Hash> = Vec::new();
    for w in 0..4 {
        let txs: Vec<_> = (0..PER_WRITER)
            .map(|n| net.record(w, n, "login", &format!("host{w}"), json!({ "n": n })))
            .collect();
        let out = net
            .client(w)
            .submit_batch(txs.iter().map(wire).collect())
            .await
            .expect("submit");
        for (o, t) in out.iter().zip(&txs) {
            assert_eq!(o.id, Some(t.id()), "admitted: {o:?}");
            ids.push(t.id());
        }
    }
    let total = 4 * PER_WRITER;
    let events_height = net.wait_all(total, 0, 60).await;
    // one more block on every node: the certificates of all event blocks are then canonical
    let height = net.wait_all(total, events_height + 1, 60).await;

    // the same block at every height on every node, each with a valid certificate
    let mut by_height: BTreeMap<u64, Hash> = BTreeMap::new();
    for i in 0..4 {
        let c = net.client(i);
        for h in 1..=height {
            let b = c
                .get_block_by_height(h, Some(false))
                .await
                .expect("block")
                .expect("present");
            let cert = b.certificate.expect("final blocks carry a certificate");
            cert.check_header(&net.genesis.hash(), &b.header, net.genesis.validators())
                .expect("certificate verifies");
            let first = *by_height.entry(h).or_insert(b.hash);
            assert_eq!(first, b.hash, "node {i} differs at height {h}");
        }
    }

    // receipts: the same event proven by two nodes; both verify offline
    for (k, id) in ids.iter().enumerate().step_by(37) {
        let a = net.client(k % 4).get_proof(*id).await.expect("proof");
        let b = net.client((k + 1) % 4).get_proof(*id).await.expect("proof");
        verify_receipt(&a, &net.genesis).expect("receipt verifies");
        verify_receipt(&b, &net.genesis).expect("receipt verifies");
        // everything but the certificate's signer subset is identical
        assert_eq!(
            (
                &a.tx,
                &a.header,
                &a.seal,
                &a.tx_proof,
                &a.history_proof,
                a.history_index
            ),
            (
                &b.tx,
                &b.header,
                &b.seal,
                &b.tx_proof,
                &b.history_proof,
                b.history_index
            )
        );
        let (ca, cb) = (
            a.certificate.expect("certificate"),
            b.certificate.expect("certificate"),
        );
        assert_eq!((ca.height, ca.block), (cb.height, cb.block));
    }

    // per-signer order holds on every node: writer w's nonces appear ascending
    for i in 0..4 {
        let c = net.client(i);
        let mut seqs = Vec::new();
        for id in ids.iter().take(PER_WRITER as usize) {
            let st = c.get_transaction(*id).await.expect("status");
            seqs.push(st.location.expect("committed").seq);
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "node {i}: order");
    }
    // chain_subscribeFinalized delivered final heads to the WebSocket subscriber
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), finalized.next())
        .await
        .expect("a finalized head within 10 s")
        .expect("stream open")
        .expect("decodes");
    assert!(first.height >= 1);

    // cluster RPC: peers, validators, finalized head, signer metrics, evidence
    let c = net.client(1);
    let validators = c.get_validators(None).await.expect("validators");
    assert_eq!(
        validators.iter().map(|v| v.public_key).collect::<Vec<_>>(),
        net.genesis.validators()
    );
    let peers = c.node_peers().await.expect("peers");
    assert_eq!(peers.len(), 3);
    for p in &peers {
        assert!(validators.iter().any(|v| v.peer_id == p.peer_id), "{p:?}");
        assert_eq!(p.rejected_messages, 0);
    }
    let fin = c.get_finalized().await.expect("finalized");
    let cert = fin.certificate.expect("certificate");
    assert_eq!((cert.height, cert.block), (fin.head.height, fin.head.hash));
    let metrics = c.get_signer_metrics().await.expect("metrics");
    assert_eq!(metrics.len(), 4);
    assert!(
        metrics
            .iter()
            .all(|m| m.votes > 0 && m.last_seen_ms.is_some()),
        "{metrics:?}"
    );
    let proposed: u64 = metrics.iter().map(|m| m.proposed).sum();
    assert!(
        proposed >= fin.head.height,
        "every final block has a proposer"
    );
    assert!(
        c.get_evidence(None, None)
            .await
            .expect("evidence")
            .is_empty()
    );
    let (code, msg) =
        auditchain_tests::rpc_error(&c.get_evidence(None, Some(5000)).await.expect_err("limit"));
    assert_eq!(code, -32602);
    assert!(msg.contains("limit"), "{msg}");
    net.stop_all().await;
}
