//! `auditchain demo`: the main job on an embedded default. Starts a local cluster of 3
//! validators (BFT finality, libp2p on loopback, sled in a temporary directory, generated
//! keys), ingests the bundled real sample (loghub's OpenSSH log, `examples/loghub/`) through
//! the same code as `auditchain ingest`, reconciles the sidecar against another node, checks
//! that every node serves the same trail, prints a summary, writes one receipt and verifies it
//! offline against the genesis, and stops the cluster (`--keep` leaves it running).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use auditchain_genesis::Genesis;
use auditchain_primitives::SecretKey;
use auditchain_rpc::types::TrailQuery;
use auditchain_rpc::{AuditChainApiClient, HttpClient, RpcConfig};

use crate::chain::now_ms;
use crate::ingest::{Format, IngestOptions};
use crate::keyfile;
use crate::node::{Node, NodeOptions, P2pOptions};
use crate::verify::verify_receipt;

/// The bundled sample: loghub's OpenSSH_2k.log (see examples/loghub/README.md for the
/// attribution and terms).
pub const SAMPLE: &str = include_str!("../../examples/loghub/OpenSSH_2k.log");

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Validators in the cluster (1–16).
    pub validators: usize,
    /// Files to ingest instead of the bundled sample (empty: the sample).
    pub files: Vec<PathBuf>,
    /// Their format.
    pub format: Format,
    /// Leave the cluster running (until Ctrl-C) and print its RPC URLs.
    pub keep: bool,
}

/// Runs the demo. Errors: any step failing, including a discrepancy or an unverifiable
/// receipt.
pub async fn run(o: DemoOptions) -> anyhow::Result<()> {
    if !(1..=16).contains(&o.validators) {
        bail!("--validators must be 1–16");
    }
    if std::env::var_os("RUST_LOG").is_none() {
        // the nodes' own logs would drown the summary; RUST_LOG=info brings them back
        let _ = crate::logging::set_filter("warn");
    }
    let t0 = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("auditchain-demo-")
        .tempdir()?;
    let keys: Vec<SecretKey> = (0..o.validators).map(|_| SecretKey::generate()).collect();
    let writer = SecretKey::generate();
    let writer_path = dir.path().join("writer.key");
    keyfile::write(&writer_path, &writer, true)?;
    let mut genesis = Genesis::new_round_robin(
        "demo",
        now_ms(),
        100,
        &keys.iter().map(SecretKey::public_key).collect::<Vec<_>>(),
        &[writer.public_key()],
        &[writer.public_key()],
    );
    // blocks of at most 500 events: a few blocks to look at, each verified well inside the
    // proposal timeout even by an unoptimised build
    genesis.limits.max_block_txs = 500;
    genesis.contracts.qa_rules.push(brute_force_rule()?);
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json_pretty() + "\n")?;
    let nodes = start_cluster(dir.path(), &genesis, &keys).await?;
    println!(
        "started {} validators of chain {} (round-robin BFT, ⌊2n/3⌋+1 to finalize) in {}",
        nodes.len(),
        genesis.hash(),
        dir.path().display()
    );
    for (i, n) in nodes.iter().enumerate() {
        println!("  node {i}: {}", n.rpc_url());
    }
    let result = drive(dir.path(), &nodes, &genesis, &writer, &o).await;
    if result.is_ok() && o.keep {
        println!(
            "--keep: the cluster keeps running; writer key {}, genesis {}; Ctrl-C stops it",
            writer_path.display(),
            genesis_path.display()
        );
        crate::cli::shutdown_signal().await;
    }
    for n in nodes {
        n.stop().await;
    }
    result?;
    println!("demo finished in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// Starts one node per key on loopback (RPC and p2p on free ports), each dialing the ones
/// before it, and waits (≤ 30 s) until they form a full mesh.
async fn start_cluster(
    dir: &Path,
    genesis: &Genesis,
    keys: &[SecretKey],
) -> anyhow::Result<Vec<Node>> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut addrs: Vec<String> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let node = Node::start(NodeOptions {
            genesis: genesis.clone(),
            data_dir: Some(dir.join(format!("node{i}"))),
            key: Some(k.clone()),
            rpc: RpcConfig {
                addr: ([127, 0, 0, 1], 0).into(),
                ..RpcConfig::default()
            },
            p2p: (keys.len() > 1).then(|| P2pOptions {
                listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
                peers: addrs.clone(),
                ..P2pOptions::default()
            }),
            admin_addr: None,
        })
        .await?;
        if let Some(net) = &node.net {
            addrs.push(
                net.listen_addrs()
                    .await?
                    .into_iter()
                    .next()
                    .context("no p2p listen address")?,
            );
        }
        nodes.push(node);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, n) in nodes.iter().enumerate() {
        let Some(net) = &n.net else { continue };
        while net.peers().await?.len() + 1 < nodes.len() {
            if Instant::now() > deadline {
                bail!("node {i} did not connect to every other node within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(nodes)
}

async fn drive(
    dir: &Path,
    nodes: &[Node],
    genesis: &Genesis,
    writer: &SecretKey,
    o: &DemoOptions,
) -> anyhow::Result<()> {
    let (files, format) = if o.files.is_empty() {
        let p = dir.join("OpenSSH_2k.log");
        std::fs::write(&p, SAMPLE)?;
        (vec![p], Format::Syslog)
    } else {
        (o.files.clone(), o.format)
    };
    println!("measuring this machine's batched signature verification rate…");
    let sig = tokio::task::spawn_blocking(|| {
        crate::bench::measure_sig_rates(8192, crate::bench::Workload::Openssh)
    })
    .await??;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    println!("ingesting {} into node 0…", names.join(", "));
    use std::io::IsTerminal;
    let sidecar = dir.join("sidecar.jsonl");
    let s = crate::ingest::ingest(IngestOptions {
        sidecar: sidecar.clone(),
        progress: std::io::stderr().is_terminal(),
        ..IngestOptions::new(&nodes[0].rpc_url(), writer.clone(), format, files)
    })
    .await?;
    s.print();
    if !s.is_clean() {
        bail!("not every line was finalized or reported");
    }
    println!(
        "ingest rate = {:.1}% of this machine's batched ed25519 verification ceiling ({:.0}/s on {} cores)",
        100.0 * s.events_per_s / sig.batch256_all_cores,
        sig.batch256_all_cores,
        sig.cores
    );

    let last = nodes.len() - 1;
    let report = crate::reconcile::reconcile(&nodes[last].rpc_url(), &sidecar).await?;
    for d in &report.discrepancies {
        println!("DISCREPANCY {d}");
    }
    if !report.discrepancies.is_empty() {
        bail!(
            "reconcile found {} discrepancies",
            report.discrepancies.len()
        );
    }
    println!(
        "reconcile against node {last}: all {} sidecar records final and matching",
        report.matched
    );

    let clients = nodes
        .iter()
        .map(|n| auditchain_rpc::http_client(&n.rpc_url(), Duration::from_secs(30)))
        .collect::<Result<Vec<_>, _>>()?;
    summarize(&clients).await?;
    receipt(dir, &clients[last], genesis, &sidecar).await
}

async fn summarize(clients: &[HttpClient]) -> anyhow::Result<()> {
    let stats = clients[0].get_stats().await?;
    let fin = clients[0].get_finalized().await?;
    println!(
        "chain: {} blocks after genesis, {} events, finalized height {} with {} of {} validator signatures",
        stats.blocks - 1,
        stats.events,
        fin.head.height,
        fin.certificate.as_ref().map_or(0, |c| c.signatures.len()),
        clients.len()
    );
    let mut types: Vec<_> = stats.events_per_type.iter().collect();
    types.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!("top event types:");
    for (t, n) in types.iter().take(8) {
        println!("  {t:<28} {n}");
    }
    let failures = auditchain_rpc::full_trail(
        &clients[0],
        TrailQuery {
            event_type: Some("ssh_auth_failure".into()),
            ..TrailQuery::default()
        },
    )
    .await?;
    let mut by_ip: BTreeMap<String, u64> = BTreeMap::new();
    for e in &failures {
        let data = match &e.tx.body.payload {
            auditchain_primitives::tx::Payload::RecordEvent { data, .. } => data.as_ref(),
            _ => None,
        };
        if let Some(ip) = data.and_then(|d| d.value()["ip"].as_str()) {
            *by_ip.entry(ip.to_string()).or_default() += 1;
        }
    }
    let mut ips: Vec<_> = by_ip.into_iter().collect();
    ips.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("top sources of failed logins (from the chain's trail):");
    for (ip, n) in ips.iter().take(5) {
        println!("  {ip:<16} {n} failures");
    }
    let alerts = clients[0]
        .qa_get_alerts(
            Some(serde_json::json!({"rule": BRUTE_FORCE})),
            None,
            Some(1000),
        )
        .await?;
    let mut alerted: BTreeMap<String, u64> = BTreeMap::new();
    for a in alerts["alerts"].as_array().into_iter().flatten() {
        *alerted
            .entry(a["group"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    println!(
        "QA rule {BRUTE_FORCE:?} (≥ 5 failures per IP within 60 s of log time): {} alerts for {} IPs",
        alerted.values().sum::<u64>(),
        alerted.len()
    );
    if let Some(entity) = failures
        .first()
        .map(|e| e.tx.body.payload.entity_id().to_string())
    {
        let q = TrailQuery {
            entity: Some(entity.clone()),
            ..TrailQuery::default()
        };
        let reference = auditchain_rpc::full_trail(&clients[0], q.clone()).await?;
        for (i, c) in clients.iter().enumerate().skip(1) {
            if auditchain_rpc::full_trail(c, q.clone()).await? != reference {
                bail!("node {i} serves a different trail for {entity}");
            }
        }
        println!(
            "trail of entity {entity}: {} events, identical on all {} nodes",
            reference.len(),
            clients.len()
        );
    }
    Ok(())
}

/// Fetches the receipt of the sidecar's first event, writes it, verifies it offline against
/// the genesis, and checks that a forged copy fails.
async fn receipt(
    dir: &Path,
    c: &HttpClient,
    genesis: &Genesis,
    sidecar: &Path,
) -> anyhow::Result<()> {
    let first = std::fs::read_to_string(sidecar)?
        .lines()
        .find_map(|l| {
            serde_json::from_str::<crate::ingest::sidecar::Record>(l)
                .ok()?
                .tx_id
        })
        .context("no submitted event in the sidecar")?;
    let r = c.get_proof(first).await?;
    let path = dir.join("receipt.json");
    std::fs::write(&path, serde_json::to_string_pretty(&r)?)?;
    verify_receipt(&r, genesis).context("the receipt failed offline verification")?;
    println!(
        "receipt of {} (height {}, history leaf {} of {}, {} commit signatures) written to {} and verified offline against the genesis",
        r.tx_id,
        r.header.height,
        r.history_index,
        r.header.history_size,
        r.certificate.as_ref().map_or(0, |c| c.signatures.len()),
        path.display()
    );
    let mut forged = r.clone();
    forged.history_index += 1;
    if verify_receipt(&forged, genesis).is_ok() {
        bail!("a forged receipt verified");
    }
    println!("the same receipt with a forged position is rejected, as it must be");
    Ok(())
}

const BRUTE_FORCE: &str = "ssh brute force";

/// The demo's QA rule: 5 failed logins from one IP within 60 s of the log's own time.
fn brute_force_rule() -> anyhow::Result<auditchain_primitives::call::Rule> {
    Ok(serde_json::from_value(serde_json::json!({
        "name": BRUTE_FORCE, "active": true,
        "conditions": {"event_type": "ssh_auth_failure",
            "threshold": {"count": 5, "window_ms": 60_000, "group_by": "/ip", "time_pointer": "/time_ms"}},
        "actions": [{"type": "alert", "severity": "critical", "message": "5 failed logins from one IP within 60 s"}]
    }))?)
}
