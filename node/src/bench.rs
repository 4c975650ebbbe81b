//! `auditchain bench …`: benchmarks that print figures (never timed assertions).
//!
//! `bench ingest` measures, in one run, this machine's ed25519 verification ceiling (single and
//! batched, one core and all cores) and the end-to-end ingest rate of one node: pre-signed
//! events submitted over JSON-RPC in pipelined `audit_submitBatch` calls until committed
//! (flushed to sled). The all-core rate is sustained over 1 s (about one ingest run) and
//! measured again between runs (this machine's speed drifts by up to 2× within minutes), and
//! the ratio is reported per run and as median ÷ median. Signing and JSON encoding of the requests happen before the clock starts, as on a
//! client's own machine; the process CPU time of each run is printed beside it.
//!
//! `bench cluster` runs N validators in this process over libp2p on loopback (each with its own
//! sled directory) and measures finalized events/s under full load, submit→final latency
//! (p50/p99, from `audit_submitAndWait` probes) at full and at half load, the catch-up rate of
//! a fresh node syncing the whole chain, and, in the same run, the batched verification rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use auditchain_contracts::ContractsConfig;
use auditchain_genesis::{Genesis, Limits};
use auditchain_primitives::keys::{verify, verify_batch};
use auditchain_primitives::{PublicKey, SecretKey, Signature};
use auditchain_rpc::types::{SubmitOutcome, TxParam};
use auditchain_rpc::{AuditChainApiClient, RpcConfig};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::chain::now_ms;
use crate::cli::sign_record;
use crate::node::{Node, NodeOptions};
use crate::verify::{BLOCK_VERIFY_CHUNK_MAX, VERIFY_CHUNK};

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// One node: committed events/s end to end over RPC, against the signature ceiling.
    Ingest(IngestArgs),
    /// A cluster on loopback: finalized events/s, latency at full and half load, catch-up rate.
    Cluster(ClusterArgs),
}

/// Options of `bench cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Validators.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Events of the full-load phase (about 10 s at the target rate, so that the first block
    /// and the wait for the last one's finality, about 0.5 s together, weigh little).
    #[arg(long, default_value_t = 120_000)]
    pub events: usize,
    /// Distinct writer keys.
    #[arg(long, default_value_t = 16)]
    pub signers: usize,
    /// Transactions per `audit_submitBatch` call.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Block time, ms.
    #[arg(long, default_value_t = 100)]
    pub block_time_ms: u64,
    /// Length of the half-load phase, s.
    #[arg(long, default_value_t = 10)]
    pub half_load_secs: u64,
    /// Most transactions per block (genesis `limits.max_block_txs`).
    #[arg(long, default_value_t = 20_000)]
    pub max_block_txs: u32,
    /// The events submitted (as for `bench ingest`).
    #[arg(long, value_enum, default_value_t = Workload::Openssh)]
    pub workload: Workload,
}

/// Options of `bench ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Events to submit. The rate is end to end, so it includes the last block's wait for its
    /// slot, its commit and flush (0.1 to 0.2 s whatever the run's length) and the first
    /// block's; 300,000 events (about 4 s on 2 cores) measure the sustained rate with those
    /// at a few %, where 100,000 left them at about a tenth.
    #[arg(long, default_value_t = 300_000)]
    pub events: usize,
    /// Distinct writer keys.
    #[arg(long, default_value_t = 16)]
    pub signers: usize,
    /// Transactions per `audit_submitBatch` call.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Concurrent batch calls in flight.
    #[arg(long, default_value_t = 4)]
    pub inflight: usize,
    /// Block time, ms.
    #[arg(long, default_value_t = 100)]
    pub block_time_ms: u64,
    /// Keep the chain in memory instead of sled (isolates storage cost).
    #[arg(long)]
    pub in_memory: bool,
    /// Threshold rules added to the 3 built-in QA rules in the run with contracts.
    #[arg(long, default_value_t = 20)]
    pub rules: usize,
    /// Runs of each configuration (without and with contracts, in the order ABBA ABBA…);
    /// the medians are compared.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// The events submitted (and what the threshold rules watch).
    #[arg(long, value_enum, default_value_t = Workload::Openssh)]
    pub workload: Workload,
}

/// The events a benchmark submits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// loghub's OpenSSH sample (embedded, 2,000 lines) parsed as `auth.log` lines and replayed
    /// in a loop, each pass shifted later in time; threshold rules watch its event types by
    /// `/ip` or `/user`, as an operator would configure them.
    Openssh,
    /// Worst case for rules: every event is an `ssh_auth_failure` from a new IP, and every
    /// threshold rule matches every event (grouped by `/ip`, `/user` or `/port`).
    Synthetic,
}

/// A bench event: `(event_type, entity, data)`.
type BenchEvent = (String, String, serde_json::Value);

/// The OpenSSH sample parsed once: one event per line, and the time span of one pass (ms,
/// plus a minute so passes never share a window).
fn openssh_events() -> &'static (Vec<BenchEvent>, u64) {
    static EVENTS: std::sync::OnceLock<(Vec<BenchEvent>, u64)> = std::sync::OnceLock::new();
    EVENTS.get_or_init(|| {
        let mut p = crate::ingest::parse::Parser::new(crate::ingest::Format::Syslog, "openssh");
        let evs: Vec<_> = crate::demo::SAMPLE
            .lines()
            .filter_map(|l| match p.parse(l) {
                Ok(crate::ingest::parse::Parsed::Event(e)) => {
                    Some((e.event_type, e.entity, e.data))
                }
                _ => None,
            })
            .collect();
        let times = evs.iter().filter_map(|e| e.2["time_ms"].as_u64());
        let (lo, hi) = times.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
        (evs, hi.saturating_sub(lo) + 60_000)
    })
}

/// Event `i` of a workload: `(event_type, entity, data)`.
pub fn bench_event(w: Workload, i: usize) -> BenchEvent {
    match w {
        Workload::Synthetic => (
            "ssh_auth_failure".into(),
            format!("host-{}", i % 64),
            json!({"ip": format!("10.0.{}.{}", (i / 256) % 256, i % 256), "user": "root", "port": 22, "seq": i}),
        ),
        Workload::Openssh => {
            let (evs, span) = openssh_events();
            let (ty, entity, data) = &evs[i % evs.len()];
            let mut data = data.clone();
            let pass = (i / evs.len()) as u64;
            if let Some(t) = data["time_ms"].as_u64() {
                data["time_ms"] = json!(t + pass * span);
            }
            (ty.clone(), entity.clone(), data)
        }
    }
}

/// Runs a benchmark until it ends or Ctrl-C / SIGTERM arrives.
///
/// # Errors
/// The benchmark's own error, or "interrupted" on Ctrl-C / SIGTERM. Either way the benchmark's
/// in-process nodes are dropped and its temporary directory (`$TMPDIR/auditchain-bench-*`,
/// hundreds of MB after a cluster run) is removed before this returns.
pub async fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    let bench = async {
        match cmd {
            BenchCmd::Ingest(a) => ingest(a).await,
            BenchCmd::Cluster(a) => crate::bench_cluster::run(a).await,
        }
    };
    tokio::select! {
        r = bench => r,
        () = crate::cli::shutdown_signal() => {
            bail!("interrupted by Ctrl-C or SIGTERM; the benchmark's temporary data was removed")
        }
    }
}

/// Signature verification rates of this machine, signatures/s.
#[derive(Debug, Clone, Copy)]
pub struct SigRates {
    /// One core, one at a time.
    pub single_one_core: f64,
    /// One core, batches of 64.
    pub batch64_one_core: f64,
    /// One core, batches of 256.
    pub batch256_one_core: f64,
    /// All cores, batches of 256 (as admission verifies): the ceiling ingest is compared with.
    pub batch256_all_cores: f64,
    /// All cores, batches of [`BLOCK_VERIFY_CHUNK_MAX`] (as whole blocks and sync answers are
    /// verified).
    pub block_batch_all_cores: f64,
    /// Cores used.
    pub cores: usize,
    /// Mean length of the messages verified (the workload's signing preimages), bytes.
    pub message_bytes: usize,
}

type Item = (PublicKey, Vec<u8>, Signature);

/// `n` signatures to verify for the ceiling: the signing preimages of the first `n` events of
/// `workload`, signed as `bench ingest` signs them (16 keys, on a fixed chain id), so that the
/// ceiling hashes messages of the length the node hashes (an OpenSSH event's preimage is about
/// 770 bytes; SHA-512 over it is about a tenth of a verification).
fn sig_items(n: usize, workload: Workload) -> anyhow::Result<Vec<Item>> {
    let keys: Vec<SecretKey> = (0..16u8)
        .map(|i| SecretKey::from_seed(&[i + 1; 32]))
        .collect();
    let chain_id = auditchain_primitives::Hash([7; 32]);
    (0..n)
        .map(|i| {
            let k = &keys[i % keys.len()];
            let (ty, entity, data) = bench_event(workload, i);
            let t = sign_record(chain_id, k, 0, &ty, &entity, Some(data), None)?;
            Ok((k.public_key(), t.preimage(), *t.signature()))
        })
        .collect()
}

/// Mean length of the messages in `items`, bytes.
fn mean_len(items: &[Item]) -> usize {
    items.iter().map(|(_, m, _)| m.len()).sum::<usize>() / items.len().max(1)
}

fn rate(n: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    n as f64 / t.elapsed().as_secs_f64()
}

/// How long the all-core batched rate is measured: a sustained rate over about as long as
/// an ingest run, not a burst (over 70 ms, 8,192 signatures, it read anywhere from 72k to 150k/s
/// within one minute while ingest itself held steady).
const CEILING_TIME: Duration = Duration::from_secs(1);

/// Signatures/s verified in batches of `batch`, `items` split over `cores` threads, each
/// thread going over its part again until [`CEILING_TIME`] has passed.
fn all_cores_rate(items: &[Item], cores: usize, batch: usize) -> f64 {
    let t = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for part in items.chunks(items.len().div_ceil(cores)) {
            let done = &done;
            s.spawn(move || {
                while t.elapsed() < CEILING_TIME {
                    for c in part.chunks(batch) {
                        assert!(verify_batch(c).iter().all(Result::is_ok));
                        done.fetch_add(c.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    done.into_inner() as f64 / t.elapsed().as_secs_f64()
}

/// The all-core batched rate measured again over `items` (for the ceiling beside each run:
/// this machine's speed drifts by up to 2× within minutes).
async fn ceiling_now(items: Arc<Vec<Item>>) -> anyhow::Result<f64> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    Ok(tokio::task::spawn_blocking(move || all_cores_rate(&items, cores, VERIFY_CHUNK)).await?)
}

/// Measures the verification ceiling: single and batched (64, 256) on one core over `n`
/// signatures each, and batched (256 and [`BLOCK_VERIFY_CHUNK_MAX`]) on all cores sustained over
/// `CEILING_TIME` (1 s). The messages are the signing preimages of `workload`'s events.
/// Errors: an event of `workload` that does not sign (a bug).
pub fn measure_sig_rates(n: usize, workload: Workload) -> anyhow::Result<SigRates> {
    Ok(sig_rates(&sig_items(n, workload)?))
}

/// [`measure_sig_rates`] over signatures already made.
fn sig_rates(items: &[Item]) -> SigRates {
    let n = items.len();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let single_one_core = rate(n, || {
        for (pk, m, s) in items {
            assert!(verify(pk, m, s).is_ok());
        }
    });
    let batched = |size: usize| {
        rate(n, || {
            for c in items.chunks(size) {
                assert!(verify_batch(c).iter().all(Result::is_ok));
            }
        })
    };
    let batch64_one_core = batched(64);
    let batch256_one_core = batched(256);
    let batch256_all_cores = all_cores_rate(items, cores, VERIFY_CHUNK);
    let block_batch_all_cores = all_cores_rate(items, cores, BLOCK_VERIFY_CHUNK_MAX);
    SigRates {
        single_one_core,
        batch64_one_core,
        batch256_one_core,
        batch256_all_cores,
        block_batch_all_cores,
        cores,
        message_bytes: mean_len(items),
    }
}

async fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    if a.events == 0 || a.signers == 0 || a.batch == 0 || a.inflight == 0 || a.repeat == 0 {
        bail!("--events, --signers, --batch, --inflight and --repeat must be positive");
    }
    println!("measuring signature verification ceiling…");
    let ticks = CpuTicks::now();
    let workload = a.workload;
    // signed once: the ceiling is measured again over the same signatures between runs
    let items = Arc::new(tokio::task::spawn_blocking(move || sig_items(8192, workload)).await??);
    let sig = tokio::task::spawn_blocking({
        let items = Arc::clone(&items);
        move || sig_rates(&items)
    })
    .await?;
    println!(
        "ed25519 (ZIP-215) verify, {:?} events' signing preimages ({} bytes on average): single 1 core {:.0}/s | batch64 1 core {:.0}/s | batch256 1 core {:.0}/s | batch256 {} cores {:.0}/s | batch{BLOCK_VERIFY_CHUNK_MAX} {} cores {:.0}/s (blocks and sync; admission verifies in batches of 256){}",
        a.workload,
        sig.message_bytes,
        sig.single_one_core,
        sig.batch64_one_core,
        sig.batch256_one_core,
        sig.cores,
        sig.batch256_all_cores,
        sig.cores,
        sig.block_batch_all_cores,
        CpuTicks::steal_note(ticks)
    );

    let bare = bare_contracts();
    let rules = contracts_with_rules(a.rules, a.workload);
    println!(
        "executor alone (no signatures, no storage), blocks of 1,000 events, µs/event without contracts' work → with rewards, SLAs, the 3 built-in rules and {} threshold rules:",
        a.rules
    );
    // the chosen workload, and the worst case beside it
    let mut workloads = vec![a.workload];
    if a.workload != Workload::Synthetic {
        workloads.push(Workload::Synthetic);
    }
    for w in workloads {
        let (b, r) = (bare.clone(), contracts_with_rules(a.rules, w));
        let (us_bare, us_rules) =
            tokio::task::spawn_blocking(move || (execute_cost_us(&b, w), execute_cost_us(&r, w)))
                .await?;
        let ((us_bare, _), (us_rules, alerts)) = (us_bare?, us_rules?);
        println!(
            "  {w:?}: {us_bare:.2} → {us_rules:.2} µs/event (rule evaluation {:.2} µs/event; {alerts:.3} alerts/event)",
            us_rules - us_bare
        );
    }
    // Alternate the two configurations in the order ABBA ABBA…, so that a machine that
    // speeds up or slows down steadily during the benchmark (this one drifts by up to 2×
    // within minutes, often downwards) hits both alike; with AB AB… the second of each pair
    // always ran on the slower machine and the contracts' cost read high.
    let (mut without, mut with) = (Vec::new(), Vec::new());
    // the ceiling is measured again after each run and set beside the next one
    let mut ceilings = vec![sig.batch256_all_cores];
    for i in 0..2 * a.repeat {
        let contracts = matches!(i % 4, 1 | 2);
        let (config, label, out) = if contracts {
            (
                &rules,
                "3 built-in + threshold rules, rewards, SLA",
                &mut with,
            )
        } else {
            (&bare, "no rewards, rules or SLAs", &mut without)
        };
        let c = ceilings[ceilings.len() - 1];
        out.push(ingest_once(&a, sig.cores, c, config.clone(), label).await?);
        ceilings.push(ceiling_now(Arc::clone(&items)).await?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m0, m1) = (median(&mut without), median(&mut with));
    let cs = ceilings.clone();
    let mc = median(&mut ceilings);
    println!(
        "ceiling (all-core batched verification) measured before, between and after the runs: {cs:.0?}/s, median {mc:.0}/s\n\
         median ingest without contracts ÷ median ceiling: {:.1} % (target ≥ 50 %)",
        100.0 * m0 / mc
    );
    println!(
        "runs, events/s: without contracts {without:.0?} | with {with:.0?}\n\
         contracts cost {:.1} % of ingest throughput (medians {m0:.0} → {m1:.0} events/s, {:?} workload; target ≤ 10 %)",
        100.0 * (m0 - m1) / m0,
        a.workload
    );
    Ok(())
}

/// A contracts section that does nothing per event: no reward table, block reward, SLA or
/// rule (the contracts still run: the baseline for their cost).
pub fn bare_contracts() -> ContractsConfig {
    let mut c = ContractsConfig::default();
    c.rewards.table.clear();
    c.rewards.block_reward = 0;
    c.sla.clear();
    c.qa_rules.clear();
    c
}

/// The threshold rules an operator would set on OpenSSH's events: `(event_type, group_by)`.
const OPENSSH_RULES: [(&str, Option<&str>); 20] = [
    ("ssh_auth_failure", Some("/ip")),
    ("ssh_auth_failure", Some("/user")),
    ("ssh_invalid_user", Some("/ip")),
    ("ssh_invalid_user", Some("/user")),
    ("ssh_invalid_user_preauth", Some("/user")),
    ("ssh_disconnect", Some("/ip")),
    ("ssh_connection_closed", Some("/ip")),
    ("ssh_no_identification", Some("/ip")),
    ("ssh_breakin_attempt", Some("/ip")),
    ("ssh_pam_auth_failure", Some("/ip")),
    ("ssh_pam_auth_failure", Some("/user")),
    ("ssh_pam_repeated_failures", Some("/ip")),
    ("ssh_pam_max_retries", None),
    ("ssh_pam_user_unknown", None),
    ("ssh_too_many_failures", Some("/user")),
    ("ssh_accepted", Some("/ip")),
    ("ssh_accepted", Some("/user")),
    ("ssh_session_opened", Some("/user")),
    ("ssh_session_closed", Some("/user")),
    ("ssh_connection_reset", None),
];

/// The defaults (rewards, SLA, the 3 built-in rules) plus `n` threshold rules (counts 3–7
/// within 60 s) for `workload`: on OpenSSH, each watches one event type by `/ip` or `/user`
/// in the log's own time (cycling through `OPENSSH_RULES`); on the synthetic worst case,
/// every rule matches every event, grouped by `/ip`, `/user` or `/port` in turn.
pub fn contracts_with_rules(n: usize, workload: Workload) -> ContractsConfig {
    let mut c = ContractsConfig::default();
    for i in 0..n {
        let count = 3 + i % 5;
        let conditions = match workload {
            Workload::Synthetic => {
                let group = ["/ip", "/user", "/port"][i % 3];
                json!({"event_type": "ssh_auth_failure",
                    "fields": [{"pointer": "/port", "op": "ge", "value": 1}],
                    "threshold": {"count": count, "window_ms": 60_000, "group_by": group}})
            }
            Workload::Openssh => {
                let (ty, group) = OPENSSH_RULES[i % OPENSSH_RULES.len()];
                json!({"event_type": ty,
                    "threshold": {"count": count, "window_ms": 60_000, "group_by": group,
                        "time_pointer": "/time_ms"}})
            }
        };
        let rule = serde_json::from_value(json!({
            "name": format!("threshold {i:02}"), "active": true,
            "conditions": conditions,
            "actions": [{"type": "alert", "severity": "warning", "message": format!("threshold {i}")}]
        }));
        if let Ok(r) = rule {
            c.qa_rules.push(r);
        }
    }
    c
}

/// Mean execution time per event of 10 blocks of 1,000 `workload` events on in-memory state
/// (µs), and the alerts raised per event.
fn execute_cost_us(contracts: &ContractsConfig, workload: Workload) -> anyhow::Result<(f64, f64)> {
    use auditchain_contracts::{BlockCtx, MemState};
    let key = SecretKey::from_seed(&[7; 32]);
    let mut g = Genesis::new_round_robin(
        "bench",
        0,
        100,
        &[key.public_key()],
        &[key.public_key()],
        &[],
    );
    g.contracts = contracts.clone();
    g.limits.max_block_txs = 1_000;
    let chain = g.hash();
    let mut state: MemState = g.initial_state().map_err(anyhow::Error::msg)?;
    let mut root = g.block().header.state_root;
    let mut nonce = 0u64;
    let mut spent = Duration::ZERO;
    let mut alerts = 0usize;
    for height in 1..=10u64 {
        let txs = (0..1_000)
            .map(|_| {
                let (ty, entity, data) = bench_event(workload, nonce as usize);
                nonce += 1;
                sign_record(chain, &key, nonce - 1, &ty, &entity, Some(data), None)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let ctx = BlockCtx {
            height,
            timestamp_ms: height * 100,
            proposer: key.public_key(),
            round_robin: true,
        };
        let next = nonce - 1_000;
        let t = Instant::now();
        let out = crate::execute::execute(&g, &chain, &root, ctx, &txs, &state, |_| {
            Ok::<u64, std::convert::Infallible>(next)
        })?;
        spent += t.elapsed();
        alerts += out
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e.event,
                    auditchain_contracts::ContractEvent::AlertRaised { .. }
                )
            })
            .count();
        state.apply(&out.state_writes);
        root = out.state_root;
    }
    Ok((
        spent.as_secs_f64() * 1e6 / 10_000.0,
        alerts as f64 / 10_000.0,
    ))
}

/// One end-to-end ingest run with `contracts` in genesis; returns committed events/s.
/// `ceiling` is the all-core batched verification rate measured just before, per s.
async fn ingest_once(
    a: &IngestArgs,
    cores: usize,
    ceiling: f64,
    contracts: ContractsConfig,
    label: &str,
) -> anyhow::Result<f64> {
    println!("--- ingest with contracts: {label}");
    let validator = SecretKey::generate();
    let writers: Vec<SecretKey> = (0..a.signers).map(|_| SecretKey::generate()).collect();
    let writer_keys: Vec<PublicKey> = writers.iter().map(SecretKey::public_key).collect();
    let per_signer = u32::try_from(a.events.div_ceil(a.signers) + 1).unwrap_or(u32::MAX);
    let mut genesis = Genesis::new_round_robin(
        "bench",
        now_ms(),
        a.block_time_ms,
        &[validator.public_key()],
        &writer_keys,
        &[],
    );
    genesis.limits = Limits {
        mempool_max_txs: u32::try_from(a.events + 1).unwrap_or(u32::MAX).max(200_000),
        mempool_max_per_signer: per_signer.max(Limits::default().mempool_max_per_signer),
        mempool_max_bytes: 4 << 30,
        ..Limits::default()
    };
    genesis.contracts = contracts;
    genesis.validate()?;
    let chain_id = genesis.hash();

    println!(
        "pre-signing {} events with {} keys on {} cores…",
        a.events, a.signers, cores
    );
    let signed = presign(chain_id, Arc::new(writers), 0..a.events, a.workload).await?;

    let dir = tempfile::Builder::new()
        .prefix("auditchain-bench-")
        .tempdir()?;
    let node = Node::start(NodeOptions {
        genesis,
        data_dir: (!a.in_memory).then(|| dir.path().join("data")),
        key: Some(validator),
        rpc: RpcConfig {
            addr: ([127, 0, 0, 1], 0).into(),
            ..RpcConfig::default()
        },
        p2p: None,
        admin_addr: None,
    })
    .await?;
    let url = node.rpc_url();
    let lanes = a.inflight;
    let mut lane_batches: Vec<Vec<EncodedBatch>> = (0..lanes).map(|_| Vec::new()).collect();
    for (i, b) in signed.chunks(a.batch).enumerate() {
        lane_batches[i % lanes].push(EncodedBatch::new(b.to_vec())?);
    }
    drop(signed);
    println!(
        "submitting over JSON-RPC to {url} ({} per batch, {} in flight)…",
        a.batch, a.inflight
    );
    let cpu0 = process_cpu_secs();
    let ticks0 = CpuTicks::now();
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for lane in lane_batches {
        let url = url.clone();
        tasks.spawn(async move {
            let mut c = BatchPoster::connect(&url).await?;
            let (mut ok, mut rejected, mut retries) = (0usize, 0usize, 0usize);
            for batch in lane {
                let o = submit_with_retry(&mut c, batch).await?;
                ok += o.admitted;
                rejected += o.rejected;
                retries += o.retries;
            }
            anyhow::Ok((ok, rejected, retries))
        });
    }
    let (mut admitted, mut rejected, mut retries) = (0, 0, 0);
    while let Some(r) = tasks.join_next().await {
        let (o, rj, rt) = r??;
        admitted += o;
        rejected += rj;
        retries += rt;
    }
    let submitted_at = t0.elapsed();
    let c = auditchain_rpc::http_client(&url, Duration::from_secs(10))?;
    let target = admitted as u64;
    let head = loop {
        let h = c.get_head().await?;
        if h.history_size >= target {
            break h;
        }
        if t0.elapsed() > Duration::from_secs(600) {
            bail!(
                "only {} of {target} events committed after 600 s",
                h.history_size
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let total = t0.elapsed();
    let cpu = process_cpu_secs().zip(cpu0).map(|(b, a)| b - a);
    node.stop().await;
    let eps = head.history_size as f64 / total.as_secs_f64();
    println!(
        "ingest: {} events committed in {} blocks in {:.2} s (all admitted after {:.2} s): {:.0} events/s end to end [{}]{}",
        head.history_size,
        head.height,
        total.as_secs_f64(),
        submitted_at.as_secs_f64(),
        eps,
        if a.in_memory {
            "in-memory store"
        } else {
            "sled, flushed per block"
        },
        CpuTicks::steal_note(ticks0)
    );
    println!("rejected: {rejected}; mempool-full retries: {retries}");
    if let Some(cpu) = cpu {
        println!(
            "CPU (node and client): {cpu:.2} core-s, {:.2} of {} cores busy on average",
            cpu / total.as_secs_f64(),
            cores
        );
    }
    println!(
        "ratio to the all-core batched verification rate measured just before ({ceiling:.0}/s): {:.1} % (target ≥ 50 %)",
        100.0 * eps / ceiling
    );
    if rejected > 0 {
        bail!("{rejected} events were rejected");
    }
    Ok(eps)
}

/// CPU time (user + system) this process has used, s, from `/proc/self/stat` (fields 14 and
/// 15, in the kernel's fixed 100 ticks per second); `None` where that file is missing.
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields after it are space-separated.
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
    let utime: f64 = rest.nth(11)?.parse().ok()?;
    let stime: f64 = rest.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Machine-wide CPU time counters from the first line of `/proc/stat` (proc(5)), ticks.
#[derive(Debug, Clone, Copy)]
pub struct CpuTicks {
    /// Time this virtual machine wanted a CPU while the hypervisor ran something else.
    steal: u64,
    /// All time: user, nice, system, idle, iowait, irq, softirq and steal.
    total: u64,
}

impl CpuTicks {
    /// The counters now; `None` where `/proc/stat` is missing or does not parse.
    pub fn now() -> Option<CpuTicks> {
        Self::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    fn parse(stat: &str) -> Option<CpuTicks> {
        let v: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        (v.len() == 8).then(|| CpuTicks {
            steal: v[7],
            total: v.iter().sum(),
        })
    }

    /// Text for a figure measured since `start`: the share of CPU time the hypervisor took
    /// (steal, %), which lowers every rate measured meanwhile; empty where unknown.
    pub fn steal_note(start: Option<CpuTicks>) -> String {
        match (start, CpuTicks::now()) {
            (Some(a), Some(b)) if b.total > a.total => format!(
                " [hypervisor steal {:.0} % of CPU time]",
                100.0 * b.steal.saturating_sub(a.steal) as f64 / (b.total - a.total) as f64
            ),
            _ => String::new(),
        }
    }
}

/// Signs `record_event`s for event indexes `range` on all cores: event `i` is signed by
/// `writers[i % k]` with nonce `i / k` (so consecutive ranges continue every signer's nonces).
/// Returns each in the raw form ([`TxParam::raw`]), as a bulk client would send it.
pub async fn presign(
    chain_id: auditchain_primitives::Hash,
    writers: Arc<Vec<SecretKey>>,
    range: std::ops::Range<usize>,
    workload: Workload,
) -> anyhow::Result<Vec<String>> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let k = writers.len();
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let idx: Vec<usize> = range.collect();
        let per = idx.len().div_ceil(cores).max(1);
        std::thread::scope(|s| {
            let parts: Vec<_> = idx
                .chunks(per)
                .map(|part| {
                    let w = &writers;
                    s.spawn(move || {
                        part.iter()
                            .map(|&i| {
                                let (ty, entity, data) = bench_event(workload, i);
                                sign_record(
                                    chain_id,
                                    &w[i % k],
                                    (i / k) as u64,
                                    &ty,
                                    &entity,
                                    Some(data),
                                    None,
                                )
                                .map(|t| TxParam::raw(&t))
                            })
                            .collect::<anyhow::Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(idx.len());
            for p in parts {
                all.extend(
                    p.join()
                        .map_err(|_| anyhow::anyhow!("signer thread panicked"))??,
                );
            }
            Ok(all)
        })
    })
    .await?
}

/// What [`submit_with_retry`] achieved for one batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchOutcome {
    /// Transactions admitted.
    pub admitted: usize,
    /// Transactions refused for a reason other than a full mempool.
    pub rejected: usize,
    /// Resubmissions of mempool-full leftovers.
    pub retries: usize,
}

/// A batch of signed transactions with its whole `audit_submitBatch` request already encoded,
/// made before a benchmark's clock starts: a real client encodes on its own machine, as it
/// signs there, so neither is charged to the node sharing this one.
pub struct EncodedBatch {
    txs: Vec<String>,
    request: bytes::Bytes,
}

impl EncodedBatch {
    /// Encodes `txs` (raw transactions, [`TxParam::raw`]) as a JSON-RPC 2.0
    /// `audit_submitBatch` request. Errors: encoding failures.
    pub fn new(txs: Vec<String>) -> anyhow::Result<Self> {
        #[derive(serde::Serialize)]
        struct Request<'a> {
            jsonrpc: &'static str,
            id: u32,
            method: &'static str,
            params: (&'a [String],),
        }
        let request = serde_json::to_vec(&Request {
            jsonrpc: "2.0",
            id: 1,
            method: "audit_submitBatch",
            params: (&txs,),
        })?;
        Ok(EncodedBatch {
            txs,
            request: request.into(),
        })
    }

    /// Transactions in the batch.
    pub fn tx_count(&self) -> usize {
        self.txs.len()
    }
}

/// One keep-alive HTTP/1.1 connection that POSTs pre-encoded JSON-RPC requests (hyper's
/// connection API): a benchmark's load generator copies bytes instead of building each
/// request again through the typed client.
pub struct BatchPoster {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    host: String,
}

impl BatchPoster {
    /// Connects to `url` (`http://host:port`). Errors: a bad URL or a refused connection.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let host = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("{url}: expected http://host:port"))?
            .trim_end_matches('/')
            .to_string();
        let stream = tokio::net::TcpStream::connect(&host).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(BatchPoster { sender, host })
    }

    /// POSTs `request` and returns the `result` of the JSON-RPC response. Errors: transport
    /// failures, a JSON-RPC error, or a body that is not a response with a result.
    async fn call<T: serde::de::DeserializeOwned>(
        &mut self,
        request: bytes::Bytes,
    ) -> anyhow::Result<T> {
        use http_body_util::BodyExt;
        #[derive(serde::Deserialize)]
        struct Response<T> {
            result: Option<T>,
            error: Option<serde_json::Value>,
        }
        self.sender.ready().await?;
        let req = hyper::Request::post("/")
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(request))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        let r: Response<T> = serde_json::from_slice(&body)
            .with_context(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&body)))?;
        match (r.result, r.error) {
            (Some(v), _) => Ok(v),
            (None, e) => bail!("JSON-RPC error: {}", e.unwrap_or_default()),
        }
    }
}

/// Submits a batch with `audit_submitBatch`, resubmitting the transactions refused with
/// "mempool full" (code 1010) every 20 ms until none is left. Errors: RPC failures.
pub async fn submit_with_retry(
    c: &mut BatchPoster,
    batch: EncodedBatch,
) -> anyhow::Result<BatchOutcome> {
    let mut o = BatchOutcome::default();
    let mut batch = batch;
    loop {
        let outs: Vec<SubmitOutcome> = c.call(batch.request.clone()).await?;
        if outs.len() != batch.txs.len() {
            bail!(
                "{} outcomes for {} transactions",
                outs.len(),
                batch.txs.len()
            );
        }
        let mut retry = Vec::new();
        for (tx, r) in batch.txs.into_iter().zip(outs) {
            match r.error {
                None => o.admitted += 1,
                Some(e) if e.code == 1010 => retry.push(tx),
                Some(_) => o.rejected += 1,
            }
        }
        if retry.is_empty() {
            return Ok(o);
        }
        o.retries += 1;
        batch = EncodedBatch::new(retry)?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_ticks_read_steal_and_total_from_proc_stat() {
        let t =
            super::CpuTicks::parse("cpu  100 2 30 400 5 0 6 7 9 0\ncpu0 50 1 15 200 2 0 3 3 4 0\n")
                .unwrap();
        assert_eq!((t.steal, t.total), (7, 100 + 2 + 30 + 400 + 5 + 6 + 7));
        assert!(super::CpuTicks::parse("cpu0 1 2 3\n").is_none());
        assert!(super::CpuTicks::parse("cpu  1 2 x 4 5 6 7 8\n").is_none());
        assert!(
            super::CpuTicks::parse("cpu  1 2 3\n").is_none(),
            "too few fields"
        );
    }

    use super::*;

    #[test]
    fn the_openssh_workload_replays_the_sample_later_each_pass_and_every_rule_has_events() {
        let (evs, span) = openssh_events();
        assert!(evs.len() > 1_900, "{} events parsed", evs.len());
        let n = evs.len();
        let (_, _, first) = bench_event(Workload::Openssh, 0);
        let (_, _, again) = bench_event(Workload::Openssh, n);
        let t0 = first["time_ms"].as_u64().expect("time_ms");
        assert_eq!(again["time_ms"].as_u64(), Some(t0 + span));
        for (ty, group) in OPENSSH_RULES {
            let hits = evs
                .iter()
                .filter(|(t, _, d)| t == ty && group.is_none_or(|g| d.pointer(g).is_some()))
                .count();
            assert!(hits > 0, "no {ty} event with {group:?} in the sample");
        }
        let c = contracts_with_rules(20, Workload::Openssh);
        assert_eq!(c.qa_rules.len(), 3 + 20, "every rule parses");
    }
}
