//! One node, temporary sled: 1,000 signed events through the RPC client; per-signer order;
//! trail queries by entity, signer, type and time paged with a small limit; every receipt
//! verifies offline; a restart keeps head and data; a flipped stored byte is named by
//! verify-chain.

use std::collections::{BTreeMap, BTreeSet};

use auditchain_node::verify::{verify_chain, verify_receipt};
use auditchain_primitives::{Hash, Transaction};
use auditchain_rpc::AuditChainApiClient;
use auditchain_rpc::types::{TrailPage, TrailQuery, TxStatus};
use auditchain_storage::{ChainStore, Kv, SledKv, Store, block_record};
use auditchain_tests::{TestChain, wire};
use serde_json::json;

const N: usize = 1000;
const WRITERS: usize = 3;

struct Sent {
    tx: Transaction,
    writer: usize,
    entity: String,
    ty: String,
}

/// Follows the cursor with `limit` per page, checking no page repeats an event.
async fn all_pages(c: &auditchain_rpc::HttpClient, mut q: TrailQuery, limit: u32) -> Vec<Hash> {
    q.limit = Some(limit);
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let TrailPage {
            events,
            next_cursor,
        } = c.get_trail(q.clone()).await.expect("trail");
        assert!(events.len() <= limit as usize);
        let mut last_seq = None;
        for e in &events {
            if let Some(l) = last_seq {
                assert!(e.location.seq > l, "chain order within a page");
            }
            last_seq = Some(e.location.seq);
            out.push(e.tx.id);
        }
        pages += 1;
        assert!(pages < 10_000, "cursor does not advance");
        match next_cursor {
            Some(cur) => q.cursor = Some(cur),
            None => break,
        }
    }
    let unique: BTreeSet<_> = out.iter().collect();
    assert_eq!(unique.len(), out.len(), "no event repeated across pages");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n1_rpc_1000_events() {
    let mut chain = TestChain::start(WRITERS, |_| {}).await;
    let c = chain.client.clone();

    // --- submit: the first 300 one by one, the rest in batches of 100 ---
    let mut nonces = [0u64; WRITERS];
    let sent: Vec<Sent> = (0..N)
        .map(|i| {
            let w = i % WRITERS;
            let entity = format!("e{}", i % 7);
            let ty = format!("t{}", i % 4);
            let tx = chain.record(w, nonces[w], &ty, &entity, json!({"i": i, "host": entity}));
            nonces[w] += 1;
            Sent {
                tx,
                writer: w,
                entity,
                ty,
            }
        })
        .collect();
    for s in &sent[..300] {
        let id = c.submit(wire(&s.tx)).await.expect("submit");
        assert_eq!(id, s.tx.id());
    }
    for batch in sent[300..].chunks(100) {
        let outs = c
            .submit_batch(batch.iter().map(|s| wire(&s.tx)).collect())
            .await
            .expect("batch");
        for (o, s) in outs.iter().zip(batch) {
            assert_eq!(o.id, Some(s.tx.id()), "{:?}", o.error);
        }
    }
    chain.wait_for_events(N as u64).await;

    // --- every event committed; per signer in nonce (= submit) order ---
    let mut loc = BTreeMap::new();
    for s in &sent {
        let st = c.get_transaction(s.tx.id()).await.expect("get");
        assert_eq!(st.status, TxStatus::Committed);
        loc.insert(s.tx.id(), st.location.expect("location"));
    }
    for w in 0..WRITERS {
        let mine: Vec<&Sent> = sent.iter().filter(|s| s.writer == w).collect();
        let seqs: Vec<u64> = mine.iter().map(|s| loc[&s.tx.id()].seq).collect();
        assert!(
            seqs.windows(2).all(|p| p[0] < p[1]),
            "writer {w} committed out of order"
        );
    }

    // --- trail queries equal independently computed sets, paged with a small limit ---
    let by_seq = |ids: Vec<Hash>| {
        let mut v = ids;
        v.sort_by_key(|id| loc[id].seq);
        v
    };
    let expect = |f: &dyn Fn(&Sent) -> bool| {
        by_seq(sent.iter().filter(|s| f(s)).map(|s| s.tx.id()).collect())
    };
    let q = |f: fn(&mut TrailQuery)| {
        let mut q = TrailQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        all_pages(&c, q(|q| q.entity = Some("e3".into())), 7).await,
        expect(&|s| s.entity == "e3")
    );
    let w1 = chain.writers[1].public_key();
    let mut qs = TrailQuery {
        signer: Some(w1),
        ..Default::default()
    };
    assert_eq!(
        all_pages(&c, qs.clone(), 13).await,
        expect(&|s| s.writer == 1)
    );
    assert_eq!(
        all_pages(&c, q(|q| q.event_type = Some("t2".into())), 50).await,
        expect(&|s| s.ty == "t2")
    );
    qs.event_type = Some("t1".into());
    assert_eq!(
        all_pages(&c, qs, 5).await,
        expect(&|s| s.writer == 1 && s.ty == "t1")
    );
    assert_eq!(all_pages(&c, TrailQuery::default(), 333).await.len(), N);
    // time: block time in [from, to)
    let times: BTreeSet<u64> = loc.values().map(|l| l.block_time_ms).collect();
    let times: Vec<u64> = times.into_iter().collect();
    assert!(times.len() >= 3, "events spread over several blocks");
    let (from, to) = (times[1], times[times.len() - 1]);
    let in_window = |s: &Sent| {
        let t = loc[&s.tx.id()].block_time_ms;
        t >= from && t < to
    };
    let tq = TrailQuery {
        from_ms: Some(from),
        to_ms: Some(to),
        ..Default::default()
    };
    assert_eq!(all_pages(&c, tq, 9).await, expect(&in_window));
    let tq = TrailQuery {
        from_ms: Some(from),
        to_ms: Some(to),
        entity: Some("e5".into()),
        ..Default::default()
    };
    assert_eq!(
        all_pages(&c, tq, 4).await,
        expect(&|s| in_window(s) && s.entity == "e5")
    );

    // --- every receipt verifies offline against the genesis alone ---
    let mut receipts = Vec::new();
    for s in &sent {
        let r = c.get_proof(s.tx.id()).await.expect("proof");
        verify_receipt(&r, &chain.genesis).expect("receipt verifies");
        receipts.push(r);
    }
    let mut bad = receipts[17].clone();
    bad.tx_proof.reverse();
    if bad.tx_proof.len() > 1 {
        assert!(verify_receipt(&bad, &chain.genesis).is_err());
    }
    let mut bad = receipts[17].clone();
    bad.header.state_root.0[0] ^= 1;
    assert!(
        verify_receipt(&bad, &chain.genesis).is_err(),
        "seal covers the header"
    );

    // --- restart on the same data dir: same head, same data ---
    let head = c.get_head().await.expect("head");
    let trail_before = all_pages(&c, q(|q| q.entity = Some("e1".into())), 100).await;
    chain.restart().await;
    let c = chain.client.clone();
    let head_after = c.get_head().await.expect("head");
    assert!(head_after.height >= head.height);
    let same = c
        .get_block_by_height(head.height, None)
        .await
        .expect("block")
        .expect("exists");
    assert_eq!(same.hash, head.hash);
    assert_eq!(
        all_pages(&c, q(|q| q.entity = Some("e1".into())), 100).await,
        trail_before
    );
    assert_eq!(
        c.get_proof(sent[500].tx.id()).await.expect("proof"),
        receipts[500]
    );

    // --- flip one stored byte: verify-chain names that block ---
    chain.stop().await;
    let target = loc[&sent[N / 2].tx.id()].clone();
    {
        let store = Store::new(SledKv::open(&chain.data_dir()).expect("open"));
        let report = verify_chain(&store, &chain.genesis, |_| {}).expect("intact chain verifies");
        assert!(report.txs >= N as u64);
        // the record of the target's block: flip a byte inside its last entry's body text,
        // before the signature
        let (_, loc) = store
            .tx_record(target.seq)
            .expect("seek")
            .expect("stored record");
        let record = store
            .kv()
            .log_read(loc.offset, loc.len as usize)
            .expect("read the record");
        drop(store);
        // the offset table's last value: where the last entry ends in the entries area
        let n = loc.txs as usize;
        let end = u32::from_be_bytes(record[4 * n..4 * n + 4].try_into().expect("4 bytes"));
        let at = loc.offset + block_record::entries_offset(loc.txs) + u64::from(end) - 70;
        let path = chain.data_dir().join(SledKv::LOG_FILE);
        let mut log = std::fs::read(&path).expect("read the log");
        log[at as usize] ^= 0x01;
        std::fs::write(&path, &log).expect("write the log");
        let store = Store::new(SledKv::open(&chain.data_dir()).expect("open"));
        let fault = verify_chain(&store, &chain.genesis, |_| {}).expect_err("tampering detected");
        assert_eq!(fault.height, target.height, "{fault}");
        assert!(
            ["signature", "tx_root", "corrupt", "canonical"]
                .iter()
                .any(|k| fault.reason.contains(k)),
            "{fault}"
        );
        drop(store);
        log[at as usize] ^= 0x01;

        // --- flip a byte of a stored history node (level 4, index 0): receipts are built
        // from these, so verify-chain names the block that completed it ---
        let store = Store::new(SledKv::open(&chain.data_dir()).expect("open"));
        let (first, loc) = store.tx_record(15).expect("seek").expect("stored record");
        let txs = u64::from(loc.txs);
        let pos = block_record::node_position(first, txs, 4, 0).expect("completed here");
        let node_at = loc.end() - 32 * block_record::node_count(first, txs) + 32 * pos;
        let height = store.tx_at(15).expect("read").expect("stored").height;
        drop(store);
        log[node_at as usize + 5] ^= 0x80;
        std::fs::write(&path, &log).expect("write the log");
        let store = Store::new(SledKv::open(&chain.data_dir()).expect("open"));
        let fault = verify_chain(&store, &chain.genesis, |_| {}).expect_err("tampering detected");
        assert_eq!(fault.height, height, "{fault}");
        assert!(
            fault.reason.contains("stored history node (4, 0)"),
            "{fault}"
        );
    }
}
