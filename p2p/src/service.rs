//! The swarm task: owns the libp2p `Swarm`, turns commands into network actions and network
//! events into [`NetEvent`]s.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditchain_primitives::codec::{decode, encode, encoded_len};
use auditchain_primitives::{PublicKey, sha256};
use futures::StreamExt;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Swarm, allow_block_list, gossipsub, identify, multiaddr::Protocol,
    request_response,
};
use tokio::sync::{mpsc, oneshot};

use crate::sync_codec::{PROTOCOL, SyncCodec};
use crate::{
    BAN_DURATION, BAN_THRESHOLD, BlockProvider, BlocksRequest, BlocksResponse, Command, Envelope,
    GossipMessage, InboundEnvelope, MAX_SYNC_BLOCKS, MAX_SYNC_RESPONSE_BYTES, MessageRef, NetEvent,
    NetHandle, P2pConfig, P2pError, PeerInfo, PeerRef, SYNC_RESPONSE_TARGET_BYTES, TopicKind,
    Verdict,
};

const EVENT_QUEUE: usize = 4096;
const COMMAND_QUEUE: usize = 4096;
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(NetworkBehaviour)]
struct Behaviour {
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    gossip: gossipsub::Behaviour,
    identify: identify::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
}

/// The libp2p peer id of an ed25519 identity key.
pub(crate) fn peer_id(key: &PublicKey) -> Result<PeerId, P2pError> {
    let pk = libp2p::identity::ed25519::PublicKey::try_from_bytes(&key.0)
        .map_err(|e| P2pError::Setup(format!("identity key {key}: {e}")))?;
    Ok(libp2p::identity::PublicKey::from(pk).to_peer_id())
}

fn parse_addr(addr: &str) -> Result<Multiaddr, P2pError> {
    addr.parse()
        .map_err(|e: libp2p::multiaddr::Error| P2pError::BadAddress {
            addr: addr.to_string(),
            reason: e.to_string(),
        })
}

struct PeerState {
    address: String,
    outbound: bool,
    connections: u32,
    agent: Option<String>,
}

struct Bootstrap {
    addr: Multiaddr,
    next_dial: Instant,
    backoff: Duration,
    dialing: Option<ConnectionId>,
    peer: Option<PeerId>,
}

type SyncReply = oneshot::Sender<Result<(PeerRef, BlocksResponse), P2pError>>;

struct Service {
    swarm: Swarm<Behaviour>,
    topics: Vec<(TopicKind, gossipsub::TopicHash)>,
    events: mpsc::Sender<NetEvent>,
    provider: Arc<dyn BlockProvider>,
    seq: u64,
    peers: BTreeMap<PeerId, PeerState>,
    rejected: HashMap<PeerId, u32>,
    banned: HashMap<PeerId, Instant>,
    bootstrap: Vec<Bootstrap>,
    requests: HashMap<request_response::OutboundRequestId, SyncReply>,
    next_peer: usize,
    served_tx: mpsc::Sender<(
        request_response::ResponseChannel<BlocksResponse>,
        BlocksResponse,
    )>,
    listen_addrs: Vec<Multiaddr>,
    max_message_bytes: usize,
}

pub(crate) async fn start(
    config: P2pConfig,
    provider: Arc<dyn BlockProvider>,
) -> Result<(NetHandle, mpsc::Receiver<NetEvent>), P2pError> {
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes(config.key.seed())
        .map_err(|e| P2pError::Setup(e.to_string()))?;
    let local = keypair.public().to_peer_id();
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(sha256(&m.data).0.to_vec())
        })
        .max_transmit_size(config.max_message_bytes)
        .heartbeat_interval(Duration::from_millis(700))
        .build()
        .map_err(|e| P2pError::Setup(e.to_string()))?;
    let mut allow = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for k in &config.allowed {
        allow.allow_peer(peer_id(k)?);
    }
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .map_err(|e| P2pError::Setup(e.to_string()))?
        .with_behaviour(
            |key| -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
                Ok(Behaviour {
                    allow,
                    gossip: gossipsub::Behaviour::new(
                        gossipsub::MessageAuthenticity::Anonymous,
                        gossip_config,
                    )?,
                    identify: identify::Behaviour::new(
                        identify::Config::new("/auditchain/1".into(), key.public())
                            .with_agent_version(format!(
                                "auditchain/{}",
                                env!("CARGO_PKG_VERSION")
                            )),
                    ),
                    sync: request_response::Behaviour::with_codec(
                        SyncCodec,
                        [(PROTOCOL, request_response::ProtocolSupport::Full)],
                        request_response::Config::default().with_request_timeout(SYNC_TIMEOUT),
                    ),
                })
            },
        )
        .map_err(|e| P2pError::Setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    let mut topics = Vec::new();
    for kind in TopicKind::ALL {
        let topic = gossipsub::IdentTopic::new(kind.name(&config.chain_id));
        swarm
            .behaviour_mut()
            .gossip
            .subscribe(&topic)
            .map_err(|e| P2pError::Setup(e.to_string()))?;
        topics.push((kind, topic.hash()));
    }
    for a in &config.listen {
        let addr = parse_addr(a)?;
        swarm.listen_on(addr).map_err(|e| P2pError::Listen {
            addr: a.clone(),
            reason: e.to_string(),
        })?;
    }
    // wait until every listener is bound, so listen_addrs() is complete at once
    let mut listen_addrs = Vec::new();
    while listen_addrs.len() < config.listen.len() {
        match tokio::time::timeout(Duration::from_secs(10), swarm.select_next_some()).await {
            Ok(SwarmEvent::NewListenAddr { address, .. }) => listen_addrs.push(address),
            Ok(SwarmEvent::ListenerError { error, .. })
            | Ok(SwarmEvent::ListenerClosed {
                reason: Err(error), ..
            }) => {
                return Err(P2pError::Listen {
                    addr: config.listen.join(","),
                    reason: error.to_string(),
                });
            }
            Ok(_) => {}
            Err(_) => {
                return Err(P2pError::Listen {
                    addr: config.listen.join(","),
                    reason: "no listen address within 10 s".into(),
                });
            }
        }
    }
    let now = Instant::now();
    let bootstrap = config
        .bootstrap
        .iter()
        .map(|a| {
            Ok(Bootstrap {
                addr: parse_addr(a)?,
                next_dial: now,
                backoff: MIN_BACKOFF,
                dialing: None,
                peer: None,
            })
        })
        .collect::<Result<Vec<_>, P2pError>>()?;
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
    let (served_tx, served_rx) = mpsc::channel(64);
    let service = Service {
        swarm,
        topics,
        events,
        provider,
        seq: now_nanos(),
        peers: BTreeMap::new(),
        rejected: HashMap::new(),
        banned: HashMap::new(),
        bootstrap,
        requests: HashMap::new(),
        next_peer: 0,
        served_tx,
        listen_addrs,
        max_message_bytes: config.max_message_bytes,
    };
    tokio::spawn(service.run(rx, served_rx));
    tracing::info!(peer_id = %local, "p2p started");
    Ok((
        NetHandle {
            tx,
            peer_id: PeerRef(local),
        },
        events_rx,
    ))
}

/// A publisher sequence start that differs across restarts.
fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Service {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut served: mpsc::Receiver<(
            request_response::ResponseChannel<BlocksResponse>,
            BlocksResponse,
        )>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let done = loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm(ev),
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown(done)) => break Some(done),
                    None => break None,
                    Some(c) => self.on_command(c),
                },
                Some((channel, resp)) = served.recv() => {
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, resp);
                }
                _ = tick.tick() => self.on_tick(),
            }
        };
        drop(self);
        drop(served);
        tracing::info!("p2p stopped");
        if let Some(d) = done {
            let _ = d.send(());
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in expired {
            self.banned.remove(&p);
            self.rejected.remove(&p);
            self.swarm.behaviour_mut().allow.allow_peer(p);
            tracing::info!(peer = %p, "ban expired");
        }
        for i in 0..self.bootstrap.len() {
            let b = &self.bootstrap[i];
            let connected = b.peer.is_some_and(|p| self.peers.contains_key(&p));
            if connected || b.dialing.is_some() || b.next_dial > now {
                continue;
            }
            let opts = DialOpts::unknown_peer_id().address(b.addr.clone()).build();
            let id = opts.connection_id();
            let b = &mut self.bootstrap[i];
            b.next_dial = now + b.backoff;
            b.backoff = (b.backoff * 2).min(MAX_BACKOFF);
            match self.swarm.dial(opts) {
                Ok(()) => b.dialing = Some(id),
                Err(e) => tracing::debug!(addr = %b.addr, error = %e, "dial failed"),
            }
        }
    }

    fn penalise(&mut self, peer: PeerId, why: &str) {
        let n = self.rejected.entry(peer).or_default();
        *n += 1;
        tracing::warn!(%peer, rejected = *n, why, "rejected a message from peer");
        if *n >= BAN_THRESHOLD && !self.banned.contains_key(&peer) {
            tracing::warn!(%peer, secs = BAN_DURATION.as_secs(), "banning peer");
            self.banned.insert(peer, Instant::now() + BAN_DURATION);
            self.swarm.behaviour_mut().allow.disallow_peer(peer);
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish(message) => self.publish(message),
            Command::PublishRaw(kind, bytes) => {
                let topic = self
                    .topics
                    .iter()
                    .find(|(k, _)| k.short() == kind)
                    .map(|(_, t)| t.clone());
                if let Some(t) = topic
                    && let Err(e) = self.swarm.behaviour_mut().gossip.publish(t, bytes)
                {
                    tracing::debug!(error = %e, "raw publish");
                }
            }
            Command::Verdict(msg, verdict) => {
                let acceptance = match verdict {
                    Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                    Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                    Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                };
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(&msg.id, &msg.source, acceptance);
                if verdict == Verdict::Reject {
                    self.penalise(msg.source, "invalid content");
                }
            }
            Command::Request { req, reply } => {
                let peers: Vec<PeerId> = self.peers.keys().copied().collect();
                if peers.is_empty() {
                    let _ = reply.send(Err(P2pError::NoPeer("not connected".into())));
                    return;
                }
                let peer = peers[self.next_peer % peers.len()];
                self.next_peer = self.next_peer.wrapping_add(1);
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, req);
                self.requests.insert(id, reply);
            }
            Command::Peers(reply) => {
                let list = self
                    .peers
                    .iter()
                    .map(|(p, s)| PeerInfo {
                        peer_id: p.to_string(),
                        address: s.address.clone(),
                        outbound: s.outbound,
                        rejected_messages: self.rejected.get(p).copied().unwrap_or(0),
                        agent: s.agent.clone(),
                    })
                    .collect();
                let _ = reply.send(list);
            }
            Command::ListenAddrs(reply) => {
                let me = *self.swarm.local_peer_id();
                let list = self
                    .listen_addrs
                    .iter()
                    .map(|a| a.clone().with(Protocol::P2p(me)).to_string())
                    .collect();
                let _ = reply.send(list);
            }
            Command::Shutdown(_) => {}
            Command::Penalise(peer, why) => self.penalise(peer.0, &why),
            Command::SetAllowed(text, allowed, reply) => {
                let r = text
                    .parse::<PeerId>()
                    .map_err(|e| P2pError::BadAddress {
                        addr: text.clone(),
                        reason: e.to_string(),
                    })
                    .map(|peer| {
                        let allow = &mut self.swarm.behaviour_mut().allow;
                        if allowed {
                            allow.allow_peer(peer);
                        } else {
                            allow.disallow_peer(peer);
                        }
                    });
                let _ = reply.send(r);
            }
            Command::Dial(addr, reply) => {
                let r = parse_addr(&addr).and_then(|a| {
                    self.swarm.dial(a).map_err(|e| P2pError::Request {
                        peer: addr.clone(),
                        reason: e.to_string(),
                    })
                });
                let _ = reply.send(r);
            }
        }
    }

    fn publish(&mut self, message: GossipMessage) {
        let kind = message.topic();
        let Some((_, topic)) = self.topics.iter().find(|(k, _)| *k == kind).cloned() else {
            return;
        };
        self.seq = self.seq.wrapping_add(1);
        let bytes = match encode(&Envelope {
            seq: self.seq,
            message,
        }) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode gossip message");
                return;
            }
        };
        if bytes.len() > self.max_message_bytes {
            tracing::error!(
                bytes = bytes.len(),
                "gossip message over the size limit; not sent"
            );
            return;
        }
        if let Err(e) = self.swarm.behaviour_mut().gossip.publish(topic, bytes) {
            tracing::debug!(error = %e, ?kind, "gossip publish");
        }
    }

    fn on_swarm(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.agent = Some(info.agent_version);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync(ev),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                for b in &mut self.bootstrap {
                    if b.dialing == Some(connection_id) {
                        b.dialing = None;
                        b.peer = Some(peer_id);
                        b.backoff = MIN_BACKOFF;
                    }
                }
                let st = self.peers.entry(peer_id).or_insert_with(|| PeerState {
                    address: endpoint.get_remote_address().to_string(),
                    outbound: endpoint.is_dialer(),
                    connections: 0,
                    agent: None,
                });
                st.connections += 1;
                if st.connections == 1 {
                    tracing::info!(peer = %peer_id, addr = %st.address, "peer connected");
                    let _ = self
                        .events
                        .try_send(NetEvent::PeerConnected(PeerRef(peer_id)));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => {
                if let Some(st) = self.peers.get_mut(&peer_id) {
                    st.connections = st.connections.saturating_sub(1);
                    if st.connections == 0 {
                        self.peers.remove(&peer_id);
                        tracing::info!(peer = %peer_id, "peer disconnected");
                        let _ = self
                            .events
                            .try_send(NetEvent::PeerDisconnected(PeerRef(peer_id)));
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                for b in &mut self.bootstrap {
                    if b.dialing == Some(connection_id) {
                        b.dialing = None;
                    }
                }
                tracing::debug!(?peer_id, error = %error, "outgoing connection failed");
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                tracing::info!(from = %send_back_addr, error = %error, "incoming connection refused");
            }
            SwarmEvent::NewListenAddr { address, .. } if !self.listen_addrs.contains(&address) => {
                self.listen_addrs.push(address);
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, m: gossipsub::Message) {
        let kind = self
            .topics
            .iter()
            .find(|(_, t)| *t == m.topic)
            .map(|(k, _)| *k);
        let decoded = decode::<InboundEnvelope>(&m.data);
        let msg = MessageRef { id, source };
        match decoded {
            Ok(env) if Some(env.message.topic()) == kind => {
                let ev = NetEvent::Message {
                    msg: msg.clone(),
                    message: env.message,
                };
                if self.events.try_send(ev).is_err() {
                    // the node is overloaded: drop without judging the sender
                    self.on_command(Command::Verdict(msg, Verdict::Ignore));
                }
            }
            other => {
                let why = match other {
                    Ok(_) => "message on the wrong topic".to_string(),
                    Err(e) => format!("undecodable message: {e}"),
                };
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(
                        &msg.id,
                        &source,
                        gossipsub::MessageAcceptance::Reject,
                    );
                self.penalise(source, &why);
            }
        }
    }

    fn on_sync(&mut self, ev: request_response::Event<BlocksRequest, BlocksResponse>) {
        match ev {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let provider = Arc::clone(&self.provider);
                let served = self.served_tx.clone();
                tracing::debug!(%peer, from = request.from, to = request.to, "serving blocks");
                tokio::task::spawn_blocking(move || {
                    let resp = serve(&*provider, request);
                    let _ = served.blocking_send((channel, resp));
                });
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.requests.remove(&request_id) {
                    let _ = reply.send(Ok((PeerRef(peer), response)));
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.requests.remove(&request_id) {
                    let _ = reply.send(Err(P2pError::Request {
                        peer: peer.to_string(),
                        reason: error.to_string(),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, error = %error, "sync request from peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}

/// Answers a block request within the count and byte limits, ending the answer at the first
/// block that brings it to [`SYNC_RESPONSE_TARGET_BYTES`] and reading nothing past it. The
/// first block is always sent, however large (genesis `max_block_bytes` bounds it), so that a
/// block above the target cannot stall the asker. Adds the certificate of block `from − 1`.
fn serve(provider: &dyn BlockProvider, req: BlocksRequest) -> BlocksResponse {
    let head = provider.head();
    if req.from > req.to || req.from > head {
        return BlocksResponse {
            head,
            parent_certificate: None,
            blocks: Vec::new(),
        };
    }
    let to = req.to.min(head).min(req.from + MAX_SYNC_BLOCKS - 1);
    // read one block at a time, so nothing past the byte target is read from storage
    let mut blocks = Vec::new();
    let mut size = 0usize;
    for h in req.from..=to {
        let Some(b) = provider.blocks(h, h).pop() else {
            break;
        };
        size += encoded_len(&b).unwrap_or(usize::MAX / 2);
        if size > MAX_SYNC_RESPONSE_BYTES && !blocks.is_empty() {
            break;
        }
        blocks.push(b);
        if size >= SYNC_RESPONSE_TARGET_BYTES {
            break;
        }
    }
    let parent_certificate = match req.from {
        0 | 1 => None,
        from => provider.certificate(from - 1),
    };
    BlocksResponse {
        head,
        parent_certificate,
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{header, tx};
    use auditchain_primitives::Hash;
    use auditchain_primitives::Signature;
    use auditchain_primitives::tx::WireTx;
    use auditchain_primitives::vote::{CommitCertificate, WireCertifiedBlock};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Blocks of `txs` copies of one transaction; records the highest height read.
    struct Big {
        txs: usize,
        highest_read: AtomicU64,
    }

    impl Big {
        fn new(txs: usize) -> Big {
            Big {
                txs,
                highest_read: AtomicU64::new(0),
            }
        }
    }

    impl BlockProvider for Big {
        fn head(&self) -> u64 {
            100
        }
        fn blocks(&self, from: u64, to: u64) -> Vec<WireCertifiedBlock> {
            self.highest_read.fetch_max(to, Ordering::Relaxed);
            let tx = WireTx::from(tx(0));
            (from..=to)
                .map(|height| WireCertifiedBlock {
                    header: header(height),
                    seal: Signature([0; 64]),
                    txs: vec![tx.clone(); self.txs],
                    certificate: None,
                })
                .collect()
        }
        fn certificate(&self, height: u64) -> Option<CommitCertificate> {
            Some(cert_of(height))
        }
    }

    /// A certificate naming `height` (its contents are not checked here).
    fn cert_of(height: u64) -> CommitCertificate {
        CommitCertificate {
            height,
            round: 0,
            block: Hash([height as u8; 32]),
            signatures: Vec::new(),
        }
    }

    #[test]
    fn an_answer_ends_at_the_byte_target_and_reads_no_further() {
        let p = Big::new(4_000);
        let one = encoded_len(&p.blocks(1, 1)[0]).unwrap();
        assert!(one > 1 << 20 && one < SYNC_RESPONSE_TARGET_BYTES / 2);
        let resp = serve(&p, BlocksRequest { from: 5, to: 90 });
        let n = SYNC_RESPONSE_TARGET_BYTES.div_ceil(one);
        assert_eq!(resp.blocks.len(), n, "blocks of {one} bytes");
        assert_eq!(resp.blocks[0].header.height, 5);
        assert_eq!(resp.head, 100);
        assert_eq!(p.highest_read.load(Ordering::Relaxed), 5 + n as u64 - 1);
        // empty blocks never reach the byte target: the answer runs to the peer's head
        let small = Big::new(0);
        let resp = serve(&small, BlocksRequest { from: 1, to: 1_000 });
        assert_eq!(resp.blocks.len(), 100, "up to the head");
    }

    #[test]
    fn a_first_block_above_the_byte_target_is_sent_alone() {
        let p = Big::new(16_000);
        let one = encoded_len(&p.blocks(1, 1)[0]).unwrap();
        assert!(one > SYNC_RESPONSE_TARGET_BYTES && 2 * one < MAX_SYNC_RESPONSE_BYTES);
        let resp = serve(&p, BlocksRequest { from: 7, to: 90 });
        let heights: Vec<u64> = resp.blocks.iter().map(|b| b.header.height).collect();
        assert_eq!(heights, vec![7]);
    }

    #[test]
    fn an_answer_carries_the_certificate_of_the_block_before_it() {
        let p = Big::new(1);
        let resp = serve(&p, BlocksRequest { from: 7, to: 8 });
        assert_eq!(resp.parent_certificate, Some(cert_of(6)));
        assert_eq!(resp.blocks.len(), 2);
        // block 1's parent is genesis, which has no certificate
        let resp = serve(&p, BlocksRequest { from: 1, to: 1 });
        assert_eq!(resp.parent_certificate, None);
        // beyond the head: nothing at all
        let resp = serve(&p, BlocksRequest { from: 101, to: 120 });
        assert_eq!((resp.parent_certificate, resp.blocks.len()), (None, 0));
    }
}
