//! The chain actor: the only task that writes storage.
//!
//! It owns the mempool, the consensus engine, the head and the history-tree frontier. Other tasks
//! reach it through a cloneable [`ChainHandle`] over a bounded channel; queries carry a oneshot
//! reply. It runs on its own thread with its own single-threaded runtime, so block building and
//! the flushed sled commit never stall RPC workers.
//!
//! Per block: select from the mempool → execute (rules and state root) → append tx ids to the
//! history frontier → build and seal the header → one atomic, flushed store commit → only then
//! remove from the mempool, wake `submitAndWait` waiters and broadcast the new head.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use auditchain_consensus::{Engine, Input, Output, RoundRobin};
use auditchain_genesis::Genesis;
use auditchain_primitives::block::{ConsensusFields, HEADER_VERSION, tx_root};
use auditchain_primitives::merkle::{self, Frontier, MerkleError, TreeSource};
use auditchain_primitives::{Block, Hash, Header, PublicKey, SecretKey, Transaction};
use auditchain_rpc::types::HeadView;
use auditchain_storage::{BlockCommit, ChainStore};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::execute::{ExecError, execute};
use crate::mempool::{AdmitError, Mempool};

/// Capacity of the command channel (commands carry `Vec`s of transactions).
const COMMAND_QUEUE: usize = 1024;

/// Wall-clock ms since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The stored history tree as a Merkle [`TreeSource`].
pub struct HistorySource<'a>(pub &'a dyn ChainStore);

impl TreeSource for HistorySource<'_> {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        self.0
            .history_node(level, index)
            .map_err(|e| MerkleError::Source(e.to_string()))?
            .ok_or_else(|| MerkleError::Source(format!("history node ({level}, {index}) missing")))
    }
}

/// Mempool counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct MempoolStats {
    /// Pending transactions.
    pub txs: usize,
    /// Pending bytes.
    pub bytes: usize,
}

enum Command {
    Submit {
        txs: Vec<(Hash, Transaction)>,
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
}

/// Why a request to the chain actor failed.
#[derive(Debug, thiserror::Error)]
#[error("chain actor stopped")]
pub struct ActorGone;

/// A cloneable handle to the chain actor.
#[derive(Clone)]
pub struct ChainHandle {
    tx: mpsc::Sender<Command>,
}

impl ChainHandle {
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
    ) -> Result<Vec<Result<(), AdmitError>>, ActorGone> {
        self.ask(|reply| Command::Submit { txs, reply }).await
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
}

/// Verified starting point of the chain read from storage.
pub struct ChainStart {
    /// The head header.
    pub head: Header,
    /// The history frontier at the head.
    pub frontier: Frontier,
}

/// Binds the store to the genesis (refusing another chain's data dir), then re-verifies the
/// stored head: hash index, tx root, history root against stored nodes, seal and proposer.
/// Errors: a message naming what failed.
pub fn open_chain(store: &dyn ChainStore, genesis: &Genesis) -> anyhow::Result<ChainStart> {
    let gblock = genesis.block();
    store
        .init(&gblock, &genesis.to_json_pretty())
        .context("opening the data dir")?;
    let height = store
        .head_height()?
        .context("store has no head after init")?;
    let head = (|| -> anyhow::Result<ChainStart> {
        let block = store
            .block(height)?
            .with_context(|| format!("head block {height} missing"))?;
        let hash = block.hash();
        if store.height_of(&hash)? != Some(height) {
            bail!("hash index does not map {hash} to height {height}");
        }
        let ids: Vec<Hash> = block.txs.iter().map(Transaction::id).collect();
        if tx_root(&ids) != block.header.tx_root {
            bail!("tx_root does not match the stored transactions");
        }
        let frontier = Frontier::from_source(&HistorySource(store), block.header.history_size)
            .context("reading history nodes")?;
        if frontier.root() != block.header.history_root {
            bail!("history_root does not match the stored history tree");
        }
        if height == 0 {
            if block != gblock {
                bail!("stored genesis block differs from the genesis file");
            }
        } else {
            let engine = RoundRobin::new(genesis.round_robin().clone(), None, 0, 0);
            engine.check_proposer(&block.header)?;
            block.verify_seal()?;
        }
        Ok(ChainStart {
            head: block.header,
            frontier,
        })
    })()
    .with_context(|| {
        format!(
            "stored head at height {height} fails verification; the data dir may be damaged \
             (run `auditchain verify-chain` to find the first bad block)"
        )
    })?;
    Ok(head)
}

struct Actor {
    store: Arc<dyn ChainStore>,
    genesis: Arc<Genesis>,
    chain_id: Hash,
    key: Option<SecretKey>,
    engine: RoundRobin,
    mempool: Mempool,
    head: Header,
    head_hash: Hash,
    frontier: Frontier,
    waiters: HashMap<Hash, Vec<oneshot::Sender<Option<u64>>>>,
    heads: broadcast::Sender<HeadView>,
    durable: watch::Sender<Header>,
    /// Engine outputs not yet acted on (every `on_input` may produce some).
    outbox: Vec<Output>,
    /// The block being written by the writer thread, if any (at most one).
    in_flight: Option<InFlight>,
    jobs: std::sync::mpsc::Sender<CommitJob>,
}

/// A sealed block handed to the writer thread.
struct CommitJob {
    block: Block,
    hash: Hash,
    ids: Vec<Hash>,
    nodes: Vec<merkle::NewNode>,
    built_ms: u64,
}

/// What the actor remembers of the block being written.
struct InFlight {
    frontier: Frontier,
    started: std::time::Instant,
}

type CommitResult = (CommitJob, Result<(), auditchain_storage::StorageError>);

/// Starts the chain actor on its own thread, with a writer thread that commits blocks, so the
/// actor keeps admitting transactions while a block is flushed. Returns its handle and the
/// actor thread's join handle; it stops when `shutdown` turns true or every handle is dropped.
/// `durable` receives each head after it is flushed to disk.
pub fn spawn(
    store: Arc<dyn ChainStore>,
    genesis: Arc<Genesis>,
    start: ChainStart,
    key: Option<SecretKey>,
    heads: broadcast::Sender<HeadView>,
    durable: watch::Sender<Header>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<(ChainHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let (jobs, job_rx) = std::sync::mpsc::channel::<CommitJob>();
    let (done_tx, done_rx) = mpsc::channel::<CommitResult>(1);
    let writer_store = Arc::clone(&store);
    let writer = std::thread::Builder::new()
        .name("chain-writer".into())
        .spawn(move || {
            for job in job_rx {
                let r = writer_store.commit_block(BlockCommit {
                    block: &job.block,
                    hash: job.hash,
                    tx_ids: &job.ids,
                    history_nodes: &job.nodes,
                });
                if done_tx.blocking_send((job, r)).is_err() {
                    break;
                }
            }
        })?;
    let engine = RoundRobin::new(
        genesis.round_robin().clone(),
        key.as_ref().map(SecretKey::public_key),
        start.head.height,
        start.head.timestamp_ms,
    );
    let actor = Actor {
        chain_id: genesis.hash(),
        mempool: Mempool::new(genesis.limits.clone()),
        head_hash: start.head.hash(),
        head: start.head,
        frontier: start.frontier,
        store,
        genesis,
        key,
        engine,
        waiters: HashMap::new(),
        heads,
        durable,
        outbox: Vec::new(),
        in_flight: None,
        jobs,
    };
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
    Ok((ChainHandle { tx }, join))
}

impl Actor {
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
        tracing::info!(height = self.head.height, "chain actor stopped");
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Submit { txs, reply } => {
                let store = &self.store;
                let out = txs
                    .into_iter()
                    .map(|(id, tx)| {
                        let next = store.next_nonce(tx.signer()).unwrap_or(0);
                        self.mempool
                            .admit(tx, id, next, || store.tx_seq(&id).ok().flatten().is_some())
                    })
                    .collect();
                let _ = reply.send(out);
            }
            Command::Watch { id, reply } => {
                if self.mempool.get(&id).is_some() {
                    // pending, or in the block being written: answered after the flush
                    self.waiters.entry(id).or_default().push(reply);
                } else if let Ok(Some(seq)) = self.store.tx_seq(&id) {
                    let _ = reply.send(Some(seq));
                } else {
                    let _ = reply.send(None);
                }
            }
            Command::Pending { id, reply } => {
                let _ = reply.send(self.mempool.get(&id).cloned());
            }
            Command::NextNonce { signer, reply } => {
                let committed = self.store.next_nonce(&signer).unwrap_or(0);
                let _ = reply.send(self.mempool.next_nonce(&signer, committed));
            }
            Command::Stats { reply } => {
                let _ = reply.send(MempoolStats {
                    txs: self.mempool.len(),
                    bytes: self.mempool.bytes(),
                });
            }
        }
    }

    fn feed(&mut self, input: Input) {
        let out = self.engine.on_input(input, now_ms());
        self.outbox.extend(out);
    }

    /// Acts on engine outputs. At most one block is being written at a time; the engine does
    /// not ask for the next height before it hears of the new head.
    fn drive(&mut self) {
        self.feed(Input::Pending {
            txs: self.mempool.len(),
        });
        while self.in_flight.is_none() {
            let Some(out) = self.outbox.pop() else { break };
            match out {
                Output::Propose {
                    height,
                    round,
                    timestamp_ms,
                } => {
                    if let Err(e) = self.propose(height, round, timestamp_ms) {
                        tracing::error!(height, error = %format!("{e:#}"), "proposal failed; will retry");
                        self.retry_height();
                    }
                }
            }
        }
    }

    /// Lets the engine propose the next height again (after a failed build or write).
    fn retry_height(&mut self) {
        self.feed(Input::NewHead {
            height: self.head.height,
            timestamp_ms: self.head.timestamp_ms,
        });
    }

    /// Builds, executes and seals a block, and hands it to the writer.
    fn propose(&mut self, height: u64, round: u32, timestamp_ms: u64) -> anyhow::Result<()> {
        let key = self.key.clone().context("not a validator")?;
        let started = std::time::Instant::now();
        let l = &self.genesis.limits;
        let store = Arc::clone(&self.store);
        let mut picked = self
            .mempool
            .select(l.max_block_txs as usize, l.max_block_bytes, |s| {
                store.next_nonce(s).unwrap_or(0)
            });
        // Admission applies the same rules, so this loop only runs more than once if state
        // changed under a pending transaction; the offender is evicted, never silently kept.
        let (executed, txs) = loop {
            let txs: Vec<Transaction> = picked.iter().map(|(_, t)| t.clone()).collect();
            match execute(
                &self.genesis,
                &self.chain_id,
                &self.head.state_root,
                &txs,
                |s| store.next_nonce(s),
            ) {
                Ok(x) => break (x, txs),
                Err(ExecError::Tx { index, reason }) => {
                    let (id, _) = picked.remove(index);
                    tracing::warn!(%id, %reason, "evicting transaction that no longer applies");
                    self.mempool
                        .remove_committed(&[id], |s| store.next_nonce(s).unwrap_or(0));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let ids: Vec<Hash> = picked.into_iter().map(|(id, _)| id).collect();
        let mut frontier = self.frontier.clone();
        let mut nodes = Vec::with_capacity(ids.len() * 2);
        for id in &ids {
            frontier.append(merkle::leaf_hash(&id.0), |n| nodes.push(n));
        }
        let header = Header {
            version: HEADER_VERSION,
            height,
            parent_hash: self.head_hash,
            timestamp_ms,
            proposer: key.public_key(),
            tx_root: tx_root(&ids),
            tx_count: ids.len() as u32,
            history_root: frontier.root(),
            history_size: frontier.size(),
            state_root: executed.state_root,
            consensus: ConsensusFields::RoundRobin { round },
        };
        let block = Block::seal_with(header, txs, &key);
        let hash = block.hash();
        let built_ms = started.elapsed().as_millis() as u64;
        self.jobs
            .send(CommitJob {
                block,
                hash,
                ids,
                nodes,
                built_ms,
            })
            .map_err(|_| anyhow::anyhow!("writer thread stopped"))?;
        self.in_flight = Some(InFlight { frontier, started });
        Ok(())
    }

    /// The writer finished a block: on success it is durable, so publish it.
    fn on_written(&mut self, job: CommitJob, result: Result<(), auditchain_storage::StorageError>) {
        let Some(flight) = self.in_flight.take() else {
            return;
        };
        let height = job.block.header.height;
        if let Err(e) = result {
            tracing::error!(height, error = %e, "block commit failed; will retry");
            self.retry_height();
            return;
        }
        let store = Arc::clone(&self.store);
        self.frontier = flight.frontier;
        self.head = job.block.header;
        self.head_hash = job.hash;
        self.mempool
            .remove_committed(&job.ids, |s| store.next_nonce(s).unwrap_or(0));
        let _ = self.durable.send(self.head.clone());
        if !self.waiters.is_empty() {
            let first = self.head.history_size - job.ids.len() as u64;
            for (i, id) in job.ids.iter().enumerate() {
                if let Some(ws) = self.waiters.remove(id) {
                    for w in ws {
                        let _ = w.send(Some(first + i as u64));
                    }
                }
            }
            self.waiters.retain(|_, ws| {
                ws.retain(|w| !w.is_closed());
                !ws.is_empty()
            });
        }
        let _ = self.heads.send(HeadView::of(&self.head));
        self.feed(Input::NewHead {
            height,
            timestamp_ms: self.head.timestamp_ms,
        });
        tracing::info!(
            height,
            txs = job.ids.len(),
            hash = %job.hash,
            build_ms = job.built_ms,
            total_ms = flight.started.elapsed().as_millis() as u64,
            "committed block"
        );
    }
}
