//! Bad input from a peer, injected by a raw p2p node with an allowed (observer) identity into a
//! running 4-validator cluster: garbage bytes, a vote from a non-validator, a vote with a bad
//! signature, proposals with a bad seal, from the wrong proposer, with a bad tx root or history
//! root, or a timestamp out of bounds, or with a transaction that does not parse; a forged
//! copy of a committed transaction; and a sync response whose blocks do not link. Each is rejected, the sender is penalised, nothing is
//! committed from it, and the cluster keeps finalizing events.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use auditchain_p2p::{BlockProvider, GossipMessage, Proposal};
use auditchain_primitives::block::{ConsensusFields, HEADER_VERSION};
use auditchain_primitives::vote::{
    CertifiedBlock, CommitCertificate, Vote, VoteBody, VoteKind, WireCertifiedBlock,
};
use auditchain_primitives::{Block, Hash, Header, SecretKey, Signature, merkle};
use auditchain_rpc::AuditChainApiClient;
use auditchain_tests::{Testnet, wait_banned, wait_until, wire};
use serde_json::json;

/// Serves blocks that do not link to anything, counting the requests it answers.
struct Junk(Arc<AtomicU64>);

/// Serves no blocks: nobody syncs from it.
struct Nothing;

impl BlockProvider for Nothing {
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

impl BlockProvider for Junk {
    fn head(&self) -> u64 {
        50
    }
    fn blocks(&self, from: u64, to: u64) -> Vec<WireCertifiedBlock> {
        self.0.fetch_add(1, Ordering::SeqCst);
        (from..=to.min(50))
            .map(|h| {
                let block = Block {
                    header: header(
                        h,
                        Hash([h as u8; 32]),
                        SecretKey::from_seed(&[1; 32]).public_key(),
                        0,
                    ),
                    seal: Signature([0; 64]),
                    txs: vec![],
                };
                CertifiedBlock {
                    certificate: Some(CommitCertificate {
                        height: h,
                        round: 0,
                        block: block.hash(),
                        signatures: vec![],
                    }),
                    block,
                }
                .into()
            })
            .collect()
    }
    fn certificate(&self, _: u64) -> Option<CommitCertificate> {
        None
    }
}

fn header(
    height: u64,
    parent: Hash,
    proposer: auditchain_primitives::PublicKey,
    ts: u64,
) -> Header {
    Header {
        version: HEADER_VERSION,
        height,
        parent_hash: parent,
        timestamp_ms: ts,
        proposer,
        tx_root: merkle::empty_root(),
        tx_count: 0,
        history_root: merkle::empty_root(),
        history_size: 0,
        state_root: Hash::ZERO,
        last_commit_hash: Hash::ZERO,
        consensus: ConsensusFields::RoundRobin { round: 0 },
    }
}

/// Rejections the running validators have counted against `peer`.
async fn rejections(net: &Testnet, peer: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for i in 0..4 {
        let peers = net
            .node(i)
            .net
            .as_ref()
            .expect("net")
            .peers()
            .await
            .expect("peers");
        out.push(
            peers
                .iter()
                .find(|p| p.peer_id == peer)
                .map_or(0, |p| p.rejected_messages),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_gossip_and_sync_input_is_rejected_and_penalised() {
    // an idle chain that seals an empty block only every 20 s, so injected proposals target
    // the height being decided
    let mut net = Testnet::with_observers(4, 2, 2, |g| {
        let rr = g.round_robin_mut().expect("a round-robin genesis");
        rr.max_empty_interval_ms = 20_000;
    });
    for i in 0..4 {
        net.start_node(i).await;
    }
    net.wait_connected().await;
    let chain_id = net.genesis.hash();

    let served = Arc::new(AtomicU64::new(0));
    // the injector: a raw p2p node with the first observer identity, dialing every validator
    let (inj, _events) = net
        .injector(0, Arc::new(Junk(Arc::clone(&served))), 4)
        .await;
    let inj_id = inj.local_peer_id().to_string();

    let head = net.client(0).get_head().await.expect("head");
    let h = head.height + 1;
    let scheduled = &net.validators[(h % 4) as usize];
    let other = &net.validators[((h + 1) % 4) as usize];
    let ts = head.timestamp_ms + 1;
    let mut sent = 0u32;
    // the parent certificate every proposal must carry (none on top of genesis)
    let last_commit = net
        .client(0)
        .get_block_by_height(head.height, Some(false))
        .await
        .expect("block")
        .expect("head block")
        .certificate;
    let lch = auditchain_primitives::vote::last_commit_hash(last_commit.as_ref());
    let hdr = |proposer: auditchain_primitives::PublicKey, ts: u64| {
        let mut x = header(h, head.hash, proposer, ts);
        x.last_commit_hash = lch;
        x
    };

    // 1. garbage bytes on the votes topic
    assert!(inj.publish_raw("votes", vec![0xde, 0xad, 0xbe, 0xef]));
    sent += 1;
    // 2. a vote from a non-validator
    let body = |k: &SecretKey| VoteBody {
        kind: VoteKind::Prevote,
        height: h,
        round: 0,
        block: None,
        validator: k.public_key(),
    };
    let outsider = SecretKey::from_seed(&[42; 32]);
    inj.publish(GossipMessage::Votes(vec![Vote::sign(
        &chain_id,
        body(&outsider),
        &outsider,
    )]));
    sent += 1;
    // 3. a validator's vote with a bad signature
    let mut forged = Vote::sign(&chain_id, body(other), other);
    forged.signature.0[0] ^= 1;
    inj.publish(GossipMessage::Votes(vec![forged]));
    sent += 1;
    // 4. a proposal with a bad seal
    let mut bad_seal = Block::seal_with(hdr(scheduled.public_key(), ts), vec![], scheduled);
    bad_seal.seal.0[3] ^= 1;
    // 5. a proposal sealed by a validator not scheduled for this height and round
    let wrong = Block::seal_with(hdr(other.public_key(), ts), vec![], other);
    // 6. a correctly sealed proposal whose tx root is wrong
    let mut hd = hdr(scheduled.public_key(), ts);
    hd.tx_root = Hash([9; 32]);
    let bad_root = Block::seal_with(hd, vec![], scheduled);
    // 7. a correctly sealed proposal whose history root is wrong
    // (everything else right, so the history root is what fails)
    let mut hd = hdr(scheduled.public_key(), ts);
    hd.history_size = head.history_size;
    hd.state_root = auditchain_primitives::block::state_root(&head.state_root, &Default::default());
    hd.history_root = Hash([8; 32]);
    let bad_history = Block::seal_with(hd, vec![], scheduled);
    // 8. a correctly sealed proposal an hour in the future
    let late = Block::seal_with(
        hdr(scheduled.public_key(), ts + 3_600_000),
        vec![],
        scheduled,
    );
    for block in [bad_seal, wrong, bad_root, bad_history, late] {
        inj.publish(GossipMessage::Proposal(Box::new(Proposal {
            round: 0,
            valid_round: None,
            last_commit: last_commit.clone(),
            block,
        })));
        sent += 1;
    }
    wait_until("every validator counted every rejection", 20, async || {
        rejections(&net, &inj_id).await.iter().all(|n| *n >= sent)
    })
    .await;
    assert!(
        sent < auditchain_p2p::BAN_THRESHOLD,
        "stay below the ban to keep counting"
    );

    // a correctly sealed proposal carrying a transaction whose body no longer parses (its
    // payload type altered in the encoded message): rejected by the chain actor, which parses
    // the proposal transactions the network task leaves unparsed. Sent by a second raw node
    // that serves no blocks, so its count holds gossip rejections only (and the first stays
    // below the ban: a validator may also have penalised one of its sync answers).
    let (inj2, events2) = net.injector(1, Arc::new(Nothing), 4).await;
    let inj2_id = inj2.local_peer_id().to_string();
    let tx_key = SecretKey::from_seed(&[43; 32]);
    let tx = auditchain_primitives::Transaction::sign(
        auditchain_primitives::tx::TxBody {
            chain_id,
            signer: tx_key.public_key(),
            nonce: 0,
            timestamp_ms: ts,
            payload: auditchain_primitives::tx::Payload::RecordEvent {
                event_type: "t".into(),
                entity_id: "e".into(),
                data: None,
                data_hash: Hash([1; 32]),
            },
        },
        &tx_key,
    )
    .expect("signs");
    let carrying = Block::seal_with(hdr(scheduled.public_key(), ts), vec![tx], scheduled);
    let proposal = GossipMessage::Proposal(Box::new(Proposal {
        round: 0,
        valid_round: None,
        last_commit: last_commit.clone(),
        block: carrying,
    }));
    // the gossip envelope is (publisher sequence, message)
    let mut bytes = auditchain_primitives::codec::encode(&(u64::MAX, proposal)).expect("encodes");
    let at = bytes
        .windows(12)
        .position(|w| w == b"record_event")
        .expect("payload type in the message");
    bytes[at + 11] = b'T';
    assert!(inj2.publish_raw("blocks", bytes));
    wait_until(
        "every validator rejected the proposal with an unparsable transaction",
        20,
        async || rejections(&net, &inj2_id).await.iter().all(|n| *n >= 1),
    )
    .await;
    // a forged copy of a committed transaction (same body, so the same id; another
    // signature): not taken for the copy every node verified already, but verified, rejected
    // and penalised
    let committed = net.record(1, 0, "login", "host", json!({ "n": 0 }));
    net.client(2)
        .submit_batch(vec![wire(&committed)])
        .await
        .expect("submit");
    net.wait_all(1, 0, 60).await;
    let forged_copy =
        auditchain_primitives::Transaction::try_from(auditchain_primitives::tx::WireTx {
            body: auditchain_primitives::tx::WireTx::from(committed.clone()).body,
            signature: Signature([7; 64]),
        })
        .expect("parses");
    assert_eq!(forged_copy.id(), committed.id());
    inj2.publish(GossipMessage::Txs(vec![forged_copy]));
    wait_until(
        "every validator rejected the forged copy of a committed transaction",
        20,
        async || rejections(&net, &inj2_id).await.iter().all(|n| *n >= 2),
    )
    .await;
    // its identity is the fresh observer's below
    drop((inj2, events2));

    // a validator signing two different precommits for one height and round: valid votes, so
    // accepted, but stored as equivocation evidence and served by chain_getEvidence (round 50
    // of the height being decided, where nobody else votes)
    let now_h = net.client(0).get_head().await.expect("head").height + 1;
    let eq = |block| {
        Vote::sign(
            &chain_id,
            VoteBody {
                kind: VoteKind::Precommit,
                height: now_h,
                round: 50,
                block: Some(block),
                validator: other.public_key(),
            },
            other,
        )
    };
    inj.publish(GossipMessage::Votes(vec![eq(Hash([1; 32]))]));
    inj.publish(GossipMessage::Votes(vec![eq(Hash([2; 32]))]));
    let ours = |e: &auditchain_rpc::types::EquivocationView| {
        e.evidence.first.body.round == 50 && e.evidence.first.body.validator == other.public_key()
    };
    wait_until("equivocation evidence stored", 20, async || {
        net.client(0)
            .get_evidence(None, None)
            .await
            .map(|e| e.iter().any(ours))
            .unwrap_or(false)
    })
    .await;
    let ev = net
        .client(0)
        .get_evidence(None, None)
        .await
        .expect("evidence");
    let e = ev.iter().find(|e| ours(e)).expect("stored");
    assert!(e.evidence.verify(&chain_id).is_ok());
    assert_ne!(e.evidence.first.body.block, e.evidence.second.body.block);

    // nothing of it was committed, and the cluster keeps finalizing events (5 more than the
    // committed one above)
    let txs: Vec<_> = (0..5)
        .map(|n| net.record(0, n, "login", "host", json!({ "n": n })))
        .collect();
    net.client(1)
        .submit_batch(txs.iter().map(wire).collect())
        .await
        .expect("submit");
    let hh = net.wait_all(6, h, 60).await;
    for i in 0..4 {
        let b = net
            .client(i)
            .get_block_by_height(h, Some(false))
            .await
            .expect("block")
            .expect("final");
        assert_ne!(b.header.tx_root, Hash([9; 32]));
        assert_eq!(b.header.parent_hash, head.hash);
    }
    assert!(hh >= h);

    // a fresh observer whose only peer is the injector gets blocks that do not link: it
    // commits none, penalises the injector, and syncs once it reaches a real validator
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = net
        .start_outside_observer(1, dir.path(), inj.listen_addrs().await.expect("addrs"))
        .await;
    let fnet = fresh.net.clone().expect("net");
    // each junk response is penalised and the next peer asked; the only peer is the injector,
    // so it reaches the ban threshold and is disconnected
    wait_banned(
        "the injector is banned for its sync responses",
        20,
        &fnet,
        &inj_id,
        &served,
    )
    .await;
    assert_eq!(fresh.store.head_height().expect("head"), Some(0));
    fnet.dial(net.p2p_addrs[0].as_deref().expect("addr"))
        .await
        .expect("dial");
    wait_until("the fresh node syncs from a validator", 20, async || {
        fresh.store.head_height().ok().flatten().unwrap_or(0) >= hh
    })
    .await;
    fresh.stop().await;
    inj.shutdown().await;
    net.stop_all().await;
}
