//! A local testnet for operators: `testnet init` writes keys, a genesis and one config per node
//! on loopback ports; `testnet run` starts every node as a child process (`auditchain run
//! --config nodeN/node.toml`, logs in `nodeN/node.log`), prints each RPC URL once it answers,
//! and on Ctrl-C or SIGTERM stops them all (SIGTERM, then SIGKILL after 15 s), leaving no
//! process behind.
//!
//! Layout of the directory:
//! ```text
//! genesis.json          the chain (all nodes validators, round-robin BFT; or miners with --pow)
//! writer.key            an application key with the writer role
//! node0/validator.key   each validator's key (also its network identity)
//! node0/node.toml       genesis, data_dir, key, [rpc] addr, [p2p] listen and peers
//! node0/data/           sled, created by the node
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use auditchain_consensus::pow::PowConfig;
use auditchain_genesis::Genesis;
use auditchain_primitives::SecretKey;
use auditchain_rpc::AuditChainApiClient;

use crate::chain::now_ms;
use crate::config::ConfigFile;
use crate::keyfile;

/// What `testnet init` needs.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Number of validator nodes (1–64).
    pub nodes: usize,
    /// Output directory (created; must be empty or absent).
    pub out: PathBuf,
    /// RPC port of node 0 (node i uses +i); 0 picks free ports now.
    pub rpc_port: u16,
    /// p2p port of node 0 (node i uses +i); 0 picks free ports now.
    pub p2p_port: u16,
    /// Minimum ms between blocks while transactions are pending (round robin), or the target
    /// block time (proof of work).
    pub block_time_ms: u64,
    /// Proof of work with this initial difficulty (expected hashes per block) instead of
    /// round-robin BFT; every node mines.
    pub pow_difficulty: Option<u64>,
}

/// A free loopback TCP port (bound and released; another process could take it meanwhile).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

fn ports(base: u16, n: usize) -> anyhow::Result<Vec<u16>> {
    if base == 0 {
        return (0..n).map(|_| free_port()).collect();
    }
    (0..n)
        .map(|i| {
            base.checked_add(i as u16)
                .context("port range runs past 65535")
        })
        .collect()
}

/// Writes a testnet (see the module docs). Returns the node directories. Errors: a bad node
/// count, a non-empty output directory, I/O.
pub fn init(o: &InitOptions) -> anyhow::Result<Vec<PathBuf>> {
    if !(1..=64).contains(&o.nodes) {
        bail!("--nodes must be 1 to 64, got {}", o.nodes);
    }
    if o.out.exists() && std::fs::read_dir(&o.out)?.next().is_some() {
        bail!("{} is not empty", o.out.display());
    }
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let keys: Vec<SecretKey> = (0..o.nodes).map(|_| SecretKey::generate()).collect();
    let writer = SecretKey::generate();
    let validators: Vec<_> = keys.iter().map(SecretKey::public_key).collect();
    let genesis = match o.pow_difficulty {
        None => Genesis::new_round_robin(
            "testnet",
            now_ms(),
            o.block_time_ms,
            &validators,
            &[writer.public_key()],
            &[writer.public_key()],
        ),
        Some(d) => Genesis::new_pow(
            "testnet",
            now_ms(),
            PowConfig {
                miners: validators.clone(),
                initial_difficulty: d,
                target_block_time_ms: o.block_time_ms,
                retarget_interval: 20,
                finality_depth: 6,
                max_future_drift_ms: 5_000,
            },
            &[writer.public_key()],
            &[writer.public_key()],
        ),
    };
    genesis.validate()?;
    std::fs::write(o.out.join("genesis.json"), genesis.to_json_pretty())?;
    keyfile::write(&o.out.join("writer.key"), &writer, false)?;
    let rpc = ports(o.rpc_port, o.nodes)?;
    let p2p = ports(o.p2p_port, o.nodes)?;
    let addrs: Vec<String> = (0..o.nodes)
        .map(|i| {
            format!(
                "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                p2p[i],
                auditchain_p2p::peer_id_of(&validators[i])
            )
        })
        .collect();
    let mut dirs = Vec::new();
    for i in 0..o.nodes {
        let dir = o.out.join(format!("node{i}"));
        std::fs::create_dir_all(&dir)?;
        keyfile::write(&dir.join("validator.key"), &keys[i], false)?;
        let peers: Vec<String> = (0..o.nodes)
            .filter(|j| *j != i)
            .map(|j| format!("{:?}", addrs[j]))
            .collect();
        let toml = format!(
            "# node {i} of a local testnet (auditchain testnet init)\n\
             genesis = \"../genesis.json\"\n\
             data_dir = \"data\"\n\
             key = \"validator.key\"\n\
             [rpc]\n\
             addr = \"127.0.0.1:{}\"\n\
             [p2p]\n\
             listen = [\"/ip4/127.0.0.1/tcp/{}\"]\n\
             peers = [{}]\n",
            rpc[i],
            p2p[i],
            peers.join(", ")
        );
        std::fs::write(dir.join("node.toml"), toml)?;
        dirs.push(dir);
    }
    Ok(dirs)
}

/// The node directories of a testnet, in order (`node0`, `node1`, …).
pub fn node_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for i in 0.. {
        let d = dir.join(format!("node{i}"));
        if !d.join("node.toml").is_file() {
            break;
        }
        out.push(d);
    }
    if out.is_empty() {
        bail!(
            "{} holds no node0/node.toml: run `auditchain testnet init` first",
            dir.display()
        );
    }
    Ok(out)
}

struct Running {
    name: String,
    child: Child,
}

/// Sends SIGTERM, waits up to 15 s, then kills.
fn stop_child(r: &mut Running) {
    if let Ok(Some(_)) = r.child.try_wait() {
        return;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &r.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = r.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::warn!(node = %r.name, "did not stop within 15 s; killing");
    let _ = r.child.kill();
    let _ = r.child.wait();
}

/// Starts every node of the testnet in `dir` as a child process, prints their RPC URLs, and
/// stops them all on Ctrl-C / SIGTERM (or when one exits on its own, which is an error).
pub async fn run(dir: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the auditchain binary")?;
    let dirs = node_dirs(dir)?;
    let mut running: Vec<Running> = Vec::new();
    let result = async {
        for (i, d) in dirs.iter().enumerate() {
            let log = std::fs::File::create(d.join("node.log"))?;
            let child = std::process::Command::new(&exe)
                .arg("run")
                .arg("--config")
                .arg(d.join("node.toml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting node{i}"))?;
            running.push(Running {
                name: format!("node{i}"),
                child,
            });
        }
        for (i, d) in dirs.iter().enumerate() {
            let cfg = ConfigFile::load(&d.join("node.toml"))?;
            let addr = cfg.rpc.unwrap_or_default().addr;
            let url = format!("http://{addr}");
            wait_rpc(&url, &mut running[i]).await?;
            println!(
                "node{i}: RPC {url} (pid {}, log {})",
                running[i].child.id(),
                d.join("node.log").display()
            );
        }
        println!("testnet of {} nodes running; Ctrl-C stops it", dirs.len());
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = crate::cli::shutdown_signal() => return Ok(()),
                _ = tick.tick() => {
                    for r in &mut running {
                        if let Ok(Some(status)) = r.child.try_wait() {
                            bail!("{} exited on its own ({status}); see its node.log", r.name);
                        }
                    }
                }
            }
        }
    }
    .await;
    let mut running = running;
    tokio::task::spawn_blocking(move || {
        for r in &mut running {
            stop_child(r);
        }
    })
    .await?;
    println!("testnet stopped");
    result
}

/// Waits (≤ 30 s) until the node answers `chain_getHead`; fails early if it exits.
async fn wait_rpc(url: &str, r: &mut Running) -> anyhow::Result<()> {
    let client = auditchain_rpc::http_client(url, Duration::from_secs(2))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if client.get_head().await.is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = r.child.try_wait() {
            bail!(
                "{} exited during start-up ({status}); see its node.log",
                r.name
            );
        }
        if Instant::now() > deadline {
            bail!("{} did not answer on {url} within 30 s", r.name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
