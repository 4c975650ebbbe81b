//! The chain actor: the only task that writes storage.
//!
//! It owns the mempool, the BFT consensus engine ([`Bft`]), the head and the history-tree
//! frontier. Other tasks reach it through a cloneable [`ChainHandle`] over a bounded channel;
//! queries carry a oneshot reply. It runs on its own thread with its own single-threaded
//! runtime, so block building and the flushed sled commit never stall RPC workers.
//!
//! Per height: the engine asks this node to build (its turn) → select from the mempool →
//! execute → append tx ids to a copy of the history frontier → seal → gossip the proposal; or a
//! proposal arrives from a peer and is checked in full ([`crate::verify::check_block`]) before the engine hears
//! of it. Votes go out and come in over gossip. When a quorum precommits a block the engine
//! **decides** it: the block and its commit certificate go to the writer thread (one atomic,
//! flushed batch), and only then are transactions removed from the mempool, `submitAndWait`
//! waiters released and the new (final) head broadcast. Nothing is written before it is final,
//! so a BFT chain never reverts.
//!
//! A node that falls behind (the engine sees messages of later heights, or a decided block it
//! never received) fetches certified blocks from peers ([`auditchain_p2p::BlocksRequest`]),
//! verifies each (certificate, header, signatures, roots, execution) and commits them in order.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditchain_consensus::RoundRobin;
use auditchain_consensus::bft::{Bft, BftInput, BftOutput, BftReject};
use auditchain_genesis::Genesis;
use auditchain_p2p::{
    GossipMessage, InboundMessage, MessageRef, NetHandle, P2pError, PeerRef, Proposal, Verdict,
};
use auditchain_primitives::merkle::Frontier;
use auditchain_primitives::vote::{CertifiedBlock, CommitCertificate, Equivocation, Vote};
use auditchain_primitives::{Block, Hash, Header, PublicKey, SecretKey, Transaction};
use auditchain_rpc::types::HeadView;
use auditchain_storage::{BlockCommit, ChainStore, StorageError};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

mod build;
mod core;
mod gossip_in;
mod open;
mod pow;
mod sync;

pub use open::{ChainStart, open_chain};

use crate::mempool::{AdmitError, Mempool};
use crate::recent::RecentTxs;
use crate::verify::CheckedBlock;

/// Capacity of the command channel (commands carry `Vec`s of transactions).
const COMMAND_QUEUE: usize = 1024;
/// Most proposals kept for a height this node cannot check yet.
const MAX_DEFERRED: usize = 64;
/// Most transactions in one gossip message.
const GOSSIP_TXS: usize = 4096;
/// A sync session whose last answer came longer ago than this is given up (and a new one may
/// start).
const SYNC_PATIENCE: Duration = Duration::from_secs(35);

/// Wall-clock ms since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Mempool counters, sync progress and the miner's state.
#[derive(Debug, Clone, Copy, Default)]
pub struct MempoolStats {
    /// Pending transactions.
    pub txs: usize,
    /// Pending bytes.
    pub bytes: usize,
    /// Highest head height a peer reported in a sync answer that verified (0 if none).
    pub best_peer_height: u64,
    /// Whether this node searches proof-of-work nonces now (false on other chains, for keys
    /// that are not miners, and while an operator has paused mining).
    pub mining: bool,
}

/// One validator's activity seen by this node since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignerMetrics {
    /// Final blocks it sealed.
    pub proposed: u64,
    /// Rounds it was the proposer of a height that was decided on a block of a later round.
    pub missed_turns: u64,
    /// Valid votes received from it (or cast, for this node's own key).
    pub votes: u64,
    /// Last valid vote or proposal from it, ms since the epoch.
    pub last_seen_ms: Option<u64>,
}

/// Where submitted transactions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// This node's RPC: admitted ones are gossiped to peers.
    Local,
    /// A peer's gossip: gossipsub forwards them after the verdict.
    Peer,
}

enum Command {
    Submit {
        txs: Vec<(Hash, Transaction)>,
        origin: Origin,
        reply: oneshot::Sender<Vec<Result<(), AdmitError>>>,
    },
    Watch {
        id: Hash,
        reply: oneshot::Sender<Option<u64>>,
    },
    Pending {
        id: Hash,
        reply: oneshot::Sender<Option<Transaction>>,
    },
    NextNonce {
        signer: PublicKey,
        reply: oneshot::Sender<u64>,
    },
    Stats {
        reply: oneshot::Sender<MempoolStats>,
    },
    Consensus {
        msg: MessageRef,
        message: InboundMessage,
    },
    SignerMetrics {
        reply: oneshot::Sender<Vec<(PublicKey, SignerMetrics)>>,
    },
    PeerConnected,
    /// An answer of a sync session.
    Synced(SyncedRange),
    /// The mining thread found a nonce for the template of `epoch` (proof of work).
    Mined {
        header: Header,
        epoch: u64,
    },
    /// Pause (`false`) or resume the nonce search of a proof-of-work miner; `Err` says why
    /// this node has no miner.
    SetMining {
        enabled: bool,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// A peer's answer to a block request, with its signatures checked off the chain actor.
pub(crate) struct SyncAnswer {
    peer: PeerRef,
    /// The answering peer's head height.
    head: u64,
    /// The peer's certificate of the block before the range (unchecked).
    parent_certificate: Option<CommitCertificate>,
    /// The answer's blocks, their transactions parsed and checked for canonical form.
    blocks: Vec<CertifiedBlock>,
    /// Per block of `blocks`: every transaction signature verified (ZIP-215). Empty when not
    /// checked in advance (proof of work); a `false` block is verified in full when applied.
    sigs_ok: Vec<bool>,
    /// Held until the answer is applied or dropped: bounds the answers a session fetches
    /// ahead of the chain actor.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// One range of a sync session (see [`Core::start_sync`]), in the session's order.
pub(crate) struct SyncedRange {
    /// The session that asked; answers of an ended session are dropped.
    session: u64,
    /// The height the request started at.
    from: u64,
    /// The checked answer, or why the request or the check failed.
    result: Result<SyncAnswer, P2pError>,
    /// Whether the session goes on to the next range (false: this is its last answer).
    more: bool,
}

/// The running sync session: one task asking peers for consecutive ranges.
struct SyncSession {
    id: u64,
    /// When it started or last answered.
    progress: Instant,
    task: tokio::task::JoinHandle<()>,
}

/// Why a request to the chain actor failed.
#[derive(Debug, thiserror::Error)]
#[error("chain actor stopped")]
pub struct ActorGone;

/// A cloneable handle to the chain actor.
#[derive(Clone)]
pub struct ChainHandle {
    tx: mpsc::Sender<Command>,
    recent: Arc<RecentTxs>,
}

impl ChainHandle {
    /// The transactions the actor admitted or committed recently (for skipping gossip).
    pub fn recent(&self) -> &RecentTxs {
        &self.recent
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ActorGone> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| ActorGone)?;
        rx.await.map_err(|_| ActorGone)
    }

    /// Offers signature-checked transactions to the mempool; one result per transaction.
    pub async fn submit(
        &self,
        txs: Vec<(Hash, Transaction)>,
        origin: Origin,
    ) -> Result<Vec<Result<(), AdmitError>>, ActorGone> {
        self.ask(|reply| Command::Submit { txs, origin, reply })
            .await
    }

    /// Resolves with the sequence number of `id` once it is committed (at once if it already
    /// is); `None` if it is neither pending nor committed. The inner receiver fails if the
    /// transaction is dropped from the mempool.
    pub async fn watch(&self, id: Hash) -> Result<oneshot::Receiver<Option<u64>>, ActorGone> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Watch { id, reply })
            .await
            .map_err(|_| ActorGone)?;
        Ok(rx)
    }

    /// A pending transaction by id.
    pub async fn pending(&self, id: Hash) -> Result<Option<Transaction>, ActorGone> {
        self.ask(|reply| Command::Pending { id, reply }).await
    }

    /// The next nonce a signer should use, counting its pending transactions.
    pub async fn next_nonce(&self, signer: PublicKey) -> Result<u64, ActorGone> {
        self.ask(|reply| Command::NextNonce { signer, reply }).await
    }

    /// Mempool counters.
    pub async fn stats(&self) -> Result<MempoolStats, ActorGone> {
        self.ask(|reply| Command::Stats { reply }).await
    }

    /// Hands a proposal or votes from gossip to the actor, which reports the verdict to the
    /// network itself.
    pub async fn consensus(
        &self,
        msg: MessageRef,
        message: InboundMessage,
    ) -> Result<(), ActorGone> {
        self.tx
            .send(Command::Consensus { msg, message })
            .await
            .map_err(|_| ActorGone)
    }

    /// Per-validator activity, in validator-set order.
    pub async fn signer_metrics(&self) -> Result<Vec<(PublicKey, SignerMetrics)>, ActorGone> {
        self.ask(|reply| Command::SignerMetrics { reply }).await
    }

    /// Pauses (`enabled = false`) or resumes this node's proof-of-work mining (an operator's
    /// switch, like Besu's and Geth's `miner_stop` / `miner_start`). Paused, the node still
    /// follows the chain: it checks, stores and reorganises to blocks from peers, and admits
    /// transactions, but searches no nonce. Mining starts enabled at every start. The inner
    /// `Err` says why the node has no miner (not a proof-of-work chain, or its key is not in
    /// `consensus.pow.miners`).
    pub async fn set_mining(&self, enabled: bool) -> Result<Result<(), String>, ActorGone> {
        self.ask(|reply| Command::SetMining { enabled, reply })
            .await
    }

    /// Tells the actor a peer connected (it then checks whether it is behind).
    pub async fn peer_connected(&self) -> Result<(), ActorGone> {
        self.tx
            .send(Command::PeerConnected)
            .await
            .map_err(|_| ActorGone)
    }
}

/// A block built here or received, checked against the head, waiting for a decision.
struct Candidate {
    block: Block,
    checked: CheckedBlock,
    /// The parent's certificate the header commits to.
    last_commit: Option<CommitCertificate>,
}

/// A final block handed to the writer thread.
struct CommitJob {
    block: Block,
    checked: CheckedBlock,
    certificate: CommitCertificate,
    /// The parent's canonical certificate (replaces the one stored with the parent).
    last_commit: Option<CommitCertificate>,
}

/// What the actor remembers of the block being written.
struct InFlight {
    started: Instant,
}

type CommitResult = (CommitJob, Result<(), StorageError>);

/// Everything the chain actor starts from.
pub struct ActorParts {
    /// Storage (the actor is its only writer).
    pub store: Arc<dyn ChainStore>,
    /// The chain's genesis.
    pub genesis: Arc<Genesis>,
    /// The verified head.
    pub start: ChainStart,
    /// This node's validator key (`None`: an observer).
    pub key: Option<SecretKey>,
    /// The network, if the node has peers.
    pub net: Option<NetHandle>,
    /// Receives each head after it is flushed (`chain_subscribeNewHeads`).
    pub heads: broadcast::Sender<HeadView>,
    /// Receives each newly finalized block (`chain_subscribeFinalized`): every head on a
    /// round-robin chain, the block `finality_depth` below the head on a proof-of-work chain.
    pub finalized: broadcast::Sender<HeadView>,
    /// Holds the durable head; readers never serve above it.
    pub durable: watch::Sender<Header>,
    /// Turns true to stop.
    pub shutdown: watch::Receiver<bool>,
    /// Observer identities from the node's config: they stay on the network allowlist whatever
    /// the validator set becomes.
    pub observers: Vec<PublicKey>,
}

/// What both engines' actors share: storage, the head, the mempool, waiters, subscribers, the
/// network and peer-sync bookkeeping (`core.rs`).
pub(super) struct Core {
    store: Arc<dyn ChainStore>,
    genesis: Arc<Genesis>,
    chain_id: Hash,
    /// This node's sealing key (validator or miner), if any.
    key: Option<SecretKey>,
    mempool: Mempool,
    head: Header,
    head_hash: Hash,
    frontier: Frontier,
    waiters: HashMap<Hash, Vec<oneshot::Sender<Option<u64>>>>,
    heads: broadcast::Sender<HeadView>,
    finalized: broadcast::Sender<HeadView>,
    /// Height of the last block announced as finalized.
    last_finalized: u64,
    durable: watch::Sender<Header>,
    net: Option<NetHandle>,
    myself: mpsc::WeakSender<Command>,
    /// The node's multi-thread runtime: work the actor starts in the background (sync
    /// requests) runs there, not on the actor's own single-thread runtime, which only polls
    /// it while the actor waits for its next command.
    runtime: tokio::runtime::Handle,
    /// The running sync session, if any.
    sync: Option<SyncSession>,
    /// Sessions started so far (the next one's id).
    sync_sessions: u64,
    /// Per-validator activity.
    metrics: HashMap<PublicKey, SignerMetrics>,
    /// Highest head height a peer reported in a sync answer that verified.
    best_peer_height: u64,
    /// Whether this node searches proof-of-work nonces now: a miner's key on a proof-of-work
    /// chain, not paused by its operator (see [`ChainHandle::set_mining`]).
    mining: bool,
    /// Transactions admitted to the mempool or committed in a block checked here.
    recent: Arc<RecentTxs>,
}

/// The round-robin BFT actor.
struct Actor {
    core: Core,
    engine: Bft,
    rules: RoundRobin,
    /// Engine outputs not yet acted on, in order.
    outbox: VecDeque<BftOutput>,
    /// The block being written by the writer thread, if any (at most one).
    in_flight: Option<InFlight>,
    jobs: std::sync::mpsc::Sender<CommitJob>,
    /// Blocks for the height being decided, by hash.
    candidates: HashMap<Hash, Candidate>,
    /// Proposals for the next height that arrived while the head block was being written.
    deferred: Vec<(MessageRef, Box<Proposal>)>,
    /// Sync answers that arrived while a block was being written, in order, with their
    /// session and start height.
    sync_stash: VecDeque<(u64, u64, SyncAnswer)>,
    /// This node's votes to gossip at the end of the current step.
    votes_out: Vec<Vote>,
    /// This validator's own votes at the height in progress, as saved to the vote log.
    vote_log: (u64, Vec<Vote>),
    /// Validators (in force or scheduled) that this actor has put on the network allowlist.
    allowed_validators: BTreeSet<PublicKey>,
    /// Observer identities from the node's config: allowed whatever the validator set.
    observers: BTreeSet<PublicKey>,
}

/// The height up to which blocks are final, given the head: the head itself on a round-robin
/// chain (only final blocks are written), `finality_depth` below it on a proof-of-work chain.
pub fn finalized_height(genesis: &Genesis, head: u64) -> u64 {
    match genesis.pow() {
        Some(p) => head.saturating_sub(p.finality_depth),
        None => head,
    }
}

/// Starts the chain actor on its own thread, with a writer thread that commits final blocks, so
/// the actor keeps admitting transactions while a block is flushed. Returns its handle and the
/// actor thread's join handle; it stops when `shutdown` turns true or every handle is dropped.
/// Must be called inside the node's tokio runtime. Errors: no runtime, or a thread could not
/// be started.
pub fn spawn(parts: ActorParts) -> std::io::Result<(ChainHandle, std::thread::JoinHandle<()>)> {
    let ActorParts {
        store,
        genesis,
        start,
        key,
        net,
        heads,
        finalized,
        durable,
        shutdown,
        observers,
    } = parts;
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let last_finalized = finalized_height(&genesis, start.head.height);
    let recent = Arc::new(RecentTxs::default());
    let core = Core {
        recent: Arc::clone(&recent),
        chain_id: genesis.hash(),
        mempool: Mempool::new(genesis.limits.clone()),
        head_hash: start.head.hash(),
        head: start.head,
        frontier: start.frontier,
        store,
        genesis,
        key,
        waiters: HashMap::new(),
        heads,
        last_finalized,
        finalized,
        durable,
        net,
        myself: tx.downgrade(),
        runtime: tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?,
        sync: None,
        sync_sessions: 0,
        metrics: HashMap::new(),
        best_peer_height: 0,
        mining: false,
    };
    if core.genesis.pow().is_some() {
        let join = pow::spawn(core, tx.clone(), rx, shutdown)?;
        return Ok((ChainHandle { tx, recent }, join));
    }
    let Some(rr) = core.genesis.round_robin().cloned() else {
        return Err(std::io::Error::other("genesis names no consensus engine"));
    };
    let (jobs, job_rx) = std::sync::mpsc::channel::<CommitJob>();
    let (done_tx, done_rx) = mpsc::channel::<CommitResult>(1);
    let writer_store = Arc::clone(&core.store);
    let writer = std::thread::Builder::new()
        .name("chain-writer".into())
        .spawn(move || {
            for job in job_rx {
                let r = writer_store.commit_block(BlockCommit {
                    block: &job.block,
                    hash: job.checked.hash,
                    tx_ids: &job.checked.ids,
                    history_nodes: &job.checked.nodes,
                    certificate: Some(&job.certificate),
                    parent_certificate: job.last_commit.as_ref(),
                    state_writes: &job.checked.executed.state_writes,
                    contract_events: &job.checked.executed.events_json,
                    set_change_witness: job.checked.executed.set_change_witness.as_ref(),
                });
                if r.is_err() {
                    // a failing disk: do not spin; the actor retries the same block
                    std::thread::sleep(Duration::from_millis(500));
                }
                if done_tx.blocking_send((job, r)).is_err() {
                    break;
                }
            }
        })?;
    let head = core.head.clone();
    let next_set = core
        .validators_at(head.height + 1)
        .map_err(std::io::Error::other)?;
    let mut engine = Bft::new(
        rr.timing(),
        next_set,
        core.chain_id,
        core.key.clone(),
        head.height,
        head.timestamp_ms,
        now_ms(),
    );
    // a validator restarted mid-height keeps its earlier votes (and its lock)
    let mut vote_log = (head.height + 1, Vec::new());
    match core.store.own_votes() {
        Ok(Some((h, votes))) if h == head.height + 1 => {
            tracing::info!(
                height = h,
                votes = votes.len(),
                "restored own votes from the vote log"
            );
            engine.restore_own_votes(&votes);
            vote_log = (h, votes);
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "vote log unreadable; starting without it"),
    }
    let mut actor = Actor {
        core,
        rules: RoundRobin::new(rr, None, 0, 0),
        engine,
        outbox: VecDeque::new(),
        in_flight: None,
        jobs,
        candidates: HashMap::new(),
        deferred: Vec::new(),
        sync_stash: VecDeque::new(),
        votes_out: Vec::new(),
        vote_log,
        allowed_validators: BTreeSet::new(),
        observers: observers.into_iter().collect(),
    };
    actor.refresh_validators();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let join = std::thread::Builder::new()
        .name("chain-actor".into())
        .spawn(move || {
            rt.block_on(actor.run(rx, done_rx, shutdown));
            // the actor dropped the job sender: the writer finishes its block and exits
            let _ = writer.join();
        })?;
    Ok((ChainHandle { tx, recent }, join))
}

impl Actor {
    /// Reads the validator set of the next height, and a scheduled change, from committed
    /// state and hands them to the header rules, the engine and the network allowlist. Called
    /// at start-up and after every committed block (two state reads); repeating it changes
    /// nothing.
    ///
    /// The allowlist follows the set: a key that joins the set in force or the scheduled one
    /// is allowed; a key that has left both, and is not a configured observer, is refused and
    /// disconnected (its votes and proposals stopped counting at the same height). Only these
    /// changes are sent, so an operator's own `admin_setPeerAllowed` choices for keys whose
    /// membership did not change are left as they are.
    fn refresh_validators(&mut self) {
        let next = self.core.head.height + 1;
        let set = match self.core.validators_at(next) {
            Ok(set) => set,
            Err(e) => {
                tracing::error!(error = %e, "keeping the validator set");
                return;
            }
        };
        if self.rules.validators() != set {
            tracing::info!(
                height = next,
                validators = set.len(),
                "validator set in force"
            );
        }
        let pending = auditchain_contracts::system::pending_validators(
            &crate::execute::StoreState(&*self.core.store),
        )
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "pending validator set unreadable");
            None
        });
        if let Some(net) = &self.core.net {
            let wanted: BTreeSet<PublicKey> = set
                .iter()
                .chain(pending.iter().flat_map(|p| &p.validators))
                .copied()
                .collect();
            // a command the network task had no room for is repeated at the next refresh
            for k in wanted
                .difference(&self.allowed_validators)
                .copied()
                .collect::<Vec<_>>()
            {
                if net.set_key_allowed(&k, true) {
                    self.allowed_validators.insert(k);
                }
            }
            for k in self
                .allowed_validators
                .difference(&wanted)
                .copied()
                .collect::<Vec<_>>()
            {
                let observer = self.observers.contains(&k);
                if observer || net.set_key_allowed(&k, false) {
                    if !observer {
                        tracing::info!(key = %k, "left the validator set: refused by the allowlist");
                    }
                    self.allowed_validators.remove(&k);
                }
            }
        }
        self.rules.set_validators(set.clone());
        self.engine.schedule_validators(next, set);
        if let Some(p) = pending {
            self.engine.schedule_validators(p.from_height, p.validators);
        }
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        mut done: mpsc::Receiver<CommitResult>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let now = now_ms();
            let wait = self
                .engine
                .next_deadline_ms()
                .map_or(1000, |d| d.saturating_sub(now).min(1000));
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some((job, r)) = done.recv() => self.on_written(job, r),
                cmd = rx.recv() => match cmd {
                    Some(c) => self.handle(c),
                    None => break,
                },
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            }
            if *shutdown.borrow() {
                break;
            }
            self.drive();
        }
        // let a block already handed to the writer finish and be published
        if self.in_flight.is_some()
            && let Some((job, r)) = done.recv().await
        {
            self.on_written(job, r);
        }
        tracing::info!(height = self.core.head.height, "chain actor stopped");
    }

    fn handle(&mut self, cmd: Command) {
        let Some(cmd) = self.core.handle_common(cmd) else {
            return;
        };
        match cmd {
            Command::Consensus { msg, message } => {
                let verdict = match message {
                    InboundMessage::Proposal(p) => match self.resolve_proposal(*p) {
                        Ok(p) => self.on_proposal(msg.clone(), Box::new(p)),
                        Err(e) => {
                            tracing::warn!(peer = %msg.peer(), error = %e, "proposal refused: a transaction does not parse");
                            Some(Verdict::Reject)
                        }
                    },
                    InboundMessage::Votes(votes) => Some(self.on_votes(votes)),
                    // transactions go through the mempool path; mined blocks are not ours
                    InboundMessage::Txs(_) => Some(Verdict::Ignore),
                    InboundMessage::Block(_) => Some(Verdict::Reject),
                };
                if let (Some(v), Some(net)) = (verdict, &self.core.net) {
                    net.verdict(msg, v);
                }
            }
            Command::PeerConnected => self.core.start_sync(self.core.head.height + 1),
            Command::Synced(range) => {
                if !self.core.sync_answer_is_current(&range) {
                    return;
                }
                match range.result {
                    Ok(answer) => {
                        if self.in_flight.is_some() {
                            self.sync_stash
                                .push_back((range.session, range.from, answer));
                        } else {
                            self.apply_synced(range.from, answer);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "sync request failed"),
                }
            }
            // mined blocks belong to proof-of-work chains
            _ => {}
        }
    }

    /// Feeds the engine; its outputs join the outbox. Errors: the engine refused the input.
    fn feed(&mut self, input: BftInput) -> Result<(), BftReject> {
        let out = self.engine.on_input(input, now_ms())?;
        self.outbox.extend(out);
        Ok(())
    }

    /// Acts on engine outputs in order. Building the next block, and committing a decided one,
    /// wait while a block is being written (both need the state after it).
    fn drive(&mut self) {
        let _ = self.feed(BftInput::Pending {
            txs: self.core.mempool.len(),
        });
        while let Some(front) = self.outbox.front() {
            let blocked = matches!(
                front,
                BftOutput::BuildBlock { .. } | BftOutput::Decide { .. }
            ) && self.in_flight.is_some();
            if blocked {
                break;
            }
            let Some(out) = self.outbox.pop_front() else {
                break;
            };
            self.act(out);
        }
        // without a network the votes go nowhere: nothing to log or send
        if !self.votes_out.is_empty() && self.core.net.is_none() {
            self.votes_out.clear();
        }
        if !self.votes_out.is_empty() {
            let votes = std::mem::take(&mut self.votes_out);
            // the vote log first: never send a vote a restart could forget (it holds the
            // votes of the highest height voted at)
            let mut dirty = false;
            for v in &votes {
                if v.body.height > self.vote_log.0 {
                    self.vote_log = (v.body.height, Vec::new());
                }
                if v.body.height == self.vote_log.0 && !self.vote_log.1.contains(v) {
                    self.vote_log.1.push(*v);
                    dirty = true;
                }
            }
            if dirty
                && let Err(e) = self
                    .core
                    .store
                    .save_own_votes(self.vote_log.0, &self.vote_log.1)
            {
                tracing::error!(error = %e, "cannot write the vote log; votes not sent");
                return;
            }
            if let Some(net) = &self.core.net {
                for v in &votes {
                    tracing::trace!(height = v.body.height, round = v.body.round, kind = ?v.body.kind, "vote sent");
                }
                net.publish(GossipMessage::Votes(votes));
            }
        }
    }

    fn act(&mut self, out: BftOutput) {
        match out {
            BftOutput::BuildBlock {
                height,
                round,
                timestamp_ms,
            } => {
                if height != self.core.head.height + 1 {
                    return;
                }
                match self.build(height, round, timestamp_ms) {
                    Ok(hash) => {
                        let _ = self.feed(BftInput::Built {
                            height,
                            round,
                            block: hash,
                            timestamp_ms,
                        });
                    }
                    Err(e) => {
                        tracing::error!(height, error = %format!("{e:#}"), "building a block failed")
                    }
                }
            }
            BftOutput::Propose {
                height,
                round,
                block,
                valid_round,
            } => {
                if let (Some(c), Some(net)) = (self.candidates.get(&block), &self.core.net) {
                    tracing::debug!(height, round, %block, "proposing");
                    net.publish(GossipMessage::Proposal(Box::new(Proposal {
                        round,
                        valid_round,
                        block: c.block.clone(),
                        last_commit: c.last_commit.clone(),
                    })));
                }
            }
            BftOutput::Vote(v) => {
                self.core.saw(v.body.validator, true);
                self.votes_out.push(v);
            }
            BftOutput::Decide { certificate } => match self.candidates.remove(&certificate.block) {
                Some(c) if c.block.header.height == self.core.head.height + 1 => {
                    self.candidates.clear();
                    self.deferred.clear();
                    if self
                        .jobs
                        .send(CommitJob {
                            block: c.block,
                            checked: c.checked,
                            certificate,
                            last_commit: c.last_commit,
                        })
                        .is_ok()
                    {
                        self.in_flight = Some(InFlight {
                            started: Instant::now(),
                        });
                    } else {
                        tracing::error!("writer thread stopped");
                    }
                }
                _ => {
                    tracing::warn!(
                        height = certificate.height,
                        block = %certificate.block,
                        "decided a block this node does not hold; syncing"
                    );
                    self.core.start_sync(self.core.head.height + 1);
                }
            },
            BftOutput::Equivocation { first, second } => {
                let ev = Equivocation { first, second };
                tracing::warn!(
                    validator = %first.body.validator,
                    height = first.body.height,
                    round = first.body.round,
                    "equivocation: two different votes for one height, round and step"
                );
                if let Err(e) = self.core.store.record_equivocation(&ev) {
                    tracing::error!(error = %e, "storing equivocation evidence failed");
                }
            }
            BftOutput::Behind { height } => {
                tracing::info!(
                    seen = height,
                    head = self.core.head.height,
                    "behind peers; syncing"
                );
                self.core.start_sync(self.core.head.height + 1);
            }
        }
    }

    /// The writer finished a block: on success it is durable, so publish it.
    fn on_written(&mut self, job: CommitJob, result: Result<(), StorageError>) {
        let Some(flight) = self.in_flight.take() else {
            return;
        };
        let height = job.block.header.height;
        if let Err(e) = result {
            tracing::error!(height, error = %e, "committing a final block failed; retrying");
            if self.jobs.send(job).is_ok() {
                self.in_flight = Some(flight);
            }
            return;
        }
        let txs = job.checked.ids.len();
        let hash = job.checked.hash;
        if self.core.net.is_some() {
            self.core.recent.insert(&job.block.txs);
        }
        self.core.published(job.block.header, job.checked);
        self.refresh_validators();
        tracing::info!(
            height,
            txs,
            %hash,
            total_ms = flight.started.elapsed().as_millis() as u64,
            "committed final block"
        );
        while let Some((session, from, answer)) = self.sync_stash.pop_front() {
            // applying an earlier one may have started a new session: the rest are stale
            if session == self.core.sync_sessions {
                self.apply_synced(from, answer);
            }
        }
        for (msg, p) in std::mem::take(&mut self.deferred) {
            if let (Some(v), Some(net)) = (self.on_proposal(msg.clone(), p), &self.core.net) {
                net.verdict(msg, v);
            }
        }
    }
}
