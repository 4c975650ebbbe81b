//! Proof of work with three miners over libp2p on loopback. Events reach every node; a 1 | 2
//! partition lets both sides mine their own branch; the lone miner is paused through the admin
//! API (`admin_setMining`) before the heal, so the majority's branch stays the heavier one;
//! after healing, the lone miner switches to it, mines again, and its transactions return to
//! the mempool and become final elsewhere. The reorganisation is exact: once both stores are
//! brought to the same height, the node that switched branches holds byte for byte the store
//! of a node that only ever saw the winning branch. Blocks with too little work or a bad time
//! are rejected and their sender penalised. A paused miner mines nothing; an observer has no
//! miner to pause.

use std::sync::Arc;

use auditchain_consensus::pow::PowConfig;
use auditchain_genesis::ConsensusConfig;
use auditchain_node::verify::verify_receipt;
use auditchain_p2p::{BlockProvider, GossipMessage};
use auditchain_primitives::block::{ConsensusFields, HEADER_VERSION};
use auditchain_primitives::vote::{CommitCertificate, WireCertifiedBlock};
use auditchain_primitives::{Block, Hash, Header, merkle};
use auditchain_rpc::AuditChainApiClient;
use auditchain_rpc::admin::AdminApiClient;
use auditchain_storage::{ChainStore, Kv, SledKv, Store};
use auditchain_tests::{Testnet, wait_until, wire};
use serde_json::json;

struct NoBlocks;

impl BlockProvider for NoBlocks {
    fn head(&self) -> u64 {
        0
    }
    fn blocks(&self, _: u64, _: u64) -> Vec<WireCertifiedBlock> {
        Vec::new()
    }
    fn certificate(&self, _: u64) -> Option<CommitCertificate> {
        None
    }
}

/// Three miners (difficulty 3,000, retarget every 10 blocks) plus `observers` observer keys
/// and `writers` writer keys, started and connected.
async fn started_pow_net(
    observers: usize,
    writers: usize,
    target_block_time_ms: u64,
    finality_depth: u64,
) -> Testnet {
    let mut net = Testnet::with_observers(3, observers, writers, |g| {
        let miners = g.validators().to_vec();
        g.consensus = ConsensusConfig::Pow(PowConfig {
            miners,
            initial_difficulty: 3_000,
            target_block_time_ms,
            retarget_interval: 10,
            finality_depth,
            max_future_drift_ms: 5_000,
        });
    });
    for i in 0..3 {
        net.start_node(i).await;
    }
    net.wait_connected().await;
    net
}

/// Every key and value of a store.
fn dump(store: &Store<SledKv>) -> Vec<(Vec<u8>, Vec<u8>)> {
    store.kv().scan(&[], &[0xff; 8], usize::MAX).expect("scan")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pow_three_miners_fork_choice_and_exact_reorg() {
    // finality deep enough that a short partition's branch can still be reorganised away
    let mut net = started_pow_net(1, 2, 300, 1_000).await;
    let rec =
        |w: usize, n: u64, entity: &str| net.record(w, n, "sshd_login", entity, json!({ "n": n }));

    // events submitted to one node are mined by someone and reach every node
    net.client(0)
        .submit_batch((0..10).map(|n| wire(&rec(0, n, "before"))).collect())
        .await
        .expect("submit");
    net.wait_all(10, 3, 90).await;

    // a block with too little work, and one with a time far ahead, from an allowed peer
    let (inj, _ev) = net.injector(0, Arc::new(NoBlocks), 3).await;
    let inj_id = inj.local_peer_id().to_string();
    let head = net.client(0).get_head().await.expect("head");
    let miner = &net.validators[0];
    let forged = |ts: u64, nonce: u64| {
        let header = Header {
            version: HEADER_VERSION,
            height: head.height + 1,
            parent_hash: head.hash,
            timestamp_ms: ts,
            proposer: miner.public_key(),
            tx_root: merkle::empty_root(),
            tx_count: 0,
            history_root: head.history_root,
            history_size: head.history_size,
            state_root: head.state_root,
            last_commit_hash: Hash::ZERO,
            consensus: ConsensusFields::Pow {
                difficulty: u64::MAX / 2,
                nonce,
            },
        };
        Block::seal_with(header, vec![], miner)
    };
    // too little work: a huge difficulty claimed, a hash that misses it
    inj.publish(GossipMessage::Block(Box::new(forged(
        head.timestamp_ms + 1,
        1,
    ))));
    // real work at the parent's difficulty, but a time an hour ahead
    let parent = net
        .client(0)
        .get_block_by_height(head.height, Some(false))
        .await
        .expect("block")
        .expect("present");
    let ConsensusFields::Pow { difficulty, .. } = parent.header.consensus else {
        panic!("a proof-of-work header");
    };
    let mut ahead = forged(head.timestamp_ms + 3_600_000, 0).header;
    ahead.consensus = ConsensusFields::Pow {
        difficulty,
        nonce: 0,
    };
    let stop = std::sync::atomic::AtomicU64::new(0);
    let ahead = auditchain_consensus::pow::mine(&ahead, 0, u64::MAX, &stop, 0).expect("mined");
    inj.publish(GossipMessage::Block(Box::new(Block::seal_with(
        ahead,
        vec![],
        miner,
    ))));
    wait_until("the forger is penalised by every miner", 20, async || {
        let mut all = true;
        for i in 0..3 {
            let peers = net.client(i).node_peers().await.expect("peers");
            all &= peers
                .iter()
                .any(|p| p.peer_id == inj_id && p.rejected_messages >= 2);
        }
        all
    })
    .await;
    inj.shutdown().await;

    // partition: miner 0 alone, miners 1 and 2 together; each side gets its own events
    net.set_link(0, 1, false).await;
    net.set_link(0, 2, false).await;
    net.client(0)
        .submit_batch((10..15).map(|n| wire(&rec(0, n, "lone"))).collect())
        .await
        .expect("submit");
    net.client(1)
        .submit_batch((0..5).map(|n| wire(&rec(1, n, "majority"))).collect())
        .await
        .expect("submit");
    let split = net.client(0).get_head().await.expect("head").height;
    // wait until the branches have really diverged (the cut takes effect asynchronously) and
    // the majority is ahead
    let hash_at = |i: usize, h: u64| {
        let c = net.client(i);
        async move {
            c.get_block_by_height(h, Some(false))
                .await
                .expect("block")
                .map(|b| b.hash)
        }
    };
    // fork choice is by cumulative work (the sum of difficulties), not height: two miners
    // racing each other can lose work to their own forks, and retargets differ per branch
    let work = |i: usize, to: u64| {
        let c = net.client(i);
        async move {
            let mut sum = 0u128;
            for from in (1..=to).step_by(100) {
                let blocks = c.get_blocks(from, to.min(from + 99)).await.expect("blocks");
                for b in blocks {
                    if let ConsensusFields::Pow { difficulty, .. } = b.header.consensus {
                        sum += u128::from(difficulty);
                    }
                }
            }
            sum
        }
    };
    // The lone miner mines its own branch (holding its events), then pauses: while the links
    // come back it must not outpace the majority, which would make its branch the heavier one
    // by the rules (seen under CPU load: three lone blocks against none in 0.4 s).
    wait_until("the lone miner mined its own branch", 90, async || {
        let a = net.client(0).get_head().await.expect("head");
        a.height >= split + 2 && a.history_size >= 15 && hash_at(1, a.height).await != Some(a.hash)
    })
    .await;
    let mining = async |i: usize| net.client(i).node_status().await.expect("status").mining;
    assert!(mining(0).await, "a miner mines from the start");
    net.admin(0).set_mining(false).await.expect("pause mining");
    assert!(!mining(0).await, "node_status shows the pause");
    let lone = net.client(0).get_head().await.expect("head");
    let paused_at = net.client(1).get_head().await.expect("head").height;
    // Both majority miners must be on one branch: a block the lone miner found just as the
    // cut was made can still reach one of them, which then mines on it. Five majority blocks
    // at least: a miner that went on mining would very likely find one meanwhile.
    wait_until("the majority mined a heavier branch", 90, async || {
        let b = net.client(1).get_head().await.expect("head");
        b.height >= lone.height + 2
            && b.height >= paused_at + 5
            && hash_at(2, b.height).await == Some(b.hash)
            && work(1, b.height).await > work(0, lone.height).await * 11 / 10
    })
    .await;
    assert_eq!(
        net.client(0).get_head().await.expect("head").hash,
        lone.hash,
        "a paused miner mines nothing"
    );
    let majority = net.client(1).get_head().await.expect("head");
    // for the failure messages: the branches' work when the partition heals
    let work_at_heal = format!(
        "at the heal: lone branch {} blocks, work {}; majority {} blocks, work {}",
        lone.height,
        work(0, lone.height).await,
        majority.height,
        work(1, majority.height).await
    );
    // the first height where the branches differ
    let mut fork = 1;
    while hash_at(0, fork).await == hash_at(1, fork).await {
        fork += 1;
    }
    let lone_block = hash_at(0, fork).await.expect("lone block");
    let majority_block = hash_at(1, fork).await.expect("majority block");

    // heal: the paused lone miner adopts the branch with more work, then mines again; its own
    // events come back
    net.set_link(0, 1, true).await;
    net.set_link(0, 2, true).await;
    net.wait_connected().await;
    wait_until(
        "the lone miner adopted the majority's branch",
        60,
        async || hash_at(0, fork).await == Some(majority_block),
    )
    .await;
    net.admin(0).set_mining(true).await.expect("resume mining");
    assert!(mining(0).await, "node_status shows the resume");
    let h = net.wait_all(20, majority.height + 1, 120).await;
    let mut reference = Vec::new();
    let check_to = h.saturating_sub(2);
    for i in 0..3 {
        let blocks = net.client(i).get_blocks(1, check_to).await.expect("blocks");
        let hashes: Vec<Hash> = blocks.iter().map(|b| b.hash).collect();
        if i == 0 {
            reference = hashes;
        } else {
            assert_eq!(hashes, reference, "node {i} is on another branch");
        }
    }
    let now_at = hash_at(0, fork).await.expect("present");
    let final_work = work(0, h).await;
    assert_ne!(
        now_at, lone_block,
        "node 0 switched branches ({work_at_heal}; final work {final_work} at {h}, forked at {fork})"
    );
    assert_eq!(now_at, majority_block, "to the majority's branch");
    let trail = |i: usize| {
        let c = net.client(i);
        async move {
            c.get_trail(auditchain_rpc::types::TrailQuery {
                entity: Some("lone".into()),
                ..Default::default()
            })
            .await
            .expect("trail")
            .events
            .len()
        }
    };
    assert_eq!(
        trail(1).await,
        5,
        "the lone side's events are final on the majority"
    );

    // receipts verify offline (work and miner; no certificate on a proof-of-work chain); the
    // finalized head is `finality_depth` below the head
    let ev = net
        .client(2)
        .get_trail(auditchain_rpc::types::TrailQuery {
            entity: Some("majority".into()),
            ..Default::default()
        })
        .await
        .expect("trail");
    let id = ev.events[0].tx.id;
    let mut receipt = net.client(2).get_proof(id).await.expect("proof");
    assert!(receipt.certificate.is_none());
    verify_receipt(&receipt, &net.genesis).expect("receipt verifies");
    if let ConsensusFields::Pow { difficulty, nonce } = receipt.header.consensus {
        receipt.header.consensus = ConsensusFields::Pow {
            difficulty,
            nonce: nonce ^ 1,
        };
    }
    assert!(
        verify_receipt(&receipt, &net.genesis).is_err(),
        "a changed nonce breaks it"
    );
    let fin = net.client(2).get_finalized().await.expect("finalized");
    let head2 = net.client(2).get_head().await.expect("head");
    assert_eq!(fin.head.height, head2.height.saturating_sub(1_000));
    assert!(fin.certificate.is_none());

    // exactness: stop, bring both stores to one height, compare every byte
    net.stop_all().await;
    let open =
        |i: usize| Store::new(SledKv::open(&net.dirs[i].path().join("data")).expect("open sled"));
    let (s0, s1) = (open(0), open(1));
    let common = s0
        .head_height()
        .unwrap()
        .unwrap()
        .min(s1.head_height().unwrap().unwrap())
        - 1;
    for s in [&s0, &s1] {
        while s.head_height().unwrap().unwrap() > common {
            s.revert_head().expect("revert");
        }
    }
    assert_eq!(
        s0.header(common).unwrap().unwrap(),
        s1.header(common).unwrap().unwrap()
    );
    let (d0, d1) = (dump(&s0), dump(&s1));
    let differing: Vec<String> = d0
        .iter()
        .zip(&d1)
        .filter(|(a, b)| a != b)
        .take(3)
        .map(|(a, _)| String::from_utf8_lossy(&a.0).into_owned())
        .collect();
    assert_eq!(d0.len(), d1.len(), "same keys after the reorganisation");
    assert!(differing.is_empty(), "keys differ: {differing:?}");
    // and the reorganised store re-verifies from genesis (work, retargets, times, seals, state)
    let report =
        auditchain_node::verify::verify_chain(&s0, &net.genesis, |_| {}).expect("valid chain");
    assert_eq!(report.blocks, common + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pow_never_reverts_a_finalized_block() {
    let mut net = started_pow_net(1, 1, 200, 3).await;
    net.wait_all(0, 2, 60).await;
    net.set_link(0, 1, false).await;
    net.set_link(0, 2, false).await;
    let split = net.client(0).get_head().await.expect("head").height;
    // the lone miner buries its own branch deeper than the finality depth
    wait_until("the lone miner finalized past the split", 90, async || {
        let f = net.client(0).get_finalized().await.expect("finalized");
        f.head.height > split + 1
    })
    .await;
    let fin = net.client(0).get_finalized().await.expect("finalized").head;
    // the majority outgrows it while the lone miner is paused, so the lone branch cannot catch
    // up during the heal
    net.admin(0).set_mining(false).await.expect("pause mining");
    wait_until("the majority has more blocks", 90, async || {
        let a = net.client(0).get_head().await.expect("head").height;
        let b = net.client(1).get_head().await.expect("head").height;
        b > a + 3
    })
    .await;
    net.set_link(0, 1, true).await;
    net.set_link(0, 2, true).await;
    net.wait_connected().await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    // node 0 keeps the block it had finalized, whatever the other branch weighs
    let still = net
        .client(0)
        .get_block_by_height(fin.height, Some(false))
        .await
        .expect("block")
        .expect("present");
    assert_eq!(still.hash, fin.hash, "a finalized block was reverted");
    let f_now = net.client(0).get_finalized().await.expect("finalized").head;
    assert!(f_now.height >= fin.height);

    // an observer has no miner to pause: a clear error
    net.start_node(3).await;
    let err = net.admin(3).set_mining(false).await.expect_err("observer");
    let (code, msg) = auditchain_tests::rpc_error(&err);
    assert_eq!(code, -32602, "{msg}");
    assert!(
        msg.contains("enabled") && msg.contains("consensus.pow.miners"),
        "{msg}"
    );
    let status = net.client(3).node_status().await.expect("status");
    assert!(!status.mining, "an observer does not mine");
    net.stop_all().await;
}
