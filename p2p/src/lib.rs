//! auditchain networking over libp2p: the only crate that names libp2p types.
//!
//! - **Transport**: TCP + Noise (XX, ed25519 identities) + Yamux.
//! - **Permissioned**: a node's identity is an ed25519 key; only peers whose key is on the
//!   allowlist (the node's validator set plus observers from its config; the node keeps it in
//!   step with governance through [`NetHandle::set_key_allowed`]) may hold a connection:
//!   others are refused when the connection is established (libp2p's `allow_block_list`).
//! - **Gossip** (gossipsub, unsigned, content-addressed message ids): three topics per chain,
//!   derived from the genesis hash — `auditchain/<chain id>/txs/1`, `…/blocks/1`, `…/votes/1`.
//!   Every message is validated before it is forwarded (`validate_messages()`): one that does not
//!   decode, or is on the wrong topic, is rejected here; the rest go to the node, which answers
//!   [`Verdict::Accept`], [`Verdict::Reject`] or [`Verdict::Ignore`] through
//!   [`NetHandle::verdict`] (Lighthouse's pattern). A peer collecting [`BAN_THRESHOLD`] rejections
//!   is disconnected and refused for [`BAN_DURATION`].
//! - **Block sync** (request-response `/auditchain/sync/2`): [`BlocksRequest`] for a height range,
//!   answered from the node's [`BlockProvider`] with at most [`MAX_SYNC_BLOCKS`] certified blocks
//!   and [`MAX_SYNC_RESPONSE_BYTES`], ending at the block that reaches
//!   [`SYNC_RESPONSE_TARGET_BYTES`], plus the certificate of the block before the range.
//! - **Identify**, and redial of bootstrap addresses with exponential backoff (1 s doubling to
//!   10 s).
//!
//! Wire messages are encoded with the canonical codec (bincode, trailing bytes rejected). Each
//! gossip message carries the publisher's sequence number so that a deliberate re-broadcast
//! (votes re-sent after a partition) is not suppressed as a duplicate.

use std::sync::Arc;
use std::time::Duration;

use auditchain_primitives::tx::WireTx;
use auditchain_primitives::vote::{CommitCertificate, Vote, WireCertifiedBlock};
use auditchain_primitives::{Block, Hash, PublicKey, SecretKey, Transaction};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

mod service;
mod sync_codec;

/// Most bytes of one gossip message (after encoding): 20 MiB, above the largest block (16 MiB
/// of transactions by default) plus its framing.
pub const MAX_GOSSIP_BYTES: usize = 20 << 20;

/// Most blocks in one sync response.
pub const MAX_SYNC_BLOCKS: u64 = 256;

/// Most bytes in one sync response (the response is cut at a block boundary below it).
pub const MAX_SYNC_RESPONSE_BYTES: usize = 32 << 20;

/// A sync response stops growing once it holds this many bytes (4 MiB, about 10,000 events):
/// small answers let the asking node check one range while the next is read, sent and
/// decoded, instead of waiting for one 32 MiB answer at a time.
pub const SYNC_RESPONSE_TARGET_BYTES: usize = 4 << 20;

/// Rejected messages after which a peer is disconnected and banned.
pub const BAN_THRESHOLD: u32 = 10;

/// How long a banned peer is refused.
pub const BAN_DURATION: Duration = Duration::from_secs(60);

/// A network failure.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// A multiaddress did not parse.
    #[error("bad multiaddress {addr}: {reason}")]
    BadAddress {
        /// The text given.
        addr: String,
        /// Why it did not parse.
        reason: String,
    },
    /// Listening failed (port taken, bad address).
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// The error.
        reason: String,
    },
    /// Building the libp2p stack failed.
    #[error("libp2p setup: {0}")]
    Setup(String),
    /// No connected peer could answer.
    #[error("no peer available: {0}")]
    NoPeer(String),
    /// A request failed (timeout, connection closed, bad response).
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer asked.
        peer: String,
        /// What went wrong.
        reason: String,
    },
    /// The network task stopped.
    #[error("network task stopped")]
    Stopped,
}

/// Network configuration of one node.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// The node's identity key (its peer id is derived from the public key).
    pub key: SecretKey,
    /// Multiaddresses to listen on, e.g. `/ip4/127.0.0.1/tcp/0`.
    pub listen: Vec<String>,
    /// Peers to dial and keep dialing, e.g. `/ip4/127.0.0.1/tcp/30333/p2p/12D3…`.
    pub bootstrap: Vec<String>,
    /// Identity keys allowed to connect (the validator set plus observers).
    pub allowed: Vec<PublicKey>,
    /// The chain id (genesis hash): topic names derive from it.
    pub chain_id: Hash,
    /// Largest gossip message sent or accepted, bytes ([`MAX_GOSSIP_BYTES`] unless a test
    /// needs a peer that breaks the limit).
    pub max_message_bytes: usize,
}

/// A gossiped consensus proposal: a block offered for `height`/`round`. `valid_round` is set
/// when the round's proposer re-proposes a block that already gathered a polka in that round
/// (Tendermint); the block's own seal and header round are then the original proposer's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The round in which the block is proposed.
    pub round: u32,
    /// The polka round justifying a re-proposal.
    pub valid_round: Option<u32>,
    /// The block.
    pub block: Block,
    /// The parent's commit certificate, committed to by the header's `last_commit_hash`
    /// (`None` at height 1).
    pub last_commit: Option<CommitCertificate>,
}

/// What travels over gossip; each kind has its own topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GossipMessage {
    /// Signed transactions (topic `txs`).
    Txs(Vec<Transaction>),
    /// A block proposal (topic `blocks`).
    Proposal(Box<Proposal>),
    /// Signed votes (topic `votes`).
    Votes(Vec<Vote>),
    /// A mined proof-of-work block (topic `blocks`).
    Block(Box<Block>),
}

impl GossipMessage {
    fn topic(&self) -> TopicKind {
        match self {
            GossipMessage::Txs(_) => TopicKind::Txs,
            GossipMessage::Proposal(_) => TopicKind::Blocks,
            GossipMessage::Votes(_) => TopicKind::Votes,
            GossipMessage::Block(_) => TopicKind::Blocks,
        }
    }
}

/// A [`GossipMessage`] as received: its transactions (in a batch or inside a proposal) still
/// in wire form, so that the swarm task never parses transaction bodies. The node parses them
/// where it chooses: a batch at admission priority, a proposal's reusing the transactions it
/// already admitted. Decodes from exactly the bytes of the [`GossipMessage`] (same variants in
/// the same order, same field layout; a [`Transaction`] encodes as its [`WireTx`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum InboundMessage {
    /// Transactions, unparsed (topic `txs`).
    Txs(Vec<WireTx>),
    /// A block proposal with unparsed transactions (topic `blocks`).
    Proposal(Box<WireProposal>),
    /// Signed votes (topic `votes`).
    Votes(Vec<Vote>),
    /// A mined proof-of-work block (topic `blocks`).
    Block(Box<Block>),
}

/// A [`Proposal`] whose block's transactions are unparsed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireProposal {
    /// As [`Proposal::round`].
    pub round: u32,
    /// As [`Proposal::valid_round`].
    pub valid_round: Option<u32>,
    /// The block.
    pub block: WireBlock,
    /// As [`Proposal::last_commit`].
    pub last_commit: Option<CommitCertificate>,
}

/// A [`Block`] whose transactions are unparsed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireBlock {
    /// The header.
    pub header: auditchain_primitives::Header,
    /// The proposer's seal.
    pub seal: auditchain_primitives::Signature,
    /// The transactions in wire form.
    pub txs: Vec<WireTx>,
}

impl From<GossipMessage> for InboundMessage {
    /// What a peer receives when `m` is published (as a decode of its bytes would give).
    fn from(m: GossipMessage) -> Self {
        let wire = |txs: Vec<Transaction>| txs.into_iter().map(WireTx::from).collect();
        match m {
            GossipMessage::Txs(txs) => InboundMessage::Txs(wire(txs)),
            GossipMessage::Proposal(p) => {
                let p = *p;
                InboundMessage::Proposal(Box::new(WireProposal {
                    round: p.round,
                    valid_round: p.valid_round,
                    block: WireBlock {
                        header: p.block.header,
                        seal: p.block.seal,
                        txs: wire(p.block.txs),
                    },
                    last_commit: p.last_commit,
                }))
            }
            GossipMessage::Votes(v) => InboundMessage::Votes(v),
            GossipMessage::Block(b) => InboundMessage::Block(b),
        }
    }
}

impl InboundMessage {
    fn topic(&self) -> TopicKind {
        match self {
            InboundMessage::Txs(_) => TopicKind::Txs,
            InboundMessage::Proposal(_) => TopicKind::Blocks,
            InboundMessage::Votes(_) => TopicKind::Votes,
            InboundMessage::Block(_) => TopicKind::Blocks,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopicKind {
    Txs,
    Blocks,
    Votes,
}

impl TopicKind {
    const ALL: [TopicKind; 3] = [TopicKind::Txs, TopicKind::Blocks, TopicKind::Votes];

    fn short(self) -> &'static str {
        match self {
            TopicKind::Txs => "txs",
            TopicKind::Blocks => "blocks",
            TopicKind::Votes => "votes",
        }
    }

    fn name(self, chain_id: &Hash) -> String {
        format!("auditchain/{}/{}/1", chain_id.to_hex(), self.short())
    }
}

/// The gossip envelope: the publisher's sequence number makes each publication distinct.
#[derive(Debug, Clone, Serialize)]
struct Envelope {
    seq: u64,
    message: GossipMessage,
}

/// An [`Envelope`] as received.
#[derive(Debug, Deserialize)]
struct InboundEnvelope {
    _seq: u64,
    message: InboundMessage,
}

/// The node's judgement of a gossip message (gossipsub's message acceptance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it to other peers.
    Accept,
    /// Invalid: drop it and penalise the peer that sent it.
    Reject,
    /// Not useful (stale, duplicate, cannot judge now): drop it without penalty.
    Ignore,
}

/// A peer's identity, printable as its libp2p peer id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerRef(libp2p::PeerId);

impl std::fmt::Display for PeerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Identifies a received gossip message for [`NetHandle::verdict`].
#[derive(Debug, Clone)]
pub struct MessageRef {
    id: libp2p::gossipsub::MessageId,
    source: libp2p::PeerId,
}

impl MessageRef {
    /// The peer that forwarded the message.
    pub fn peer(&self) -> PeerRef {
        PeerRef(self.source)
    }
}

/// A block-range request: heights `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocksRequest {
    /// First height.
    pub from: u64,
    /// Last height (inclusive).
    pub to: u64,
}

/// The answer to a [`BlocksRequest`]: consecutive certified blocks from `from`, possibly fewer
/// than asked (limits, or the peer's head is lower), the peer's head height, and the peer's
/// certificate of block `from − 1`. The blocks' transactions are in wire form, not yet parsed:
/// the asking node parses and checks them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlocksResponse {
    /// The answering node's head height.
    pub head: u64,
    /// The answering node's commit certificate of block `from − 1` (`None` for genesis, on a
    /// proof-of-work chain, or if it does not have it). Canonical when the answer holds block
    /// `from`, whose `last_commit_hash` names it: the asker, whose head is usually `from − 1`,
    /// checks that link and stores it without receiving block `from − 1` again.
    pub parent_certificate: Option<CommitCertificate>,
    /// The blocks, ascending.
    pub blocks: Vec<WireCertifiedBlock>,
}

/// Serves block sync requests from the node's storage.
pub trait BlockProvider: Send + Sync + 'static {
    /// The final head height.
    fn head(&self) -> u64;
    /// Certified blocks `from..=to` in wire form (consecutive from `from`; fewer if not
    /// available).
    fn blocks(&self, from: u64, to: u64) -> Vec<WireCertifiedBlock>;
    /// The stored commit certificate of block `height` (`None` if there is none).
    fn certificate(&self, height: u64) -> Option<CommitCertificate>;
}

/// What the network tells the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossip message that decoded on its topic; answer with [`NetHandle::verdict`].
    Message {
        /// Reference for the verdict.
        msg: MessageRef,
        /// The message, transactions unparsed.
        message: InboundMessage,
    },
    /// A connection to an allowed peer opened (first connection to it).
    PeerConnected(PeerRef),
    /// The last connection to a peer closed.
    PeerDisconnected(PeerRef),
}

/// A connected peer, for `node_peers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// libp2p peer id.
    pub peer_id: String,
    /// Remote address of its first connection.
    pub address: String,
    /// Whether this node dialed it.
    pub outbound: bool,
    /// Messages of it rejected so far.
    pub rejected_messages: u32,
    /// Client version from identify, once known.
    pub agent: Option<String>,
}

pub(crate) enum Command {
    Publish(GossipMessage),
    PublishRaw(&'static str, Vec<u8>),
    Verdict(MessageRef, Verdict),
    Request {
        req: BlocksRequest,
        reply: oneshot::Sender<Result<(PeerRef, BlocksResponse), P2pError>>,
    },
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    ListenAddrs(oneshot::Sender<Vec<String>>),
    Dial(String, oneshot::Sender<Result<(), P2pError>>),
    Penalise(PeerRef, String),
    SetAllowed(String, bool, oneshot::Sender<Result<(), P2pError>>),
    Shutdown(oneshot::Sender<()>),
}

/// A cloneable handle to the network task; the task stops when every handle is dropped.
#[derive(Clone)]
pub struct NetHandle {
    tx: mpsc::Sender<Command>,
    peer_id: PeerRef,
}

impl NetHandle {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerRef {
        self.peer_id
    }

    /// Publishes a message on its topic. Best effort: with no subscribed peer it is dropped
    /// (logged); if the command queue is full it is dropped and `false` returned.
    pub fn publish(&self, message: GossipMessage) -> bool {
        self.tx.try_send(Command::Publish(message)).is_ok()
    }

    /// Publishes raw bytes on topic `kind` (`"txs"`, `"blocks"` or `"votes"`), bypassing the
    /// encoder: for fault-injection tests of peers' validation only.
    #[doc(hidden)]
    pub fn publish_raw(&self, kind: &'static str, bytes: Vec<u8>) -> bool {
        self.tx.try_send(Command::PublishRaw(kind, bytes)).is_ok()
    }

    /// Reports the node's verdict on a received message (once per message).
    pub fn verdict(&self, msg: MessageRef, verdict: Verdict) {
        if self.tx.try_send(Command::Verdict(msg, verdict)).is_err() {
            tracing::warn!("network command queue full: verdict dropped");
        }
    }

    /// Asks a connected peer (the next in turn) for blocks. Errors: [`P2pError`].
    pub async fn request_blocks(
        &self,
        req: BlocksRequest,
    ) -> Result<(PeerRef, BlocksResponse), P2pError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Request { req, reply })
            .await
            .map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)?
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, P2pError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Peers(reply))
            .await
            .map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)
    }

    /// The addresses this node listens on, each ending in `/p2p/<peer id>`.
    pub async fn listen_addrs(&self) -> Result<Vec<String>, P2pError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::ListenAddrs(reply))
            .await
            .map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)
    }

    /// Counts misbehaviour outside gossip against a peer (e.g. a sync response whose blocks do
    /// not verify); like a rejected message, it leads to a ban at [`BAN_THRESHOLD`].
    pub fn penalise(&self, peer: PeerRef, why: impl Into<String>) {
        let _ = self.tx.try_send(Command::Penalise(peer, why.into()));
    }

    /// Allows or refuses a peer by peer id (text) at run time: refusing closes its connections
    /// and keeps it out until allowed again (operators' peer management; partition tests).
    /// Errors: a peer id that does not parse.
    pub async fn set_allowed(&self, peer_id: &str, allowed: bool) -> Result<(), P2pError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::SetAllowed(peer_id.to_string(), allowed, reply))
            .await
            .map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)?
    }

    /// Allows (`true`) or refuses (`false`) the node whose identity key is `key`: a validator
    /// added or removed by governance. Refusing closes its connections. Idempotent, and it
    /// never waits: returns `false` if the network task's queue was full (or the task has
    /// stopped) and nothing was queued, so the caller can repeat it later.
    pub fn set_key_allowed(&self, key: &PublicKey, allowed: bool) -> bool {
        let Ok(peer) = service::peer_id(key) else {
            return false;
        };
        let (reply, _) = oneshot::channel();
        self.tx
            .try_send(Command::SetAllowed(peer.to_string(), allowed, reply))
            .is_ok()
    }

    /// Stops the network task and waits until it has released everything it held (the
    /// swarm, its listeners and connections, the block provider); the event stream ends.
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(done)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Dials a multiaddress once (no redial). Errors: a bad address, or the dial could not start.
    pub async fn dial(&self, addr: &str) -> Result<(), P2pError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Dial(addr.to_string(), reply))
            .await
            .map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)?
    }
}

/// The libp2p peer id of an identity key, as text (`12D3KooW…`).
pub fn peer_id_of(key: &PublicKey) -> String {
    service::peer_id(key).map_or_else(|_| "invalid-key".into(), |p| p.to_string())
}

/// Starts the network task on the current tokio runtime: listens, dials the bootstrap peers,
/// subscribes to the chain's topics. Returns its handle and the event stream (bounded; if the
/// node stops reading, gossip is not acknowledged and peers time the messages out).
/// Errors: bad addresses, a port in use, libp2p setup.
pub async fn start(
    config: P2pConfig,
    provider: Arc<dyn BlockProvider>,
) -> Result<(NetHandle, mpsc::Receiver<NetEvent>), P2pError> {
    service::start(config, provider).await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use auditchain_primitives::block::{ConsensusFields, HEADER_VERSION};
    use auditchain_primitives::codec::{decode, encode};
    use auditchain_primitives::tx::{Payload, TxBody};
    use auditchain_primitives::vote::{VoteBody, VoteKind};
    use auditchain_primitives::{Header, Signature, sha256};

    /// A record with `nonce`, signed by a fixed key.
    pub(crate) fn tx(nonce: u64) -> Transaction {
        let key = SecretKey::from_seed(&[5; 32]);
        let body = TxBody {
            chain_id: sha256(b"c"),
            signer: key.public_key(),
            nonce,
            timestamp_ms: 1_700_000_000_000,
            payload: Payload::RecordEvent {
                event_type: "t".into(),
                entity_id: "e".into(),
                data: None,
                data_hash: sha256(b"d"),
            },
        };
        Transaction::sign(body, &key).unwrap()
    }

    /// A round-robin header at `height` (round 2) with arbitrary roots.
    pub(crate) fn header(height: u64) -> Header {
        Header {
            version: HEADER_VERSION,
            height,
            parent_hash: sha256(b"p"),
            timestamp_ms: 9,
            proposer: SecretKey::from_seed(&[7; 32]).public_key(),
            tx_root: sha256(b"t"),
            tx_count: 2,
            history_root: sha256(b"h"),
            history_size: 5,
            state_root: sha256(b"s"),
            last_commit_hash: Hash::ZERO,
            consensus: ConsensusFields::RoundRobin { round: 2 },
        }
    }

    fn messages() -> Vec<GossipMessage> {
        let header = header(3);
        let key = SecretKey::from_seed(&[6; 32]);
        let vote = Vote::sign(
            &sha256(b"c"),
            VoteBody {
                kind: VoteKind::Precommit,
                height: 3,
                round: 1,
                block: Some(sha256(b"b")),
                validator: key.public_key(),
            },
            &key,
        );
        let block = Block {
            header,
            seal: Signature([3; 64]),
            txs: vec![tx(0), tx(1)],
        };
        vec![
            GossipMessage::Txs(vec![tx(0), tx(1), tx(2)]),
            GossipMessage::Proposal(Box::new(Proposal {
                round: 2,
                valid_round: Some(1),
                block: block.clone(),
                last_commit: None,
            })),
            GossipMessage::Votes(vec![vote]),
            GossipMessage::Block(Box::new(block)),
        ]
    }

    /// Receivers decode what publishers encode: every kind of message, its transactions left
    /// unparsed, field for field.
    #[test]
    fn inbound_decoding_reads_the_published_bytes() {
        for m in messages() {
            let bytes = encode(&Envelope {
                seq: 7,
                message: m.clone(),
            })
            .unwrap();
            let got: InboundEnvelope = decode(&bytes).unwrap();
            assert_eq!(got.message.topic(), m.topic());
            assert_eq!(got.message, InboundMessage::from(m));
        }
    }

    /// A transaction body that would not parse still decodes (the node judges it), and the
    /// wire form keeps its bytes exactly.
    #[test]
    fn unparsable_transactions_reach_the_node_unchanged() {
        let m = GossipMessage::Txs(vec![tx(0)]);
        let mut bytes = encode(&Envelope { seq: 1, message: m }).unwrap();
        let at = bytes
            .windows(12)
            .position(|w| w == b"record_event")
            .unwrap();
        bytes[at + 11] = b'T';
        let got: InboundEnvelope = decode(&bytes).unwrap();
        let InboundMessage::Txs(wire) = got.message else {
            panic!("not transactions")
        };
        assert!(wire[0].body.contains("record_evenT"));
        assert!(Transaction::try_from(wire[0].clone()).is_err());
    }
}
