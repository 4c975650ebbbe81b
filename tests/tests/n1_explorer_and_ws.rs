//! The methods block explorers and auditors use: head subscriptions over WebSocket, blocks by
//! height / hash / range, stats, genesis, evidence anchoring, hash-only records and
//! `audit_verifyRecord`.

use auditchain_primitives::tx::{Payload, TxBody, data_hash};
use auditchain_primitives::{Transaction, sha256};
use auditchain_rpc::AuditChainApiClient;
use auditchain_rpc::types::TrailQuery;
use auditchain_tests::{TestChain, rpc_error, wire};
use serde_json::json;

fn signed(chain: &TestChain, nonce: u64, payload: Payload) -> Transaction {
    Transaction::sign(
        TxBody {
            chain_id: chain.genesis.hash(),
            signer: chain.writers[0].public_key(),
            nonce,
            timestamp_ms: 1,
            payload,
        },
        &chain.writers[0],
    )
    .expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_methods_and_head_subscription() {
    let chain = TestChain::start(1, |_| {}).await;
    let c = &chain.client;

    // subscribe before submitting
    let ws = auditchain_rpc::ws_client(&chain.node().ws_url())
        .await
        .expect("ws");
    let mut sub = ws.subscribe_new_heads().await.expect("subscribe");

    // a hash-only record (PHI stays off chain), a record with data, an evidence anchor
    let phi = json!({"patient": "12345", "action": "read chart"});
    let hash_only = signed(
        &chain,
        0,
        Payload::RecordEvent {
            event_type: "phi_access".into(),
            entity_id: "patient/12345".into(),
            data: None,
            data_hash: data_hash(&phi).expect("hash"),
        },
    );
    let file = b"complaint evidence bytes";
    let anchor = signed(
        &chain,
        1,
        Payload::AnchorEvidence {
            entity_id: "complaint-42".into(),
            sha256: sha256(file),
            size_bytes: file.len() as u64,
            uri: Some("s3://bucket/c42.pdf".into()),
        },
    );
    let with_data = chain.record(
        0,
        2,
        "batch_execution",
        "suite-a",
        json!({"success_rate": 0.75}),
    );
    for t in [&hash_only, &anchor, &with_data] {
        c.submit(wire(t)).await.expect("submit");
    }
    let r = c
        .submit_and_wait(wire(&chain.record(0, 3, "x", "y", json!({}))), Some(10_000))
        .await;
    let r = r.expect("commit");

    // the subscription delivered a head at or past the receipt's height
    let head = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let h = sub.next().await.expect("open").expect("decodes");
            if h.height >= r.header.height {
                return h;
            }
        }
    })
    .await
    .expect("a head notification");
    assert_eq!(head.height, r.header.height);
    assert_eq!(head.hash, r.header.hash());

    // verifyRecord: hash-only and on-chain data, matching and not
    let v = c
        .verify_record(hash_only.id(), phi.clone())
        .await
        .expect("verify");
    assert!(v.matches);
    let v = c
        .verify_record(
            hash_only.id(),
            json!({"patient": "12345", "action": "edit chart"}),
        )
        .await;
    assert!(!v.expect("verify").matches);
    assert!(
        c.verify_record(with_data.id(), json!({"success_rate": 0.75}))
            .await
            .expect("v")
            .matches
    );
    let (code, _) = rpc_error(
        &c.verify_record(anchor.id(), json!({}))
            .await
            .expect_err("not a record"),
    );
    assert_eq!(code, -32602);

    // evidence
    let ev = c.evidence_verify(sha256(file)).await.expect("evidence");
    assert!(ev.anchored);
    assert_eq!(ev.anchors.len(), 1);
    assert_eq!(ev.anchors[0].entity_id, "complaint-42");
    assert_eq!(ev.anchors[0].size_bytes, file.len() as u64);
    assert!(
        !c.evidence_verify(sha256(b"other"))
            .await
            .expect("evidence")
            .anchored
    );
    let trail = c
        .get_trail(TrailQuery {
            event_type: Some("evidence_anchored".into()),
            ..Default::default()
        })
        .await
        .expect("trail");
    assert_eq!(trail.events.len(), 1);

    // blocks by height, hash and range agree
    let h = r.header.height;
    let by_height = c
        .get_block_by_height(h, Some(true))
        .await
        .expect("b")
        .expect("exists");
    let by_hash = c
        .get_block_by_hash(by_height.hash, Some(true))
        .await
        .expect("b")
        .expect("exists");
    assert_eq!(by_height, by_hash);
    assert!(by_height.tx_ids.contains(&r.tx_id));
    assert_eq!(
        by_height.txs.as_ref().map(Vec::len),
        Some(by_height.tx_ids.len())
    );
    assert!(
        c.get_block_by_height(h + 1000, None)
            .await
            .expect("b")
            .is_none()
    );
    let range = c.get_blocks(0, h).await.expect("range");
    assert_eq!(range.len() as u64, h + 1);
    assert!(
        range
            .windows(2)
            .all(|w| w[1].header.parent_hash == w[0].hash)
    );
    assert_eq!(
        rpc_error(&c.get_blocks(0, 500).await.expect_err("too wide")).0,
        -32602
    );

    // stats, genesis, status, health
    let stats = c.get_stats().await.expect("stats");
    assert_eq!(stats.events, 4);
    assert_eq!(stats.events_per_type.get("phi_access"), Some(&1));
    assert_eq!(stats.events_per_type.get("evidence_anchored"), Some(&1));
    let g = c.get_genesis().await.expect("genesis");
    assert_eq!(g["chain_name"], "test");
    let st = c.node_status().await.expect("status");
    assert_eq!(st.chain_id, chain.genesis.hash());
    assert_eq!(st.validator, Some(chain.validator.public_key()));
    assert!(c.node_health().await.expect("health").healthy);
    let (code, _) = rpc_error(&c.get_proof(sha256(b"nope")).await.expect_err("unknown"));
    assert_eq!(code, 1011);
}
