//! Every kind of bad input gets a clear error, changes nothing, and the node keeps serving:
//! bad signature, non-canonical body, wrong chain, replayed nonce, nonce beyond the window,
//! oversize data, data not matching data_hash, malformed JSON, unknown payload kind, a signer
//! without the writer role, a full mempool, a data dir from another chain.

use auditchain_node::{Node, NodeOptions};
use auditchain_primitives::tx::{WireTx, signing_preimage};
use auditchain_primitives::{Hash, SecretKey, Signature, Transaction};
use auditchain_rpc::types::TxParam;
use auditchain_rpc::{AuditChainApiClient, RpcConfig};
use auditchain_tests::{TestChain, raw_post, rpc_error, sign_record, wire};
use serde_json::json;

async fn expect_rejected(chain: &TestChain, w: impl Into<TxParam>, code: i32, needle: &str) {
    let before = chain.client.node_status().await.expect("status");
    let err = chain
        .client
        .submit(w.into())
        .await
        .expect_err("must be rejected");
    let (got, msg) = rpc_error(&err);
    assert_eq!(got, code, "{msg}");
    assert!(
        msg.contains(needle),
        "message {msg:?} should mention {needle:?}"
    );
    let after = chain.client.node_status().await.expect("node still serves");
    assert_eq!(after.mempool_txs, before.mempool_txs, "nothing admitted");
}

/// Signs arbitrary body text (canonical or not) for `key`.
fn sign_text(key: &SecretKey, chain_id: &Hash, text: String) -> WireTx {
    let signature = key.sign(&signing_preimage(chain_id, &text));
    WireTx {
        body: text,
        signature,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transactions_are_rejected_and_change_nothing() {
    let chain = TestChain::start(1, |g| {
        g.limits.max_data_bytes = 1024;
        g.limits.mempool_max_per_signer = 5;
    })
    .await;
    let gid = chain.genesis.hash();
    let key = &chain.writers[0];
    let good = chain.record(0, 0, "login", "host", json!({"user": "root"}));

    // bad signature
    let mut sig = *good.signature();
    sig.0[10] ^= 1;
    expect_rejected(&chain, wire(&good.with_signature(sig)), 1002, "signature").await;
    expect_rejected(
        &chain,
        wire(&good.with_signature(Signature([0; 64]))),
        1002,
        "signature",
    )
    .await;

    // non-canonical body (validly signed, but spaced)
    let spaced = good.body_text().replacen(':', ": ", 1);
    expect_rejected(&chain, sign_text(key, &gid, spaced), 1001, "canonical").await;

    // malformed body JSON and unknown payload kind
    expect_rejected(
        &chain,
        sign_text(key, &gid, "{\"nonce\":".into()),
        1001,
        "body",
    )
    .await;
    let unknown = good.body_text().replace("record_event", "mint_gold");
    expect_rejected(
        &chain,
        sign_text(key, &gid, unknown),
        1001,
        "unknown variant `mint_gold`",
    )
    .await;

    // wrong chain
    let other = sign_record(key, Hash([7; 32]), 0, "login", "host", json!({}));
    expect_rejected(&chain, wire(&other), 1003, "chain").await;

    // data over the limit
    let big = chain.record(0, 0, "login", "host", json!({"blob": "x".repeat(2000)}));
    expect_rejected(&chain, wire(&big), 1009, "payload.data").await;

    // data that does not match data_hash (re-signed so only the hash is wrong)
    let mismatched = good.body_text().replace("\"root\"", "\"toor\"");
    expect_rejected(&chain, sign_text(key, &gid, mismatched), 1001, "data_hash").await;

    // a signer without the writer role
    let stranger = SecretKey::generate();
    let t = sign_record(&stranger, gid, 0, "login", "host", json!({}));
    expect_rejected(&chain, wire(&t), 1007, "writer role").await;
    let t = sign_record(&chain.validator, gid, 0, "login", "host", json!({}));
    expect_rejected(&chain, wire(&t), 1007, "writer role").await;

    // nonce beyond the window (next is 0, window 5)
    let far = chain.record(0, 5, "login", "host", json!({}));
    expect_rejected(&chain, wire(&far), 1005, "too far ahead").await;

    // the good one still goes through and commits
    let r = chain
        .client
        .submit_and_wait(wire(&good), Some(10_000))
        .await
        .expect("commit");
    assert_eq!(r.tx_id, good.id());
    // replayed nonce: the same tx again, and another tx with the same nonce
    expect_rejected(&chain, wire(&good), 1008, "already committed").await;
    let replay = chain.record(0, 0, "logout", "host", json!({}));
    expect_rejected(&chain, wire(&replay), 1004, "already used").await;

    // malformed JSON-RPC request bodies over raw HTTP
    let addr = chain.node().rpc_addr;
    let resp = raw_post(
        addr,
        b"{\"jsonrpc\":\"2.0\",\"method\":\"audit_submit\",\"params\":[",
    );
    assert!(resp.contains("-32700"), "parse error expected: {resp}");
    let resp = raw_post(
        addr,
        br#"{"jsonrpc":"2.0","id":1,"method":"audit_submit","params":[{"body":"{}","signature":"zz"}]}"#,
    );
    assert!(
        resp.contains("-32602") && resp.contains("tx.signature"),
        "{resp}"
    );
    let resp = raw_post(
        addr,
        br#"{"jsonrpc":"2.0","id":1,"method":"audit_getTrail","params":[{"limit":5000}]}"#,
    );
    assert!(resp.contains("-32602") && resp.contains("limit"), "{resp}");
    let resp = raw_post(
        addr,
        br#"{"jsonrpc":"2.0","id":1,"method":"audit_getTrail","params":[{"entiti":"x"}]}"#,
    );
    assert!(resp.contains("-32602") && resp.contains("entiti"), "{resp}");

    // still healthy, and exactly one event on chain
    assert!(chain.client.node_health().await.expect("health").healthy);
    assert_eq!(chain.client.get_head().await.expect("head").history_size, 1);
    let batch = chain
        .client
        .submit_batch(vec![
            wire(&chain.record(0, 1, "a", "b", json!({}))),
            wire(&chain.record(0, 6, "a", "b", json!({}))),
        ])
        .await
        .expect("batch");
    assert!(batch[0].id.is_some() && batch[0].error.is_none());
    assert_eq!(
        batch[1].error.as_ref().map(|e| e.code),
        Some(1005),
        "per-item errors in a batch"
    );

    // raw transactions (base64 of body ‖ signature): one good, one not base64, one whose
    // signature does not verify; each answered on its own
    let good_raw = chain.record(0, 2, "a", "b", json!({"raw": true}));
    let forged = Transaction::try_from(WireTx {
        signature: Signature([9; 64]),
        ..WireTx::from(chain.record(0, 3, "a", "b", json!({})))
    })
    .expect("a well-formed body");
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "audit_submitBatch",
        "params": [[TxParam::raw(&good_raw), "@@@@", TxParam::raw(&forged)]]});
    let resp = raw_post(addr, request.to_string().as_bytes());
    let v: serde_json::Value = serde_json::from_str(&resp).expect("a JSON-RPC answer");
    let outs = v["result"].as_array().expect("per-item outcomes");
    assert_eq!(outs[0]["id"], json!(good_raw.id().to_hex()), "{resp}");
    assert_eq!(outs[1]["error"]["code"], json!(-32602), "{resp}");
    let reason = outs[1]["error"]["message"].as_str().unwrap_or_default();
    assert!(reason.contains("not base64"), "{resp}");
    assert_eq!(outs[2]["error"]["code"], json!(1002), "{resp}");
    let r = chain
        .client
        .submit_and_wait(wire(&good_raw), Some(10_000))
        .await;
    let (code, msg) = rpc_error(&r.expect_err("already admitted from its raw form"));
    assert_eq!(code, 1008, "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mempool_answers_with_an_explicit_error() {
    let chain = TestChain::start(2, |g| {
        g.limits.mempool_max_txs = 3;
        let rr = g.round_robin_mut().expect("a round-robin genesis");
        rr.block_time_ms = 60_000;
        rr.max_empty_interval_ms = 60_000;
    })
    .await;
    for n in 0..3 {
        let t = chain.record(0, n, "login", "h", json!({"n": n}));
        chain.client.submit(wire(&t)).await.expect("admitted");
    }
    let t = chain.record(1, 0, "login", "h", json!({}));
    let (code, msg) = rpc_error(&chain.client.submit(wire(&t)).await.expect_err("full"));
    assert_eq!(code, 1010);
    assert!(
        msg.contains("mempool full") && msg.contains("limit 3"),
        "{msg}"
    );
    // the admitted ones are still pending and intact
    let st = chain.client.node_status().await.expect("status");
    assert_eq!(st.mempool_txs, 3);
    let pending = chain.record(0, 2, "login", "h", json!({"n": 2}));
    let got = chain
        .client
        .get_transaction(pending.id())
        .await
        .expect("pending tx");
    assert_eq!(got.tx.id, pending.id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_another_chain_is_refused() {
    let mut a = TestChain::start(1, |_| {}).await;
    let t = a.record(0, 0, "login", "h", json!({}));
    a.client
        .submit_and_wait(wire(&t), Some(10_000))
        .await
        .expect("commit");
    a.stop().await;
    let other_key = SecretKey::generate();
    let other = auditchain_tests::genesis(&other_key, &[], |g| g.chain_name = "other".into());
    let err = Node::start(NodeOptions {
        genesis: other,
        data_dir: Some(a.data_dir()),
        key: Some(other_key),
        rpc: RpcConfig {
            addr: ([127, 0, 0, 1], 0).into(),
            ..RpcConfig::default()
        },
        p2p: None,
        admin_addr: None,
    })
    .await
    .err()
    .expect("refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("belongs to chain"), "{msg}");
    // the original chain still opens with its data intact
    a.restart().await;
    let st = a.client.get_transaction(t.id()).await.expect("still there");
    assert!(st.location.is_some());
    let _: Transaction = t;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_head_is_refused_at_start_up() {
    use auditchain_storage::{ChainStore, Kv, SledKv, Store};
    let mut a = TestChain::start(1, |_| {}).await;
    let t = a.record(0, 0, "login", "h", json!({}));
    a.client
        .submit_and_wait(wire(&t), Some(10_000))
        .await
        .expect("commit");
    a.stop().await;
    {
        let store = Store::new(SledKv::open(&a.data_dir()).expect("open"));
        let head = store.head_height().expect("read").expect("head");
        let key = auditchain_storage::keys::header(head);
        let mut v = store.kv().get(&key).expect("get").expect("header");
        let n = v.len();
        v[n - 80] ^= 0x01; // inside the state root, before the seal
        store.kv().apply(vec![(key, Some(v))]).expect("write");
        store.kv().flush().expect("flush");
    }
    let err = Node::start(NodeOptions {
        genesis: a.genesis.clone(),
        data_dir: Some(a.data_dir()),
        key: Some(a.validator.clone()),
        rpc: RpcConfig {
            addr: ([127, 0, 0, 1], 0).into(),
            ..RpcConfig::default()
        },
        p2p: None,
        admin_addr: None,
    })
    .await
    .err()
    .expect("refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("fails verification") && msg.contains("verify-chain"),
        "{msg}"
    );
}
