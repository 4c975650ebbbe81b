//! `auditchain ingest`: log files → signed `record_event` transactions → a node, with a local
//! sidecar for later verification (`auditchain reconcile`).
//!
//! Pipeline: one reader thread per file parses lines ([`parse`]) into a bounded channel; the
//! driver cuts them into batches, assigns consecutive nonces, signs each batch on all cores
//! (rayon) and keeps up to `inflight` `audit_submitBatch` calls in flight. A tracker walks the
//! finalized blocks (`chain_getFinalized`, `chain_getBlocks`) and ticks off the ids it finds.
//!
//! Invariants:
//! - Every line ends up counted exactly once: skipped (blank or CSV header), unparseable,
//!   rejected (by local checks or by the node, with the reason), or submitted; every
//!   submitted one ends finalized or reported as not finalized. Nothing is dropped silently.
//! - A sidecar record says `submitted` only after the node admitted the transaction; no
//!   sidecar is created when the node cannot be reached at the start.
//! - Transport errors and "mempool full" (1010) are retried with backoff for `retry_secs`;
//!   resubmitting a transaction is idempotent (the same signed bytes, "duplicate" = admitted),
//!   so a node that restarts mid-ingest (and lost its mempool) gets the lost ones again.

pub mod parse;
pub mod sidecar;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use auditchain_genesis::{Genesis, Limits, Role};
use auditchain_primitives::{Hash, SecretKey};
use auditchain_rpc::types::TxParam;
use auditchain_rpc::{AuditChainApiClient, HttpClient};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::cli::sign_record;
pub use parse::Format;
use parse::{Parsed, Parser};
use sidecar::{Record, Sidecar, Status};

/// What `ingest` needs.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Node RPC URL (HTTP).
    pub rpc: String,
    /// The writer key that signs every event.
    pub key: SecretKey,
    /// Line format of every file.
    pub format: Format,
    /// Keep only `data_hash` on chain (the data, with the line, stays in the sidecar).
    pub hash_only: bool,
    /// Keep reading files as they grow (`tail -F`) until `stop` is set.
    pub follow: bool,
    /// Input files.
    pub files: Vec<PathBuf>,
    /// Sidecar path (JSONL, appended to).
    pub sidecar: PathBuf,
    /// Events per `audit_submitBatch` call (1–10,000).
    pub batch: usize,
    /// Submission calls in flight at once (≥ 1).
    pub inflight: usize,
    /// How long to keep retrying an unreachable node or a full mempool, s.
    pub retry_secs: u64,
    /// How long to wait for finality once everything is submitted, s.
    pub finality_timeout_secs: u64,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Set to stop reading (follow mode; Ctrl-C).
    pub stop: Arc<AtomicBool>,
}

impl IngestOptions {
    /// Defaults for everything but what must be given.
    pub fn new(rpc: &str, key: SecretKey, format: Format, files: Vec<PathBuf>) -> Self {
        IngestOptions {
            rpc: rpc.to_string(),
            key,
            format,
            hash_only: false,
            follow: false,
            files,
            sidecar: PathBuf::from("auditchain-sidecar.jsonl"),
            batch: 500,
            inflight: 4,
            retry_secs: 60,
            finality_timeout_secs: 120,
            progress: false,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The outcome of an ingest run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IngestSummary {
    /// Lines read from all files.
    pub lines: u64,
    /// Blank lines and CSV headers.
    pub skipped: u64,
    /// Lines that are not events of the format, by reason.
    pub unparseable: BTreeMap<String, u64>,
    /// Events refused (locally or by the node), by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Events admitted by the node.
    pub submitted: u64,
    /// Submitted events found in finalized blocks.
    pub finalized: u64,
    /// Submitted events not final when the wait ended.
    pub not_finalized: u64,
    /// Events that never got an answer from the node (it stayed unreachable).
    pub not_submitted: u64,
    /// From the first submission to the last finalization, s.
    pub elapsed_s: f64,
    /// Finalized events per second over `elapsed_s`.
    pub events_per_s: f64,
    /// Submission → seen final, per event, ms (tracker polls every 50 ms).
    #[serde(skip)]
    pub finality_ms: Vec<u64>,
    /// Heights of the first and last block holding an event of this run.
    pub heights: Option<(u64, u64)>,
    /// Event counts per type (of submitted events).
    pub event_types: BTreeMap<String, u64>,
}

impl IngestSummary {
    /// Lines not accounted for: must be 0.
    pub fn unaccounted(&self) -> i64 {
        let acc = self.skipped
            + self.unparseable.values().sum::<u64>()
            + self.rejected.values().sum::<u64>()
            + self.submitted
            + self.not_submitted;
        self.lines as i64 - acc as i64
    }

    /// The `q` quantile (0–1) of finality latency, ms.
    pub fn finality_quantile(&self, q: f64) -> Option<u64> {
        let mut v = self.finality_ms.clone();
        v.sort_unstable();
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).copied()
    }

    /// Whether every line was finalized or reported, with nothing rejected or lost.
    pub fn is_clean(&self) -> bool {
        self.rejected.is_empty()
            && self.not_finalized == 0
            && self.not_submitted == 0
            && self.unaccounted() == 0
    }

    /// Prints the human summary.
    pub fn print(&self) {
        println!(
            "read {} lines: {} submitted, {} finalized, {} unparseable, {} rejected, {} skipped (blank/header)",
            self.lines,
            self.submitted,
            self.finalized,
            self.unparseable.values().sum::<u64>(),
            self.rejected.values().sum::<u64>(),
            self.skipped
        );
        for (why, n) in &self.unparseable {
            println!("  unparseable ×{n}: {why}");
        }
        for (why, n) in &self.rejected {
            println!("  rejected ×{n}: {why}");
        }
        if self.not_finalized > 0 {
            println!("  NOT finalized: {}", self.not_finalized);
        }
        if self.not_submitted > 0 {
            println!("  NOT submitted (node unreachable): {}", self.not_submitted);
        }
        let q = |q| {
            self.finality_quantile(q)
                .map_or("-".into(), |v| v.to_string())
        };
        println!(
            "{:.0} events/s finalized ({} in {:.2} s); finality latency p50 {} ms, p99 {} ms",
            self.events_per_s,
            self.finalized,
            self.elapsed_s,
            q(0.5),
            q(0.99)
        );
    }
}

/// One line from a reader thread.
struct Line {
    file: Arc<str>,
    line_no: u64,
    text: String,
    parsed: Result<Parsed, String>,
}

/// A signed event waiting for its submission outcome.
struct Pending {
    record: Record,
    tx: TxParam,
    /// When it was signed (finality latency counts from here).
    signed_at: Instant,
}

/// A batch and its per-event submission outcomes.
type Submitted = (Vec<Pending>, Vec<Result<(), String>>);

/// An event with its nonce, ready to sign.
struct Unsigned {
    file: Arc<str>,
    line_no: u64,
    text: String,
    event: parse::Event,
    hash: Hash,
    nonce: u64,
}

/// Shared between the driver and the finality tracker.
#[derive(Default)]
struct Track {
    /// Submitted, not yet seen final: id → (first submission, nonce, tx).
    outstanding: HashMap<Hash, (Instant, u64, TxParam)>,
    finality_ms: Vec<u64>,
    finalized: u64,
    heights: Option<(u64, u64)>,
    last_final_at: Option<Instant>,
    /// Ids seen in final blocks that were not (yet) outstanding, with the height and when:
    /// a batch is recorded when its submission call returns, which can be after its first
    /// events are final (retries under back-pressure). Bounded to the most recent
    /// [`RECENT_FINAL`] ids.
    recent_final: HashMap<Hash, (u64, Instant)>,
    recent_order: std::collections::VecDeque<Hash>,
}

/// How many final ids not yet claimed by a returned submission the tracker remembers.
const RECENT_FINAL: usize = 200_000;

impl Track {
    /// Records that `id` is final at `height` (seen at `at`), whether or not it is
    /// outstanding yet.
    fn finalized(&mut self, id: Hash, height: u64, at: Instant) {
        match self.outstanding.remove(&id) {
            Some((first, _, _)) => self.count_final(first, height, at),
            None => {
                if self.recent_final.insert(id, (height, at)).is_none() {
                    self.recent_order.push_back(id);
                    if self.recent_order.len() > RECENT_FINAL
                        && let Some(old) = self.recent_order.pop_front()
                    {
                        self.recent_final.remove(&old);
                    }
                }
            }
        }
    }

    fn count_final(&mut self, first: Instant, height: u64, at: Instant) {
        self.finality_ms
            .push(at.saturating_duration_since(first).as_millis() as u64);
        self.finalized += 1;
        self.heights = Some(self.heights.map_or((height, height), |(a, _)| (a, height)));
        self.last_final_at = Some(self.last_final_at.map_or(at, |l| l.max(at)));
    }

    /// Records an admitted event: final already (seen before its call returned), or
    /// outstanding.
    fn admitted(&mut self, id: Hash, signed_at: Instant, nonce: u64, tx: TxParam) {
        match self.recent_final.remove(&id) {
            Some((height, at)) => self.count_final(signed_at, height, at),
            None => {
                self.outstanding.insert(id, (signed_at, nonce, tx));
            }
        }
    }
}

/// Runs an ingest. Errors: unreadable files, an unreachable node at the start, a key without
/// the writer role, a sidecar that cannot be written. Per-line problems are not errors: they
/// are counted in the summary (and recorded in the sidecar).
pub async fn ingest(opts: IngestOptions) -> anyhow::Result<IngestSummary> {
    if opts.batch == 0 || opts.batch > auditchain_rpc::types::MAX_SUBMIT_BATCH || opts.inflight == 0
    {
        bail!(
            "--batch must be 1–{} and --inflight at least 1",
            auditchain_rpc::types::MAX_SUBMIT_BATCH
        );
    }
    for f in &opts.files {
        std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
    }
    let c = auditchain_rpc::http_client(&opts.rpc, Duration::from_secs(30))
        .with_context(|| format!("RPC URL {}", opts.rpc))?;
    let status = c.node_status().await.with_context(|| {
        format!(
            "cannot reach the node at {} (is it running? check --rpc)",
            opts.rpc
        )
    })?;
    let genesis = Genesis::from_json(&c.get_genesis().await?.to_string())
        .context("the node's genesis does not parse")?;
    let me = opts.key.public_key();
    if !genesis.has_role(&me, Role::Writer) {
        bail!(
            "key {me} does not have the writer role on chain {}",
            status.chain_id
        );
    }
    let mut nonce = c.next_nonce(me).await?;
    let start_final = c.get_finalized().await?.head.height;
    let mut sidecar = Sidecar::append(&opts.sidecar)?;

    let (line_tx, mut lines) = mpsc::channel::<Line>(16 * opts.batch);
    let mut readers = Vec::new();
    for f in &opts.files {
        readers.push(spawn_reader(
            f.clone(),
            opts.format,
            opts.follow,
            Arc::clone(&opts.stop),
            line_tx.clone(),
        ));
    }
    drop(line_tx);

    let track = Arc::new(Mutex::new(Track::default()));
    let tracker_stop = Arc::new(AtomicBool::new(false));
    let tracker = tokio::spawn(track_finality(
        c.clone(),
        Arc::clone(&track),
        start_final,
        Arc::clone(&tracker_stop),
    ));
    let bar = progress_bar(opts.progress);
    let mut sum = IngestSummary::default();
    let mut first_submit: Option<Instant> = None;
    let mut inflight: JoinSet<Submitted> = JoinSet::new();
    let retry = Duration::from_secs(opts.retry_secs);
    let mut gave_up = false;
    let lane = Arc::new(Lane::default());
    let mut batch_seq = 0u64;

    loop {
        if gave_up {
            opts.stop.store(true, Ordering::Relaxed);
        }
        // settle finished submissions while waiting for input (with --follow input may pause
        // for a long time); both awaits are cancel-safe
        let first = tokio::select! {
            r = inflight.join_next(), if !inflight.is_empty() => {
                if let Some(r) = r {
                    gave_up |= settle(r.context("submitter")?, &mut sum, &mut sidecar, &track, &bar)?;
                }
                continue;
            }
            l = lines.recv() => l,
        };
        // every reader is done
        let Some(first) = first else { break };
        let mut to_sign = Vec::new();
        for l in fill_batch(&mut lines, first, opts.batch).await {
            sum.lines += 1;
            match l.parsed {
                Ok(Parsed::Skip) => sum.skipped += 1,
                Err(why) => {
                    *sum.unparseable.entry(why.clone()).or_default() += 1;
                    sidecar.write(&Record::failed(
                        &l.file,
                        l.line_no,
                        &l.text,
                        Status::Unparseable,
                        why,
                    ))?;
                }
                Ok(Parsed::Event(ev)) => match local_check(&ev, &genesis.limits, opts.hash_only) {
                    Err(why) => {
                        *sum.rejected.entry(why.clone()).or_default() += 1;
                        sidecar.write(&Record::failed(
                            &l.file,
                            l.line_no,
                            &l.text,
                            Status::Rejected,
                            why,
                        ))?;
                    }
                    Ok(hash) => {
                        to_sign.push(Unsigned {
                            file: l.file,
                            line_no: l.line_no,
                            text: l.text,
                            event: ev,
                            hash,
                            nonce,
                        });
                        nonce += 1;
                    }
                },
            }
        }
        if !to_sign.is_empty() {
            let chain_id = status.chain_id;
            let key = opts.key.clone();
            let hash_only = opts.hash_only;
            let signed = tokio::task::spawn_blocking(move || {
                to_sign
                    .into_par_iter()
                    .map(|u| sign_event(chain_id, &key, hash_only, u))
                    .collect::<anyhow::Result<Vec<Pending>>>()
            })
            .await??;
            first_submit.get_or_insert_with(Instant::now);
            while inflight.len() >= opts.inflight {
                let r = inflight.join_next().await.context("submitter")??;
                gave_up |= settle(r, &mut sum, &mut sidecar, &track, &bar)?;
            }
            if gave_up {
                sum.not_submitted += signed.len() as u64;
            } else {
                let c = c.clone();
                let lane = Arc::clone(&lane);
                let seq = batch_seq;
                batch_seq += 1;
                lane.open(seq);
                inflight.spawn(async move {
                    let outcome = submit(&c, &signed, retry, &lane, seq).await;
                    (signed, outcome)
                });
            }
        }
    }
    while let Some(r) = inflight.join_next().await {
        settle(
            r.context("submitter")?,
            &mut sum,
            &mut sidecar,
            &track,
            &bar,
        )?;
    }
    sidecar.flush()?;
    for r in readers {
        let _ = r.join();
    }

    // wait for finality: done when nothing is outstanding, or nothing became final for the
    // timeout
    bar.set_message("waiting for finality");
    let timeout = Duration::from_secs(opts.finality_timeout_secs);
    let wait_start = Instant::now();
    loop {
        let (left, last) = {
            let t = track.lock().expect("track lock");
            (t.outstanding.len(), t.last_final_at)
        };
        let since = last.map_or(wait_start.elapsed(), |l| {
            l.elapsed().min(wait_start.elapsed())
        });
        if left == 0 || since >= timeout {
            break;
        }
        update_bar(&bar, &sum, &track);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracker_stop.store(true, Ordering::Relaxed);
    let _ = tracker.await;
    bar.finish_and_clear();
    let t = track.lock().expect("track lock");
    sum.finalized = t.finalized;
    sum.not_finalized = t.outstanding.len() as u64;
    sum.finality_ms = t.finality_ms.clone();
    sum.heights = t.heights;
    sum.elapsed_s = match (first_submit, t.last_final_at) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    if sum.elapsed_s > 0.0 {
        sum.events_per_s = sum.finalized as f64 / sum.elapsed_s;
    }
    Ok(sum)
}

fn progress_bar(show: bool) -> ProgressBar {
    let bar = if show {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {pos} submitted {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn update_bar(bar: &ProgressBar, sum: &IngestSummary, track: &Mutex<Track>) {
    let fin = track.lock().map(|t| t.finalized).unwrap_or(0);
    let secs = bar.elapsed().as_secs_f64().max(0.001);
    bar.set_position(sum.submitted);
    bar.set_message(format!(
        "| {fin} finalized | {:.0} events/s | {} unparseable",
        fin as f64 / secs,
        sum.unparseable.values().sum::<u64>()
    ));
}

/// Records the outcome of one submission; returns whether the node stayed unreachable.
fn settle(
    (batch, outcome): Submitted,
    sum: &mut IngestSummary,
    sidecar: &mut Sidecar,
    track: &Mutex<Track>,
    bar: &ProgressBar,
) -> anyhow::Result<bool> {
    let mut unreachable = false;
    for (p, r) in batch.into_iter().zip(outcome) {
        match r {
            Ok(()) => {
                sum.submitted += 1;
                *sum.event_types
                    .entry(p.record.event_type.clone().unwrap_or_default())
                    .or_default() += 1;
                let id = p.record.tx_id.context("signed record has an id")?;
                track.lock().expect("track lock").admitted(
                    id,
                    p.signed_at,
                    p.record.nonce.unwrap_or(0),
                    p.tx,
                );
                sidecar.write(&p.record)?;
            }
            Err(why) if why.starts_with(UNREACHABLE) => {
                unreachable = true;
                sum.not_submitted += 1;
            }
            Err(why) => {
                *sum.rejected.entry(why.clone()).or_default() += 1;
                let mut rec = p.record;
                rec.status = Status::Rejected;
                rec.error = Some(why);
                sidecar.write(&rec)?;
            }
        }
    }
    sidecar.flush()?;
    update_bar(bar, sum, track);
    Ok(unreachable)
}

const UNREACHABLE: &str = "node unreachable";

/// Keeps submissions in nonce order under back-pressure. Batches are numbered in nonce order;
/// while any batch is being refused with "mempool full", only the lowest unfinished batch may
/// send, so the mempool fills with the nonces that can commit next instead of later ones that
/// would have to wait behind a gap (and be displaced by the node when the gap closes).
#[derive(Default)]
struct Lane {
    state: Mutex<LaneState>,
}

#[derive(Default)]
struct LaneState {
    unfinished: std::collections::BTreeSet<u64>,
    congested: std::collections::BTreeSet<u64>,
}

impl Lane {
    fn open(&self, seq: u64) {
        self.state.lock().expect("lane").unfinished.insert(seq);
    }

    fn may_send(&self, seq: u64) -> bool {
        let s = self.state.lock().expect("lane");
        s.congested.is_empty() || s.unfinished.first() == Some(&seq)
    }

    fn congested(&self, seq: u64, yes: bool) {
        let mut s = self.state.lock().expect("lane");
        if yes {
            s.congested.insert(seq);
        } else {
            s.congested.remove(&seq);
        }
    }

    fn close(&self, seq: u64) {
        let mut s = self.state.lock().expect("lane");
        s.unfinished.remove(&seq);
        s.congested.remove(&seq);
    }
}

/// Submits batch `seq`, retrying transport errors and "mempool full" with backoff (100 ms
/// doubling to 2 s) until `retry` passes without progress. One result per event: `Ok` =
/// admitted (or already known).
async fn submit(
    c: &HttpClient,
    batch: &[Pending],
    retry: Duration,
    lane: &Lane,
    seq: u64,
) -> Vec<Result<(), String>> {
    let mut results: Vec<Option<Result<(), String>>> = vec![None; batch.len()];
    let mut todo: Vec<usize> = (0..batch.len()).collect();
    let mut progress_at = Instant::now();
    let mut backoff = Duration::from_millis(100);
    let mut last_err = String::new();
    while !todo.is_empty() {
        while !lane.may_send(seq) {
            // waiting for earlier batches is not a lack of progress
            progress_at = Instant::now();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match c
            .submit_batch(todo.iter().map(|&i| batch[i].tx.clone()).collect())
            .await
        {
            Ok(outs) => {
                let mut again = Vec::new();
                for (&i, o) in todo.iter().zip(outs) {
                    match o.error {
                        None => results[i] = Some(Ok(())),
                        // already pending or committed: admitted by an earlier attempt
                        Some(e) if e.code == 1008 => results[i] = Some(Ok(())),
                        Some(e) if e.code == 1010 => {
                            last_err = e.message;
                            again.push(i);
                        }
                        Some(e) => results[i] = Some(Err(format!("node: {}", e.message))),
                    }
                }
                if again.len() < todo.len() {
                    backoff = Duration::from_millis(100);
                    progress_at = Instant::now();
                }
                lane.congested(seq, !again.is_empty());
                // a retry resends the whole batch but its refused events: to make room, the
                // node may have displaced events of this batch it had admitted (higher nonces
                // than the ones it refused); already pending ones are answered "duplicate"
                todo = if again.is_empty() {
                    again
                } else {
                    (0..batch.len())
                        .filter(|&i| !matches!(results[i], Some(Err(_))))
                        .collect()
                };
            }
            Err(e) => last_err = format!("{UNREACHABLE}: {e}"),
        }
        if todo.is_empty() {
            break;
        }
        if progress_at.elapsed() >= retry {
            let why = if last_err.starts_with(UNREACHABLE) {
                last_err.clone()
            } else {
                format!(
                    "{UNREACHABLE}: still refused after {} s: {last_err}",
                    retry.as_secs()
                )
            };
            for &i in &todo {
                // an event the node admitted once stays tracked (the finality tracker
                // resubmits it if it was displaced); the others were never accepted
                if !matches!(results[i], Some(Ok(()))) {
                    results[i] = Some(Err(why.clone()));
                }
            }
            break;
        }
        tracing::debug!(left = todo.len(), error = %last_err, "retrying submission");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    lane.close(seq);
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("no outcome".into())))
        .collect()
}

/// `first` and whatever else arrives within 50 ms, up to `max` lines.
async fn fill_batch(rx: &mut mpsc::Receiver<Line>, first: Line, max: usize) -> Vec<Line> {
    let mut v = vec![first];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
    while v.len() < max {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(l)) => v.push(l),
            Ok(None) | Err(_) => break,
        }
    }
    v
}

/// The data hash of `ev`, after checking it against the chain's size limits.
fn local_check(ev: &parse::Event, limits: &Limits, hash_only: bool) -> Result<Hash, String> {
    let text = auditchain_primitives::tx::canonical_json(&ev.data).map_err(|e| e.to_string())?;
    if !hash_only && text.len() > limits.max_data_bytes as usize {
        return Err(format!(
            "data of {} bytes exceeds max_data_bytes {}",
            text.len(),
            limits.max_data_bytes
        ));
    }
    // data_hash = SHA-256 of the canonical text: hash the text already made
    Ok(auditchain_primitives::sha256(text.as_bytes()))
}

/// Signs one event (on a rayon worker).
fn sign_event(
    chain_id: Hash,
    key: &SecretKey,
    hash_only: bool,
    u: Unsigned,
) -> anyhow::Result<Pending> {
    let Unsigned {
        file,
        line_no,
        text,
        event: ev,
        hash,
        nonce,
    } = u;
    let data = (!hash_only).then(|| ev.data.clone());
    let tx = sign_record(
        chain_id,
        key,
        nonce,
        &ev.event_type,
        &ev.entity,
        data,
        Some(hash),
    )?;
    Ok(Pending {
        record: Record {
            file: file.to_string(),
            line_no,
            line: text,
            status: Status::Submitted,
            tx_id: Some(tx.id()),
            nonce: Some(nonce),
            event_type: Some(ev.event_type),
            entity: Some(ev.entity),
            hash_only: Some(hash_only),
            data_hash: Some(hash),
            data: Some(ev.data),
            error: None,
        },
        tx: TxParam::from(&tx),
        signed_at: Instant::now(),
    })
}

/// Walks finalized blocks from `from + 1`, ticking off outstanding ids, every 50 ms until
/// `stop`. When none of our events became final for a second while some are outstanding, it
/// resubmits the lowest-nonce outstanding ones (up to one batch call per second): a node that
/// restarted lost its mempool, and a node whose mempool was full may have displaced admitted
/// events with higher nonces (the mempool rule) — either way the chain waits for the lowest
/// missing nonce, and resubmitting an event the node still holds is answered "duplicate".
async fn track_finality(
    c: HttpClient,
    track: Arc<Mutex<Track>>,
    mut scanned: u64,
    stop: Arc<AtomicBool>,
) {
    let started = Instant::now();
    let mut last_resubmit = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Ok(f) = c.get_finalized().await {
            while scanned < f.head.height {
                let to = f.head.height.min(scanned + 100);
                let Ok(blocks) = c.get_blocks(scanned + 1, to).await else {
                    break;
                };
                if blocks.is_empty() {
                    break;
                }
                let now = Instant::now();
                let mut t = track.lock().expect("track lock");
                for b in &blocks {
                    for id in &b.tx_ids {
                        t.finalized(*id, b.header.height, now);
                    }
                    scanned = b.header.height;
                }
            }
        }
        let stalled = {
            let t = track.lock().expect("track lock");
            let since = t.last_final_at.unwrap_or(started).elapsed();
            !t.outstanding.is_empty() && since > Duration::from_secs(1)
        };
        if stalled && last_resubmit.elapsed() > Duration::from_secs(1) {
            last_resubmit = Instant::now();
            let lowest: Vec<TxParam> = {
                let t = track.lock().expect("track lock");
                let mut v: Vec<(u64, &TxParam)> =
                    t.outstanding.values().map(|(_, n, tx)| (*n, tx)).collect();
                v.sort_unstable_by_key(|(n, _)| *n);
                v.into_iter()
                    .take(RESUBMIT_BATCH)
                    .map(|(_, tx)| tx.clone())
                    .collect()
            };
            tracing::info!(
                count = lowest.len(),
                "no progress for 1 s: resubmitting the lowest nonces"
            );
            if let Ok(outs) = c.submit_batch(lowest).await {
                let mut why: BTreeMap<i32, u64> = BTreeMap::new();
                for e in outs.into_iter().filter_map(|o| o.error) {
                    *why.entry(e.code).or_default() += 1;
                }
                tracing::debug!(?why, "resubmission refusals by code");
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Most events resubmitted per second while finality is stalled.
const RESUBMIT_BATCH: usize = 1_000;

/// Reads `path` line by line on its own thread, parsing each; with `follow`, waits for more at
/// the end and reopens the file when it is replaced or truncated (`tail -F`), until `stop`.
fn spawn_reader(
    path: PathBuf,
    format: Format,
    follow: bool,
    stop: Arc<AtomicBool>,
    out: mpsc::Sender<Line>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::BufRead;
        let name: Arc<str> = path.display().to_string().into();
        let mut parser = Parser::new(format, &Parser::dataset_of(&path));
        let open = || -> Option<(std::io::BufReader<std::fs::File>, Option<u64>)> {
            let f = std::fs::File::open(&path).ok()?;
            let ino = file_id(&f);
            Some((std::io::BufReader::new(f), ino))
        };
        let Some((mut reader, mut ino)) = open() else {
            return;
        };
        let mut line_no = 0u64;
        let mut pos = 0u64;
        let mut buf = Vec::new();
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            buf.clear();
            let n = match reader.read_until(b'\n', &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "read error");
                    return;
                }
            };
            if n > 0 && (buf.ends_with(b"\n") || !follow) {
                pos += n as u64;
                line_no += 1;
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                let (text, parsed) = match String::from_utf8(std::mem::take(&mut buf)) {
                    Ok(t) => {
                        let p = parser.parse(&t);
                        (t, p)
                    }
                    Err(e) => (
                        String::from_utf8_lossy(e.as_bytes()).into_owned(),
                        Err("not UTF-8".to_string()),
                    ),
                };
                let line = Line {
                    file: Arc::clone(&name),
                    line_no,
                    text,
                    parsed,
                };
                if out.blocking_send(line).is_err() {
                    return;
                }
                continue;
            }
            if !follow {
                return;
            }
            // a partial last line: rewind to its start and wait for the rest
            if n > 0 {
                let _ = std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(pos));
            }
            std::thread::sleep(Duration::from_millis(200));
            let replaced = match std::fs::metadata(&path) {
                Ok(m) => meta_id(&m) != ino || m.len() < pos,
                Err(_) => false, // gone for now (rotation in progress): keep waiting
            };
            if replaced && let Some((r, i)) = open() {
                tracing::info!(file = %name, "file replaced or truncated; reading it from the start");
                reader = r;
                ino = i;
                pos = 0;
                line_no = 0;
                parser = Parser::new(format, &Parser::dataset_of(&path));
            }
        }
    })
}

#[cfg(unix)]
fn meta_id(m: &std::fs::Metadata) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    Some(m.ino())
}

#[cfg(not(unix))]
fn meta_id(_: &std::fs::Metadata) -> Option<u64> {
    None
}

fn file_id(f: &std::fs::File) -> Option<u64> {
    f.metadata().ok().as_ref().and_then(meta_id)
}
