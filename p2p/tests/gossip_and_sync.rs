//! Real libp2p swarms on 127.0.0.1 (port 0): gossip delivery with verdicts, the allowlist,
//! rejection of garbage with peer penalties, and block sync.

use std::sync::Arc;
use std::time::Duration;

use auditchain_p2p::{
    BlockProvider, BlocksRequest, GossipMessage, InboundMessage, NetEvent, NetHandle, P2pConfig,
    Verdict,
};
use auditchain_primitives::block::{ConsensusFields, HEADER_VERSION};
use auditchain_primitives::vote::{
    CertifiedBlock, CommitCertificate, Vote, VoteBody, VoteKind, WireCertifiedBlock,
};
use auditchain_primitives::{Block, Hash, Header, PublicKey, SecretKey, merkle};
use tokio::sync::mpsc;

const CHAIN: Hash = Hash([7; 32]);

/// Serves `n` synthetic blocks (heights 1..=n).
struct Blocks(u64);

impl BlockProvider for Blocks {
    fn head(&self) -> u64 {
        self.0
    }
    fn blocks(&self, from: u64, to: u64) -> Vec<WireCertifiedBlock> {
        (from..=to.min(self.0)).map(|h| block(h).into()).collect()
    }
    fn certificate(&self, _: u64) -> Option<CommitCertificate> {
        None
    }
}

fn block(height: u64) -> CertifiedBlock {
    let header = Header {
        version: HEADER_VERSION,
        height,
        parent_hash: Hash::ZERO,
        timestamp_ms: height,
        proposer: PublicKey([0; 32]),
        tx_root: merkle::empty_root(),
        tx_count: 0,
        history_root: merkle::empty_root(),
        history_size: 0,
        state_root: Hash::ZERO,
        last_commit_hash: Hash::ZERO,
        consensus: ConsensusFields::RoundRobin { round: 0 },
    };
    let block = Block {
        seal: auditchain_primitives::Signature([0; 64]),
        txs: vec![],
        header,
    };
    CertifiedBlock {
        certificate: Some(CommitCertificate {
            height,
            round: 0,
            block: block.hash(),
            signatures: vec![],
        }),
        block,
    }
}

struct TestNode {
    net: NetHandle,
    events: mpsc::Receiver<NetEvent>,
    addr: String,
}

async fn node(
    key: &SecretKey,
    allowed: &[PublicKey],
    bootstrap: Vec<String>,
    head: u64,
) -> TestNode {
    node_with_limit(
        key,
        allowed,
        bootstrap,
        head,
        auditchain_p2p::MAX_GOSSIP_BYTES,
    )
    .await
}

async fn node_with_limit(
    key: &SecretKey,
    allowed: &[PublicKey],
    bootstrap: Vec<String>,
    head: u64,
    max_message_bytes: usize,
) -> TestNode {
    let (net, events) = auditchain_p2p::start(
        P2pConfig {
            key: key.clone(),
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            bootstrap,
            allowed: allowed.to_vec(),
            chain_id: CHAIN,
            max_message_bytes,
        },
        Arc::new(Blocks(head)),
    )
    .await
    .expect("p2p starts");
    let addr = net.listen_addrs().await.unwrap().remove(0);
    TestNode { net, events, addr }
}

/// The next gossip message, skipping peer events; panics after 15 s.
async fn next_message(n: &mut TestNode) -> (auditchain_p2p::MessageRef, InboundMessage) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, n.events.recv()).await {
            Ok(Some(NetEvent::Message { msg, message })) => return (msg, message),
            Ok(Some(_)) => {}
            Ok(None) => panic!("network stopped"),
            Err(_) => panic!("no gossip message within 15 s"),
        }
    }
}

async fn wait_peers(n: &NetHandle, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while n.peers().await.unwrap().len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "peers did not connect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn vote(key: &SecretKey, height: u64) -> Vote {
    Vote::sign(
        &CHAIN,
        VoteBody {
            kind: VoteKind::Prevote,
            height,
            round: 0,
            block: None,
            validator: key.public_key(),
        },
        key,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_allowlist_penalties_and_sync() {
    let keys: Vec<SecretKey> = (1..=3u8).map(|i| SecretKey::from_seed(&[i; 32])).collect();
    let allowed: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
    let a = node(&keys[0], &allowed, vec![], 300).await;
    let mut b = node(&keys[1], &allowed, vec![a.addr.clone()], 0).await;
    let mut c = node(&keys[2], &allowed, vec![a.addr.clone(), b.addr.clone()], 0).await;
    wait_peers(&a.net, 2).await;
    wait_peers(&b.net, 2).await;
    // let subscriptions propagate
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // a vote published by A reaches B and C; their Accept lets it be forwarded
    let v = vote(&keys[0], 5);
    assert!(a.net.publish(GossipMessage::Votes(vec![v])));
    for n in [&mut b, &mut c] {
        let (msg, m) = next_message(n).await;
        assert_eq!(m, InboundMessage::Votes(vec![v]));
        n.net.verdict(msg, Verdict::Accept);
    }

    // garbage on a topic is rejected by the p2p layer itself and the sender penalised
    assert!(c.net.publish_raw("votes", b"not a message".to_vec()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c_id = c.net.local_peer_id().to_string();
    let penalised = |peers: Vec<auditchain_p2p::PeerInfo>| {
        peers
            .iter()
            .find(|p| p.peer_id == c_id)
            .map_or(0, |p| p.rejected_messages)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while penalised(a.net.peers().await.unwrap()) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "garbage sender not penalised"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // a node-level Reject verdict also counts against the forwarding peer
    let v2 = vote(&keys[2], 6);
    assert!(c.net.publish(GossipMessage::Votes(vec![v2])));
    let (msg, _) = next_message(&mut b).await;
    assert_eq!(msg.peer(), c.net.local_peer_id());
    b.net.verdict(msg, Verdict::Reject);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while penalised(b.net.peers().await.unwrap()) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "rejected sender not penalised"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // block sync: requests rotate over the peers; A (head 300) serves a bounded range
    // consecutive from `from`, C (head 0) serves nothing
    let mut from_a = None;
    for _ in 0..4 {
        let (peer, resp) = b
            .net
            .request_blocks(BlocksRequest { from: 10, to: 1000 })
            .await
            .unwrap();
        if peer == a.net.local_peer_id() {
            from_a = Some(resp);
        } else {
            assert_eq!(peer, c.net.local_peer_id());
            assert_eq!((resp.head, resp.blocks.len()), (0, 0));
        }
    }
    let resp = from_a.expect("A was asked");
    assert_eq!(resp.head, 300);
    assert_eq!(
        resp.blocks.len(),
        256,
        "at most MAX_SYNC_BLOCKS per response"
    );
    assert_eq!(resp.blocks[0], block(10).into());
    assert_eq!(resp.blocks[255].header.height, 265);

    // a peer outside the allowlist is refused: it never gets a connection to stay up
    let outsider = SecretKey::from_seed(&[99; 32]);
    let o = node(&outsider, &allowed, vec![a.addr.clone()], 0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a_peers = a.net.peers().await.unwrap();
    assert!(
        !a_peers
            .iter()
            .any(|p| p.peer_id == o.net.local_peer_id().to_string()),
        "outsider connected: {a_peers:?}"
    );
    assert_eq!(a_peers.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_gossip_is_dropped_and_the_node_keeps_working() {
    let keys: Vec<SecretKey> = (11..=13u8)
        .map(|i| SecretKey::from_seed(&[i; 32]))
        .collect();
    let allowed: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
    let mut a = node(&keys[0], &allowed, vec![], 0).await;
    let c = node(&keys[2], &allowed, vec![a.addr.clone()], 0).await;
    // a peer that does not respect the limit
    let big = node_with_limit(&keys[1], &allowed, vec![a.addr.clone()], 0, 64 << 20).await;
    wait_peers(&a.net, 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        big.net
            .publish_raw("votes", vec![7u8; auditchain_p2p::MAX_GOSSIP_BYTES + 1024])
    );
    // nothing oversize reaches the node …
    let got = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            if let Some(NetEvent::Message { message, .. }) = a.events.recv().await {
                return message;
            }
        }
    })
    .await;
    assert!(got.is_err(), "an oversize message was delivered");
    // … and it keeps serving its honest peers
    let v = vote(&keys[2], 9);
    assert!(c.net.publish(GossipMessage::Votes(vec![v])));
    let (_, m) = next_message(&mut a).await;
    assert_eq!(m, InboundMessage::Votes(vec![v]));
}
