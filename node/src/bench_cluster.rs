//! `auditchain bench cluster`: N validators in this process over libp2p on 127.0.0.1, each
//! with its own sled directory (they share this machine's cores). Prints, in one run:
//! - the batched (256) all-core ZIP-215 verification rate of this machine;
//! - finalized events/s under full load (pre-signed events submitted in pipelined
//!   `audit_submitBatch` calls spread over all nodes, until final on node 0);
//! - submit→final latency p50/p99 at full load and at half that rate, from probes: on each
//!   node, one `audit_submitAndWait` every 100 ms (after the previous answer), whose answer
//!   comes only after the event is final and flushed on that node;
//! - the catch-up rate of a fresh observer syncing the whole chain, events/s.
//!
//! Figures, not assertions: the targets are printed beside them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use auditchain_genesis::{Genesis, Limits};
use auditchain_primitives::{PublicKey, SecretKey};
use auditchain_rpc::types::TxParam;
use auditchain_rpc::{AuditChainApiClient, RpcConfig};
use serde_json::json;

use crate::bench::{
    BatchPoster, ClusterArgs, CpuTicks, EncodedBatch, measure_sig_rates, presign, submit_with_retry,
};
use crate::chain::now_ms;
use crate::cli::sign_record;
use crate::node::{Node, NodeOptions, P2pOptions};

async fn start_node(
    genesis: &Genesis,
    dir: &std::path::Path,
    key: Option<SecretKey>,
    node_key: Option<SecretKey>,
    peers: Vec<String>,
    observers: &[PublicKey],
) -> anyhow::Result<(Node, String)> {
    let node = Node::start(NodeOptions {
        genesis: genesis.clone(),
        data_dir: Some(dir.to_path_buf()),
        key,
        rpc: RpcConfig {
            addr: ([127, 0, 0, 1], 0).into(),
            ..RpcConfig::default()
        },
        p2p: Some(P2pOptions {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            peers,
            observers: observers.to_vec(),
            node_key,
        }),
        admin_addr: None,
    })
    .await?;
    let addr = node
        .net
        .as_ref()
        .context("network")?
        .listen_addrs()
        .await?
        .into_iter()
        .next()
        .context("no listen address")?;
    Ok((node, addr))
}

/// Percentile `p` (0–100) of sorted samples, ms.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A prober's result: latencies (ms) and its next nonce.
type Prober = tokio::task::JoinHandle<anyhow::Result<(Vec<f64>, u64)>>;

/// Submits one event every 100 ms through `submitAndWait` to `url`, signed by `key` from
/// `first_nonce`, until `stop`; returns the latencies (ms) and the next nonce.
fn spawn_prober(
    url: String,
    chain_id: auditchain_primitives::Hash,
    key: SecretKey,
    first_nonce: u64,
    stop: Arc<AtomicBool>,
) -> Prober {
    tokio::spawn(async move {
        let client = auditchain_rpc::http_client(&url, Duration::from_secs(60))?;
        let mut nonce = first_nonce;
        let mut lat = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let tx = sign_record(
                chain_id,
                &key,
                nonce,
                "probe",
                "bench-probe",
                Some(json!({ "n": nonce })),
                None,
            )?;
            let t = Instant::now();
            client
                .submit_and_wait(TxParam::from(&tx), Some(30_000))
                .await?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            nonce += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok((lat, nonce))
    })
}

/// One prober per node (each with its own key, from `nonces`) until `stop` is set and they
/// finish; returns all latencies sorted (ms) and each prober's next nonce.
struct Probes {
    stop: Arc<AtomicBool>,
    tasks: Vec<Prober>,
}

impl Probes {
    fn start(
        urls: &[String],
        chain_id: auditchain_primitives::Hash,
        keys: &[SecretKey],
        nonces: &[u64],
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = urls
            .iter()
            .zip(keys)
            .zip(nonces)
            .map(|((u, k), n)| spawn_prober(u.clone(), chain_id, k.clone(), *n, Arc::clone(&stop)))
            .collect();
        Probes { stop, tasks }
    }

    async fn finish(self) -> anyhow::Result<(Vec<f64>, Vec<u64>)> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        let mut next = Vec::new();
        for t in self.tasks {
            let (lat, n) = t.await??;
            all.extend(lat);
            next.push(n);
        }
        all.sort_by(f64::total_cmp);
        Ok((all, next))
    }
}

/// `txs` in batches of `size`, encoded before the clock starts.
fn encode_batches(txs: &[String], size: usize) -> anyhow::Result<Vec<EncodedBatch>> {
    txs.chunks(size)
        .map(|b| EncodedBatch::new(b.to_vec()))
        .collect()
}

/// Submits `batches` over `urls` (batch i to node i mod n), at most `rate` events/s if given,
/// retrying mempool-full answers; returns the number admitted.
async fn submit_all(
    urls: &[String],
    batches: Vec<EncodedBatch>,
    rate: Option<f64>,
) -> anyhow::Result<usize> {
    let n = urls.len();
    let mut lanes: Vec<Vec<EncodedBatch>> = (0..n).map(|_| Vec::new()).collect();
    for (i, b) in batches.into_iter().enumerate() {
        lanes[i % n].push(b);
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (lane_no, lane) in lanes.into_iter().enumerate() {
        let url = urls[lane_no].clone();
        tasks.spawn(async move {
            let mut c = BatchPoster::connect(&url).await?;
            let mut ok = 0usize;
            let mut sent = 0usize;
            for batch in lane {
                if let Some(r) = rate {
                    // this lane's share of the rate
                    let due = Duration::from_secs_f64(sent as f64 * n as f64 / r);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
                sent += batch.tx_count();
                let o = submit_with_retry(&mut c, batch).await?;
                if o.rejected > 0 {
                    bail!("{} events rejected", o.rejected);
                }
                ok += o.admitted;
            }
            anyhow::Ok(ok)
        });
    }
    let mut admitted = 0;
    while let Some(r) = tasks.join_next().await {
        admitted += r??;
    }
    Ok(admitted)
}

/// Waits until node `url`'s head holds at least `events` events; returns the head.
async fn wait_events(
    url: &str,
    events: u64,
    limit: Duration,
) -> anyhow::Result<auditchain_rpc::types::HeadView> {
    let c = auditchain_rpc::http_client(url, Duration::from_secs(10))?;
    let t = Instant::now();
    loop {
        let h = c.get_head().await?;
        if h.history_size >= events {
            return Ok(h);
        }
        if t.elapsed() > limit {
            bail!(
                "only {} of {events} events final after {limit:?}",
                h.history_size
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs the cluster benchmark.
pub async fn run(a: ClusterArgs) -> anyhow::Result<()> {
    if a.nodes == 0 || a.events == 0 || a.signers == 0 || a.batch == 0 {
        bail!("--nodes, --events, --signers and --batch must be positive");
    }
    println!("measuring signature verification ceiling…");
    let ticks = CpuTicks::now();
    let workload = a.workload;
    let sig = tokio::task::spawn_blocking(move || measure_sig_rates(8192, workload)).await??;
    println!(
        "ed25519 (ZIP-215) verify on {} cores, {:?} events' signing preimages ({} bytes on average): batches of 256 (admission) {:.0}/s, of {} (blocks, sync) {:.0}/s{}",
        sig.cores,
        a.workload,
        sig.message_bytes,
        sig.batch256_all_cores,
        crate::verify::BLOCK_VERIFY_CHUNK_MAX,
        sig.block_batch_all_cores,
        CpuTicks::steal_note(ticks)
    );

    let validators: Vec<SecretKey> = (0..a.nodes).map(|_| SecretKey::generate()).collect();
    let writers: Vec<SecretKey> = (0..a.signers).map(|_| SecretKey::generate()).collect();
    let probers: Vec<SecretKey> = (0..a.nodes).map(|_| SecretKey::generate()).collect();
    let observer = SecretKey::generate();
    let writer_keys: Vec<PublicKey> = writers
        .iter()
        .chain(&probers)
        .map(SecretKey::public_key)
        .collect();
    let vals: Vec<PublicKey> = validators.iter().map(SecretKey::public_key).collect();
    let mut genesis = Genesis::new_round_robin(
        "bench-cluster",
        now_ms(),
        a.block_time_ms,
        &vals,
        &writer_keys,
        &[],
    );
    genesis.limits = Limits {
        mempool_max_txs: 1_000_000,
        mempool_max_per_signer: 1_000_000,
        mempool_max_bytes: 4 << 30,
        max_block_txs: a.max_block_txs,
        ..Limits::default()
    };
    genesis.validate()?;
    let chain_id = genesis.hash();
    let observers = [observer.public_key()];

    let root = tempfile::Builder::new()
        .prefix("auditchain-bench-cluster-")
        .tempdir()?;
    let mut nodes = Vec::new();
    let mut addrs: Vec<String> = Vec::new();
    for (i, k) in validators.iter().enumerate() {
        let (node, addr) = start_node(
            &genesis,
            &root.path().join(format!("node{i}")),
            Some(k.clone()),
            None,
            addrs.clone(),
            &observers,
        )
        .await?;
        nodes.push(node);
        addrs.push(addr);
    }
    let urls: Vec<String> = nodes.iter().map(Node::rpc_url).collect();
    // wait for the full mesh
    let t = Instant::now();
    for n in &nodes {
        let net = n.net.as_ref().context("network")?;
        while net.peers().await?.len() + 1 < a.nodes {
            if t.elapsed() > Duration::from_secs(30) {
                bail!("validators did not connect within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // gossip subscriptions
    println!(
        "{} validators on loopback; pre-signing {} events ({:?} workload)…",
        a.nodes, a.events, a.workload
    );
    let writers = Arc::new(writers);
    let full = presign(chain_id, Arc::clone(&writers), 0..a.events, a.workload).await?;
    // the client's requests are ready before the clock starts, as its signatures are
    let batches = encode_batches(&full, a.batch)?;

    println!(
        "full load: submitting {admitted_goal} events to {n} nodes…",
        admitted_goal = a.events,
        n = a.nodes
    );
    let probe = Probes::start(&urls, chain_id, &probers, &vec![0; a.nodes]);
    let ticks = CpuTicks::now();
    let t0 = Instant::now();
    let admitted = submit_all(&urls, batches, None).await?;
    let head = wait_events(&urls[0], admitted as u64, Duration::from_secs(900)).await?;
    let full_secs = t0.elapsed().as_secs_f64();
    let (lat_full, next_nonces) = probe.finish().await?;
    let full_rate = admitted as f64 / full_secs;
    println!(
        "full load: {admitted} events final on node 0 in {full_secs:.2} s ({} blocks): {full_rate:.0} events/s; submit→final p50 {:.0} ms, p99 {:.0} ms ({} probes){}",
        head.height,
        percentile(&lat_full, 50.0),
        percentile(&lat_full, 99.0),
        lat_full.len(),
        CpuTicks::steal_note(ticks)
    );

    // half load
    let half_rate = full_rate / 2.0;
    let half_n = ((half_rate * a.half_load_secs as f64) as usize).max(a.batch);
    let half = presign(
        chain_id,
        Arc::clone(&writers),
        a.events..a.events + half_n,
        a.workload,
    )
    .await?;
    let small = (a.batch / 4).max(1);
    let batches = encode_batches(&half, small)?;
    let probe = Probes::start(&urls, chain_id, &probers, &next_nonces);
    let ticks = CpuTicks::now();
    let before = head.history_size;
    let admitted_half = submit_all(&urls, batches, Some(half_rate)).await?;
    let head = wait_events(
        &urls[0],
        before + admitted_half as u64,
        Duration::from_secs(900),
    )
    .await?;
    let (lat_half, _) = probe.finish().await?;
    println!(
        "half load ({half_rate:.0} events/s for ~{} s): submit→final p50 {:.0} ms, p99 {:.0} ms ({} probes){}",
        a.half_load_secs,
        percentile(&lat_half, 50.0),
        percentile(&lat_half, 99.0),
        lat_half.len(),
        CpuTicks::steal_note(ticks)
    );

    // catch-up of a fresh observer
    let target = head.history_size;
    let ticks = CpuTicks::now();
    let t1 = Instant::now();
    let (fresh, _) = start_node(
        &genesis,
        &root.path().join("fresh"),
        None,
        Some(observer),
        addrs.clone(),
        &observers,
    )
    .await?;
    let caught = wait_events(&fresh.rpc_url(), target, Duration::from_secs(900)).await?;
    let catch_secs = t1.elapsed().as_secs_f64();
    println!(
        "catch-up: a fresh node synced {} blocks / {} events in {catch_secs:.2} s: {:.0} events/s{}",
        caught.height,
        caught.history_size,
        caught.history_size as f64 / catch_secs,
        CpuTicks::steal_note(ticks)
    );
    println!(
        "targets (2 cores shared by all nodes): ≥ 12,000 events/s final; p99 ≤ 250 ms at half load; catch-up ≥ 50,000 events/s"
    );
    fresh.stop().await;
    for n in nodes {
        n.stop().await;
    }
    Ok(())
}
