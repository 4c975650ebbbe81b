//! The proof-of-work actor (`consensus.pow`): mining off the async runtime, fork choice by
//! cumulative work, reorganisations that revert state and every index exactly.
//!
//! - **Mining**: a miner node keeps one template (transactions selected and executed on the
//!   head, header with the required difficulty) on a dedicated thread that searches nonces in
//!   slices; a new head or new transactions replace the template and abort the search (an
//!   epoch counter). A found header is sealed with the miner's key and handled like a block
//!   from the network. An operator can pause and resume the search (`admin_setMining`); a
//!   paused miner still follows the chain.
//! - **Blocks** from gossip (`blocks` topic) or sync: the header is checked against its parent
//!   on whatever branch it extends (miner, difficulty from that branch's retarget window,
//!   work, median-time-past, drift, seal); blocks of other branches are kept in memory with
//!   their cumulative work. The canonical chain in storage is the branch with the most work
//!   (ties: the one seen first). A heavier branch is adopted by reverting stored blocks to the
//!   fork point (`revert_head`, exact: undo records) and applying the branch's blocks, each
//!   checked in full; if one fails, the old branch is restored. Never below the finalized
//!   height (`finality_depth` under the head).
//! - **Acknowledgement**: a transaction is reported committed when the block holding it is
//!   flushed on the canonical branch; it is final once `finality_depth` blocks are on top.
//!   Transactions of reverted blocks that the new branch lacks return to the mempool.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use auditchain_consensus::pow::{self, PowConfig};
use auditchain_p2p::{GossipMessage, InboundMessage, Verdict};
use auditchain_primitives::block::ConsensusFields;
use auditchain_primitives::merkle::Frontier;
use auditchain_primitives::{Block, Hash, Header, Transaction};
use auditchain_storage::BlockCommit;
use tokio::sync::{mpsc, watch};

use super::{Command, Core, now_ms};
use crate::verify::{CheckedBlock, HeaderRules, check_block, required_difficulty};

/// Hashes tried between checks for a newer template.
const MINE_SLICE: u64 = 20_000;
/// How long an empty template is kept while transactions wait.
const EMPTY_TEMPLATE_MS: u128 = 200;

struct Job {
    txs: Vec<Transaction>,
    checked: CheckedBlock,
    started: Instant,
}

struct Miner {
    jobs: std::sync::mpsc::Sender<(Header, u64)>,
    abort: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct PowActor {
    core: Core,
    cfg: PowConfig,
    /// Cumulative work (sum of difficulties) of the canonical blocks, by height.
    canon_work: Vec<u128>,
    /// Blocks off the canonical chain (and reverted ones), by hash, with cumulative work.
    side: HashMap<Hash, (Block, u128)>,
    miner: Option<Miner>,
    job: Option<Job>,
    epoch: u64,
}

/// Starts the proof-of-work actor (and, for a miner, its mining thread).
pub(super) fn spawn(
    mut core: Core,
    tx: mpsc::Sender<Command>,
    rx: mpsc::Receiver<Command>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let cfg = core
        .genesis
        .pow()
        .cloned()
        .ok_or_else(|| std::io::Error::other("not a proof-of-work genesis"))?;
    let mut canon_work = Vec::with_capacity(core.head.height as usize + 1);
    let mut total = 0u128;
    for h in 0..=core.head.height {
        let header = core
            .store
            .header(h)
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .ok_or_else(|| std::io::Error::other(format!("header {h} missing")))?
            .header;
        total += pow::fields(&header).map_or(0, |(d, _)| u128::from(d));
        canon_work.push(total);
    }
    let is_miner = core
        .key
        .as_ref()
        .is_some_and(|k| cfg.miners.contains(&k.public_key()));
    let miner = if is_miner {
        let abort = Arc::new(AtomicU64::new(0));
        let (jobs, job_rx) = std::sync::mpsc::channel::<(Header, u64)>();
        let a = Arc::clone(&abort);
        let thread = std::thread::Builder::new()
            .name("pow-miner".into())
            .spawn(move || mine_loop(job_rx, a, tx))?;
        Some(Miner {
            jobs,
            abort,
            thread: Some(thread),
        })
    } else {
        None
    };
    core.mining = miner.is_some();
    let actor = PowActor {
        core,
        cfg,
        canon_work,
        side: HashMap::new(),
        miner,
        job: None,
        epoch: 0,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("chain-actor".into())
        .spawn(move || rt.block_on(actor.run(rx, shutdown)))
}

/// The mining thread: always works on the newest template; reports a found header.
fn mine_loop(
    jobs: std::sync::mpsc::Receiver<(Header, u64)>,
    abort: Arc<AtomicU64>,
    found: mpsc::Sender<Command>,
) {
    let mut next = jobs.recv().ok();
    while let Some((template, epoch)) = next.take() {
        // each miner's template names its own key, so miners never search the same hashes
        let mut start = 0u64;
        loop {
            if let Ok(newer) = jobs.try_recv() {
                next = Some(newer);
                break;
            }
            if abort.load(Ordering::Relaxed) != epoch {
                break;
            }
            if let Some(header) = pow::mine(&template, start, MINE_SLICE, &abort, epoch) {
                if found
                    .blocking_send(Command::Mined { header, epoch })
                    .is_err()
                {
                    return;
                }
                break;
            }
            start = start.wrapping_add(MINE_SLICE);
        }
        if next.is_none() {
            next = jobs.recv().ok();
        }
    }
}

impl PowActor {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, mut shutdown: watch::Receiver<bool>) {
        self.new_job();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                cmd = rx.recv() => match cmd {
                    Some(c) => self.handle(c),
                    None => break,
                },
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            if *shutdown.borrow() {
                break;
            }
            // put waiting transactions into an empty template
            if self.job.as_ref().is_some_and(|j| {
                j.txs.is_empty() && j.started.elapsed().as_millis() >= EMPTY_TEMPLATE_MS
            }) && !self.core.mempool.is_empty()
            {
                self.new_job();
            }
        }
        if let Some(mut m) = self.miner.take() {
            m.abort.store(u64::MAX, Ordering::Relaxed);
            drop(m.jobs);
            if let Some(t) = m.thread.take() {
                let _ = t.join();
            }
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
                    InboundMessage::Block(b) => self.on_block(*b),
                    InboundMessage::Txs(_) => Verdict::Ignore,
                    // votes and proposals have no place on a proof-of-work chain
                    InboundMessage::Proposal(_) | InboundMessage::Votes(_) => Verdict::Reject,
                };
                if let Some(net) = &self.core.net {
                    net.verdict(msg, verdict);
                }
            }
            Command::Mined { header, epoch } => self.on_mined(header, epoch),
            Command::SetMining { enabled, reply } => {
                let _ = reply.send(self.set_mining(enabled));
            }
            Command::PeerConnected => {
                let from = self.finalized() + 1;
                self.core.start_sync(from);
            }
            Command::Synced(range) => {
                if !self.core.sync_answer_is_current(&range) {
                    return;
                }
                let Ok(super::SyncAnswer {
                    peer, head, blocks, ..
                }) = range.result
                else {
                    return;
                };
                let mut last = None;
                for cb in blocks {
                    let h = cb.block.header.height;
                    if self.on_block(cb.block) == Verdict::Reject {
                        if let Some(net) = &self.core.net {
                            net.penalise(peer, format!("sync: block {h} is invalid"));
                        }
                        return;
                    }
                    last = Some(h);
                }
                self.core.best_peer_height = self.core.best_peer_height.max(head);
                if let Some(l) = last
                    && head > l
                {
                    self.core.start_sync(l + 1);
                }
            }
            _ => {}
        }
    }

    /// The finalized height.
    fn finalized(&self) -> u64 {
        self.core
            .head
            .height
            .saturating_sub(self.cfg.finality_depth)
    }

    fn head_work(&self) -> u128 {
        self.canon_work.last().copied().unwrap_or(0)
    }

    /// Block time at height `h` of the canonical chain.
    fn canon_time(&self, h: u64) -> Option<u64> {
        self.core
            .store
            .header(h)
            .ok()
            .flatten()
            .map(|s| s.header.timestamp_ms)
    }

    /// A block from the network, sync or this node's miner. Returns the gossip verdict.
    fn on_block(&mut self, block: Block) -> Verdict {
        let hash = block.hash();
        if self.side.contains_key(&hash)
            || self.core.store.height_of(&hash).ok().flatten().is_some()
        {
            return Verdict::Ignore;
        }
        let height = block.header.height;
        if height <= self.finalized() {
            return Verdict::Ignore;
        }
        let parent_hash = block.header.parent_hash;
        // the parent: canonical (stored) or on a side branch
        let (parent, parent_work, side_times) =
            match self.core.store.height_of(&parent_hash).ok().flatten() {
                Some(ph) => {
                    let Some(p) = self.core.store.header(ph).ok().flatten() else {
                        return Verdict::Ignore;
                    };
                    (p.header, self.canon_work[ph as usize], BTreeMap::new())
                }
                None => match self.side.get(&parent_hash) {
                    Some((p, w)) => (p.header.clone(), *w, self.branch_times(parent_hash)),
                    None => {
                        // an orphan: fetch what this node lacks
                        let from = self.finalized() + 1;
                        self.core.start_sync(from);
                        return Verdict::Ignore;
                    }
                },
            };
        let time_at = |h: u64| side_times.get(&h).copied().or_else(|| self.canon_time(h));
        if let Err(e) =
            crate::verify::check_pow_header(&self.cfg, &block, &parent, &time_at, now_ms())
        {
            tracing::warn!(height, %hash, error = %e, "block refused");
            return Verdict::Reject;
        }
        self.core.saw(block.header.proposer, false);
        let work = parent_work + pow::fields(&block.header).map_or(0, |(d, _)| u128::from(d));
        if parent_hash == self.core.head_hash && work > self.head_work() {
            return match self.extend(&block, None) {
                Ok(()) => {
                    self.new_job();
                    Verdict::Accept
                }
                Err(e) => {
                    tracing::warn!(height, %hash, error = %format!("{e:#}"), "block refused");
                    Verdict::Reject
                }
            };
        }
        self.side.insert(hash, (block, work));
        if work > self.head_work() {
            match self.reorg(hash) {
                Ok(true) => self.new_job(),
                Ok(false) => {
                    // heavier, but forking below the finalized height: never adopted
                    self.side.remove(&hash);
                    return Verdict::Ignore;
                }
                Err(e) => {
                    tracing::warn!(%hash, error = %format!("{e:#}"), "branch refused");
                    self.side.remove(&hash);
                    return Verdict::Reject;
                }
            }
        }
        Verdict::Accept
    }

    /// Block times of a side branch ending at `tip`, by height (down to the fork point).
    fn branch_times(&self, tip: Hash) -> BTreeMap<u64, u64> {
        let mut out = BTreeMap::new();
        let mut cur = tip;
        while let Some((b, _)) = self.side.get(&cur) {
            out.insert(b.header.height, b.header.timestamp_ms);
            cur = b.header.parent_hash;
        }
        out
    }

    /// Checks `block` in full against the head (unless `checked` is given: this node built it)
    /// and commits it as the new head.
    fn extend(&mut self, block: &Block, checked: Option<CheckedBlock>) -> anyhow::Result<()> {
        let checked = match checked {
            Some(c) => c,
            None => {
                let times = |h: u64| self.canon_time(h);
                let rules = HeaderRules::Pow {
                    cfg: &self.cfg,
                    time_at: &times,
                };
                let store = &self.core.store;
                let mempool = &self.core.mempool;
                check_block(
                    &self.core.genesis,
                    &rules,
                    &self.core.head,
                    &self.core.frontier,
                    block,
                    now_ms().max(block.header.timestamp_ms),
                    |t| mempool.get(&t.id()).is_some_and(|m| m == t),
                    &crate::execute::StoreState(&**store),
                    |s| store.next_nonce(s),
                )
                .map_err(anyhow::Error::msg)?
            }
        };
        self.core
            .store
            .commit_block(BlockCommit {
                block,
                hash: checked.hash,
                tx_ids: &checked.ids,
                history_nodes: &checked.nodes,
                certificate: None,
                parent_certificate: None,
                state_writes: &checked.executed.state_writes,
                contract_events: &checked.executed.events_json,
                set_change_witness: checked.executed.set_change_witness.as_ref(),
            })
            .context("committing the block")?;
        let d = pow::fields(&block.header).map_or(0, |(d, _)| u128::from(d));
        self.canon_work.push(self.head_work() + d);
        tracing::info!(
            height = block.header.height,
            txs = checked.ids.len(),
            hash = %checked.hash,
            "committed block"
        );
        self.core.published(block.header.clone(), checked);
        self.prune();
        Ok(())
    }

    /// Reverts the head block (storage undo record) and moves the head to its parent; the
    /// reverted block and its work are returned.
    fn revert_one(&mut self) -> anyhow::Result<(Block, u128)> {
        let block = self
            .core
            .store
            .revert_head()
            .context("reverting the head")?;
        let work = self.canon_work.pop().unwrap_or(0);
        let parent = self
            .core
            .store
            .header(block.header.height - 1)?
            .context("parent header missing")?
            .header;
        self.core.frontier = Frontier::from_source(&*self.core.store, parent.history_size)
            .context("history frontier")?;
        self.core.head_hash = parent.hash();
        self.core.head = parent;
        Ok((block, work))
    }

    /// Switches the canonical chain to the side branch ending at `tip`; `Ok(false)` (nothing
    /// changed) if it forks below the finalized height. On failure (a block of the branch is
    /// invalid) the old branch is restored exactly.
    fn reorg(&mut self, tip: Hash) -> anyhow::Result<bool> {
        let mut branch = Vec::new();
        let mut cur = tip;
        let fork = loop {
            let Some((b, _)) = self.side.get(&cur) else {
                bail!("branch does not reach the canonical chain");
            };
            let parent = b.header.parent_hash;
            branch.push(b.clone());
            if let Some(h) = self.core.store.height_of(&parent)? {
                break h;
            }
            cur = parent;
        };
        branch.reverse();
        if fork < self.finalized() {
            bail!(
                "branch forks at {fork}, below the finalized height {}",
                self.finalized()
            );
        }
        tracing::warn!(
            from = self.core.head.height,
            fork,
            to = tip.to_hex(),
            "reorganising to a branch with more work"
        );
        let mut reverted = Vec::new();
        while self.core.head.height > fork {
            reverted.push(self.revert_one()?);
        }
        for (i, b) in branch.iter().enumerate() {
            if let Err(e) = self.extend(b, None) {
                // restore the old branch: undo what was applied, re-apply what was reverted
                for _ in 0..i {
                    let (ub, uw) = self.revert_one()?;
                    self.side.insert(ub.hash(), (ub, uw));
                }
                self.side.remove(&b.hash());
                for (rb, _) in reverted.iter().rev() {
                    self.extend(rb, None)
                        .context("restoring the previous branch")?;
                }
                return Err(e.context(format!("block {} of the branch", b.header.height)));
            }
            self.side.remove(&b.hash());
        }
        // the reverted blocks stay known (a heavier extension could bring them back); their
        // transactions the new branch lacks go back to the mempool
        for (b, w) in reverted.into_iter().rev() {
            for tx in &b.txs {
                let id = tx.id();
                if self.core.store.tx_seq(&id).ok().flatten().is_none() {
                    let next = self.core.store.next_nonce(tx.signer()).unwrap_or(0);
                    let _ = self.core.mempool.admit(tx.clone(), id, next, || false);
                }
            }
            self.side.insert(b.hash(), (b, w));
        }
        Ok(true)
    }

    /// Forgets side blocks at or below the finalized height.
    fn prune(&mut self) {
        let fin = self.finalized();
        self.side.retain(|_, (b, _)| b.header.height > fin);
    }

    /// Pauses or resumes the nonce search. Pausing aborts the current template, so a header
    /// found for it afterwards is dropped (its epoch is stale). Errors: this node's key is not
    /// a miner.
    fn set_mining(&mut self, enabled: bool) -> Result<(), String> {
        let Some(miner) = &self.miner else {
            return Err("this node has no key in consensus.pow.miners".into());
        };
        if enabled == self.core.mining {
            return Ok(());
        }
        self.core.mining = enabled;
        if enabled {
            self.new_job();
        } else {
            self.epoch += 1;
            miner.abort.store(self.epoch, Ordering::Relaxed);
            self.job = None;
        }
        tracing::info!(enabled, height = self.core.head.height, "mining switched");
        Ok(())
    }

    /// Replaces the mining template: transactions on the head, the required difficulty, a time
    /// above the median of the last blocks. Nothing while mining is paused.
    fn new_job(&mut self) {
        let Some(miner) = &self.miner else { return };
        if !self.core.mining {
            return;
        }
        let Some(key) = self.core.key.clone() else {
            return;
        };
        self.epoch += 1;
        miner.abort.store(self.epoch, Ordering::Relaxed);
        let head = self.core.head.clone();
        let times = |h: u64| self.canon_time(h);
        let difficulty = required_difficulty(&self.cfg, &head, &times);
        let from = (head.height + 1).saturating_sub(pow::MEDIAN_TIME_SPAN as u64);
        let recent: Vec<u64> = (from..=head.height).filter_map(times).collect();
        let timestamp_ms = now_ms().max(pow::median_time_past(&recent) + 1);
        match self.core.assemble(
            key.public_key(),
            timestamp_ms,
            ConsensusFields::Pow {
                difficulty,
                nonce: 0,
            },
            Hash::ZERO,
        ) {
            Ok((header, txs, checked)) => {
                let epoch = self.epoch;
                if let Some(m) = &self.miner
                    && m.jobs.send((header, epoch)).is_ok()
                {
                    self.job = Some(Job {
                        txs,
                        checked,
                        started: Instant::now(),
                    });
                }
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "building a template failed"),
        }
    }

    /// The mining thread found a header for template `epoch`: seal, commit, gossip.
    fn on_mined(&mut self, header: Header, epoch: u64) {
        if epoch != self.epoch || header.parent_hash != self.core.head_hash {
            return;
        }
        let (Some(job), Some(key)) = (self.job.take(), self.core.key.clone()) else {
            return;
        };
        let mut checked = job.checked;
        checked.hash = header.hash();
        let block = Block::seal_with(header, job.txs, &key);
        match self.extend(&block, Some(checked)) {
            Ok(()) => {
                if let Some(net) = &self.core.net {
                    net.publish(GossipMessage::Block(Box::new(block)));
                }
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "committing a mined block failed"),
        }
        self.new_job();
    }
}
