//! The `auditchain` command line (clap). Each subcommand is documented in `--help` and in the
//! README.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use auditchain_genesis::Genesis;
use auditchain_primitives::tx::{Payload, TxBody, data_hash};
use auditchain_primitives::{Hash, PublicKey, Receipt, SecretKey, Transaction};
use auditchain_rpc::types::TrailQuery;
use auditchain_rpc::{AuditChainApiClient, HttpClient, RpcConfig};
use clap::{Args, Parser, Subcommand};

use crate::chain::now_ms;
use crate::config::ConfigFile;
use crate::node::{Node, NodeOptions, P2pOptions};
use crate::{bench, demo, keyfile, verify};

/// Default RPC URL of client commands (override with `--rpc` or `AUDITCHAIN_RPC`).
pub const DEFAULT_RPC: &str = "http://127.0.0.1:8645";

/// auditchain: a permissioned blockchain node for tamper-evident, verifiable audit trails.
#[derive(Debug, Parser)]
#[command(name = "auditchain", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Key management.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Genesis file tools.
    #[command(subcommand)]
    Genesis(GenesisCmd),
    /// Run a node.
    Run(RunArgs),
    /// A one-node development chain in a temporary directory with generated keys.
    Dev(DevArgs),
    /// The main job on an embedded default: a local 3-validator cluster ingesting a real sshd
    /// log (loghub), reconciled, with a receipt verified offline; exits when done.
    Demo(DemoArgs),
    /// Audit events.
    #[command(subcommand)]
    Event(EventCmd),
    /// Parse log files into audit events, sign them on all cores, submit them in pipelined
    /// batches and wait for finality; writes a sidecar for `reconcile`.
    Ingest(IngestArgs),
    /// Check every record of an ingest sidecar against the chain (present, same hash, final);
    /// exits non-zero on any discrepancy.
    Reconcile(ReconcileArgs),
    /// Print an audit trail (JSON lines, chain order), following the cursor to the end.
    Trail(TrailArgs),
    /// Fetch the receipt of a committed transaction.
    Proof(ProofArgs),
    /// Verify a receipt offline against a genesis file (no node is contacted).
    VerifyReceipt(VerifyReceiptArgs),
    /// Re-verify every stored block (linkage, roots, seals, signatures, state); names the first
    /// bad height. The node must be stopped.
    VerifyChain(VerifyChainArgs),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// A local multi-validator testnet on loopback.
    #[command(subcommand)]
    Testnet(TestnetCmd),
    /// Quality tokens: transfer, mint (admin), balance.
    #[command(subcommand)]
    Token(crate::cli_contracts::TokenCmd),
    /// Governance: propose, vote, list, show.
    #[command(subcommand)]
    Gov(crate::cli_contracts::GovCmd),
    /// QA monitor rules and alerts.
    #[command(subcommand)]
    Qa(crate::cli_contracts::QaCmd),
    /// Evidence files: anchor a file's hash, verify a file.
    #[command(subcommand)]
    Evidence(crate::cli_contracts::EvidenceCmd),
    /// SLA deadlines.
    #[command(subcommand)]
    Sla(crate::cli_contracts::SlaCmd),
}

#[derive(Debug, Subcommand)]
enum TestnetCmd {
    /// Write keys, a genesis and one config per node into a directory.
    Init {
        /// Number of validators.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Output directory (must be empty or absent).
        #[arg(long)]
        out: PathBuf,
        /// RPC port of node 0 (node i uses +i); 0 picks free ports.
        #[arg(long, default_value_t = 8645)]
        rpc_port: u16,
        /// p2p port of node 0 (node i uses +i); 0 picks free ports.
        #[arg(long, default_value_t = 30333)]
        p2p_port: u16,
        /// Minimum ms between blocks while transactions are pending (with --pow: the target
        /// block time).
        #[arg(long, default_value_t = 200)]
        block_time_ms: u64,
        /// Proof of work instead of round-robin BFT, with this initial difficulty (expected
        /// hashes per block); every node mines.
        #[arg(long, value_name = "DIFFICULTY")]
        pow: Option<u64>,
    },
    /// Start every node of a testnet as a child process; Ctrl-C or SIGTERM stops them all.
    Run {
        /// The directory written by `testnet init`.
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Generate an ed25519 key into a new file (mode 0600); prints the public key.
    Generate {
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum GenesisCmd {
    /// Write a new genesis file.
    New(GenesisNewArgs),
}

#[derive(Debug, Args)]
struct GenesisNewArgs {
    /// Validator key file (repeatable; order = proposer order).
    #[arg(long = "validator", required = true)]
    validators: Vec<PathBuf>,
    /// Public key (hex) allowed to submit events (repeatable).
    #[arg(long = "writer")]
    writers: Vec<PublicKey>,
    /// Public key (hex) with the admin role (repeatable).
    #[arg(long = "admin")]
    admins: Vec<PublicKey>,
    /// Chain name, `[a-z0-9_-]{1,64}`.
    #[arg(long, default_value = "auditchain")]
    chain_name: String,
    /// Minimum ms between blocks while transactions are pending.
    #[arg(long, default_value_t = 500)]
    block_time_ms: u64,
    /// Output path.
    #[arg(long)]
    out: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// TOML config file (keys: genesis, data_dir, key, [rpc]); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Genesis file.
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// sled data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Validator key file; omit to observe.
    #[arg(long)]
    key: Option<PathBuf>,
    /// RPC listen address (HTTP and WebSocket).
    #[arg(long)]
    rpc_addr: Option<SocketAddr>,
    /// p2p listen multiaddress, e.g. /ip4/127.0.0.1/tcp/30333 (repeatable; adds to the config's).
    #[arg(long = "p2p-listen", value_name = "MULTIADDR")]
    p2p_listen: Vec<String>,
    /// Peer to dial and keep dialing, e.g. /ip4/127.0.0.1/tcp/30334/p2p/12D3KooW… (repeatable).
    #[arg(long = "peer", value_name = "MULTIADDR")]
    peers: Vec<String>,
    /// Network identity key file (defaults to --key; an observer needs one).
    #[arg(long)]
    node_key: Option<PathBuf>,
    /// Serve the admin (operator) RPC on this address, e.g. 127.0.0.1:8646; off by default.
    #[arg(long)]
    admin_addr: Option<SocketAddr>,
}

#[derive(Debug, Args)]
struct DevArgs {
    /// RPC listen address.
    #[arg(long, default_value = "127.0.0.1:8645")]
    rpc_addr: SocketAddr,
    /// Keep keys, genesis and data here instead of a temporary directory (reused if present).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Minimum ms between blocks while transactions are pending.
    #[arg(long, default_value_t = 200)]
    block_time_ms: u64,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Validators in the local cluster.
    #[arg(long, default_value_t = 3)]
    validators: usize,
    /// Ingest this file instead of the bundled loghub OpenSSH sample (repeatable), e.g. the
    /// four loghub samples with `--format loghub-csv` for the 8,000-line replay benchmark.
    #[arg(long = "file")]
    files: Vec<PathBuf>,
    /// Format of the `--file`s.
    #[arg(long, value_enum, default_value = "syslog")]
    format: crate::ingest::Format,
    /// Leave the cluster running after the demo (Ctrl-C stops it) and print its RPC URLs.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RpcArg {
    /// Node RPC URL.
    #[arg(long, env = "AUDITCHAIN_RPC", default_value = DEFAULT_RPC)]
    pub(crate) rpc: String,
}

#[derive(Debug, Subcommand)]
enum EventCmd {
    /// Sign and submit one event, wait for its commit, print id and height.
    Submit(SubmitArgs),
    /// Show a transaction (pending or committed).
    Get {
        #[command(flatten)]
        rpc: RpcArg,
        /// Transaction id (hex).
        id: Hash,
    },
}

#[derive(Debug, Args)]
struct SubmitArgs {
    #[command(flatten)]
    rpc: RpcArg,
    /// Writer key file.
    #[arg(long)]
    key: PathBuf,
    /// Event type, `[A-Za-z0-9_.:-]{1,64}`.
    #[arg(long = "type")]
    event_type: String,
    /// Entity id.
    #[arg(long)]
    entity: String,
    /// Event data as JSON (kept on chain).
    #[arg(long, conflicts_with = "data_hash")]
    data: Option<String>,
    /// SHA-256 (hex) of the canonical data kept off chain (hash-only mode).
    #[arg(long)]
    data_hash: Option<Hash>,
    /// How long to wait for the commit, ms.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
}

#[derive(Debug, Args)]
struct IngestArgs {
    #[command(flatten)]
    rpc: RpcArg,
    /// Writer key file (signs every event).
    #[arg(long)]
    key: PathBuf,
    /// Line format.
    #[arg(long, value_enum)]
    format: crate::ingest::Format,
    /// Put only each event's data hash on chain; the data (with the line) stays in the sidecar.
    #[arg(long)]
    hash_only: bool,
    /// Keep reading the files as they grow, like `tail -F`, until Ctrl-C.
    #[arg(long)]
    follow: bool,
    /// Sidecar file (JSONL, appended to).
    #[arg(long, default_value = "auditchain-sidecar.jsonl")]
    sidecar: PathBuf,
    /// Events per submission call (1–10,000).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Submission calls in flight.
    #[arg(long, default_value_t = 4)]
    inflight: usize,
    /// How long to keep retrying an unreachable node or a full mempool, s.
    #[arg(long, default_value_t = 60)]
    retry_secs: u64,
    /// How long to wait for finality without progress at the end, s.
    #[arg(long, default_value_t = 120)]
    finality_timeout_secs: u64,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Input files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct ReconcileArgs {
    #[command(flatten)]
    rpc: RpcArg,
    /// The sidecar written by `auditchain ingest`.
    sidecar: PathBuf,
}

#[derive(Debug, Args)]
struct TrailArgs {
    #[command(flatten)]
    rpc: RpcArg,
    /// Entity id.
    #[arg(long)]
    entity: Option<String>,
    /// Signer public key (hex).
    #[arg(long)]
    signer: Option<PublicKey>,
    /// Event type.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Block time from, ms (inclusive).
    #[arg(long)]
    from_ms: Option<u64>,
    /// Block time to, ms (exclusive).
    #[arg(long)]
    to_ms: Option<u64>,
    /// Page size per request (1–1000).
    #[arg(long, default_value_t = 500)]
    page: u32,
}

#[derive(Debug, Args)]
struct ProofArgs {
    #[command(flatten)]
    rpc: RpcArg,
    /// Transaction id (hex).
    id: Hash,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct VerifyReceiptArgs {
    /// Receipt JSON file (from `auditchain proof`).
    receipt: PathBuf,
    /// The chain's genesis file: the only thing trusted.
    #[arg(long)]
    genesis: PathBuf,
    /// JSON file with the validator set in force at the receipt's height (an array of hex
    /// public keys), to check against a set the auditor already trusts instead of the one
    /// followed from genesis through the receipt's validator-set changes (the default).
    #[arg(long)]
    validators: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct VerifyChainArgs {
    /// sled data directory (the node must be stopped).
    #[arg(long)]
    data_dir: PathBuf,
    /// Genesis file; defaults to the copy stored in the data dir.
    #[arg(long)]
    genesis: Option<PathBuf>,
}

/// Signs a `record_event` for `key` with `nonce` on chain `chain_id`. `data_hash` is the
/// SHA-256 of the canonical `data` when only `data` is given; a given `data_hash` is used as
/// is (hash-only, or already computed by the caller; signing checks it matches `data`).
/// Errors: neither given, or invalid fields (see `TxBody::validate`).
pub fn sign_record(
    chain_id: Hash,
    key: &SecretKey,
    nonce: u64,
    event_type: &str,
    entity: &str,
    data: Option<serde_json::Value>,
    known_hash: Option<Hash>,
) -> anyhow::Result<Transaction> {
    let data_hash = match (&data, known_hash) {
        (_, Some(h)) => h,
        (Some(d), None) => data_hash(d)?,
        (None, None) => bail!("give --data or --data-hash"),
    };
    Ok(Transaction::sign(
        TxBody {
            chain_id,
            signer: key.public_key(),
            nonce,
            timestamp_ms: now_ms(),
            payload: Payload::RecordEvent {
                event_type: event_type.to_string(),
                entity_id: entity.to_string(),
                data: data.map(TryInto::try_into).transpose()?,
                data_hash,
            },
        },
        key,
    )?)
}

pub(crate) fn client(url: &str) -> anyhow::Result<HttpClient> {
    auditchain_rpc::http_client(url, Duration::from_secs(130))
        .with_context(|| format!("RPC URL {url}"))
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn load_genesis(path: &Path) -> anyhow::Result<Genesis> {
    Ok(Genesis::load(path)?)
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Keys(KeysCmd::Generate { out, force }) => {
                let k = SecretKey::generate();
                keyfile::write(&out, &k, force)?;
                println!("{}", k.public_key());
            }
            Command::Genesis(GenesisCmd::New(a)) => genesis_new(a)?,
            Command::Testnet(TestnetCmd::Init {
                nodes,
                out,
                rpc_port,
                p2p_port,
                block_time_ms,
                pow,
            }) => {
                let dirs = crate::testnet::init(&crate::testnet::InitOptions {
                    nodes,
                    out: out.clone(),
                    rpc_port,
                    p2p_port,
                    block_time_ms,
                    pow_difficulty: pow,
                })?;
                println!(
                    "testnet of {} validators in {}; start it with: auditchain testnet run --dir {}",
                    dirs.len(),
                    out.display(),
                    out.display()
                );
            }
            Command::Testnet(TestnetCmd::Run { dir }) => crate::testnet::run(&dir).await?,
            Command::Run(a) => run_node(a).await?,
            Command::Dev(a) => dev(a).await?,
            Command::Demo(a) => {
                demo::run(demo::DemoOptions {
                    validators: a.validators,
                    files: a.files,
                    format: a.format,
                    keep: a.keep,
                })
                .await?
            }
            Command::Event(EventCmd::Submit(a)) => submit(a).await?,
            Command::Event(EventCmd::Get { rpc, id }) => {
                print_json(&client(&rpc.rpc)?.get_transaction(id).await?)?;
            }
            Command::Ingest(a) => ingest(a).await?,
            Command::Token(c) => crate::cli_contracts::token(c).await?,
            Command::Gov(c) => crate::cli_contracts::gov(c).await?,
            Command::Qa(c) => crate::cli_contracts::qa(c).await?,
            Command::Evidence(c) => crate::cli_contracts::evidence(c).await?,
            Command::Sla(c) => crate::cli_contracts::sla(c).await?,
            Command::Reconcile(a) => {
                let r = crate::reconcile::reconcile(&a.rpc.rpc, &a.sidecar).await?;
                for d in &r.discrepancies {
                    println!("DISCREPANCY {d}");
                }
                println!(
                    "{} records final and matching, {} discrepancies, {} lines never on chain (reported at ingest)",
                    r.matched,
                    r.discrepancies.len(),
                    r.not_on_chain
                );
                if !r.discrepancies.is_empty() {
                    bail!("{} discrepancies", r.discrepancies.len());
                }
            }
            Command::Trail(a) => trail(a).await?,
            Command::Proof(a) => {
                let r: Receipt = client(&a.rpc.rpc)?.get_proof(a.id).await?;
                std::fs::write(&a.out, serde_json::to_string_pretty(&r)?)
                    .with_context(|| format!("writing {}", a.out.display()))?;
                println!(
                    "receipt for {} at height {} written to {}",
                    a.id,
                    r.header.height,
                    a.out.display()
                );
            }
            Command::VerifyReceipt(a) => {
                let g = load_genesis(&a.genesis)?;
                let text = std::fs::read_to_string(&a.receipt)
                    .with_context(|| format!("reading {}", a.receipt.display()))?;
                let r: Receipt = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a receipt", a.receipt.display()))?;
                let verified = match &a.validators {
                    None => verify::verify_receipt(&r, &g),
                    Some(p) => {
                        let text = std::fs::read_to_string(p)
                            .with_context(|| format!("reading {}", p.display()))?;
                        let set: Vec<PublicKey> =
                            serde_json::from_str(&text).with_context(|| {
                                format!("{} is not a JSON array of public keys", p.display())
                            })?;
                        verify::verify_receipt_with(&r, &g, &set)
                    }
                };
                verified
                    .with_context(|| format!("receipt {} does NOT verify", a.receipt.display()))?;
                println!(
                    "OK: transaction {} is at height {} (index {}, history leaf {} of {}) of chain {}, sealed by validator {}",
                    r.tx_id,
                    r.header.height,
                    r.tx_index,
                    r.history_index,
                    r.header.history_size,
                    r.chain_id,
                    r.header.proposer
                );
            }
            Command::VerifyChain(a) => {
                let store = crate::node::open_store(Some(&a.data_dir))?;
                let g = match a.genesis {
                    Some(p) => load_genesis(&p)?,
                    None => {
                        let text = store.genesis_json()?.context("data dir has no genesis")?;
                        Genesis::from_json(&text)?
                    }
                };
                match verify::verify_chain(&*store, &g, |h| eprintln!("verified up to height {h}"))
                {
                    Ok(r) => println!(
                        "OK: {} blocks and {} transactions verified",
                        r.blocks, r.txs
                    ),
                    Err(f) => bail!(
                        "chain verification FAILED at height {}: {}",
                        f.height,
                        f.reason
                    ),
                }
            }
            Command::Bench(b) => bench::run(b).await?,
        }
        Ok(())
    }
}

fn genesis_new(a: GenesisNewArgs) -> anyhow::Result<()> {
    if a.out.exists() && !a.force {
        bail!("{} exists; pass --force to overwrite it", a.out.display());
    }
    let validators = a
        .validators
        .iter()
        .map(|p| keyfile::read(p).map(|k| k.public_key()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let g = Genesis::new_round_robin(
        &a.chain_name,
        now_ms(),
        a.block_time_ms,
        &validators,
        &a.writers,
        &a.admins,
    );
    g.validate()?;
    std::fs::write(&a.out, g.to_json_pretty() + "\n")
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!("genesis {} written to {}", g.hash(), a.out.display());
    Ok(())
}

async fn run_node(a: RunArgs) -> anyhow::Result<()> {
    let cfg = match &a.config {
        Some(p) => ConfigFile::load(p)?,
        None => ConfigFile::default(),
    };
    let genesis_path = a
        .genesis
        .or(cfg.genesis)
        .context("no genesis: pass --genesis or set `genesis` in the config file")?;
    let data_dir = a
        .data_dir
        .or(cfg.data_dir)
        .context("no data dir: pass --data-dir or set `data_dir` in the config file")?;
    let key = a.key.or(cfg.key).map(|p| keyfile::read(&p)).transpose()?;
    let mut rpc = cfg.rpc.unwrap_or_default();
    if let Some(addr) = a.rpc_addr {
        rpc.addr = addr;
    }
    let mut p2p = cfg.p2p.unwrap_or_default();
    p2p.listen.extend(a.p2p_listen);
    p2p.peers.extend(a.peers);
    let node_key = a
        .node_key
        .or(p2p.node_key)
        .map(|p| keyfile::read(&p))
        .transpose()?;
    let p2p = (!p2p.listen.is_empty() || !p2p.peers.is_empty()).then(|| P2pOptions {
        listen: p2p.listen,
        peers: p2p.peers,
        observers: p2p.observers,
        node_key,
    });
    let node = Node::start(NodeOptions {
        genesis: load_genesis(&genesis_path)?,
        data_dir: Some(data_dir),
        key,
        rpc,
        p2p,
        admin_addr: a.admin_addr.or(cfg.admin_addr),
    })
    .await?;
    if let Some(addr) = node.admin_addr {
        println!("admin RPC on http://{addr} (operators only)");
    }
    if let Some(net) = &node.net {
        for a in net.listen_addrs().await? {
            println!("p2p listening on {a}");
        }
    }
    println!(
        "auditchain node running; RPC {} (ws {})",
        node.rpc_url(),
        node.ws_url()
    );
    shutdown_signal().await;
    tracing::info!("stopping");
    node.stop().await;
    Ok(())
}

/// Keys, genesis and data of a dev chain in `dir`: created on first use, reused after.
pub(crate) struct DevChain {
    pub genesis: Genesis,
    pub genesis_path: PathBuf,
    pub validator: SecretKey,
    pub writer_path: PathBuf,
    pub data_dir: PathBuf,
}

pub(crate) fn dev_chain(dir: &Path, block_time_ms: u64) -> anyhow::Result<DevChain> {
    std::fs::create_dir_all(dir)?;
    let vpath = dir.join("validator.key");
    let wpath = dir.join("writer.key");
    let gpath = dir.join("genesis.json");
    if !gpath.exists() {
        let v = SecretKey::generate();
        let w = SecretKey::generate();
        keyfile::write(&vpath, &v, true)?;
        keyfile::write(&wpath, &w, true)?;
        let g = Genesis::new_round_robin(
            "dev",
            now_ms(),
            block_time_ms,
            &[v.public_key()],
            &[w.public_key()],
            &[w.public_key()],
        );
        std::fs::write(&gpath, g.to_json_pretty() + "\n")?;
    }
    Ok(DevChain {
        genesis: load_genesis(&gpath)?,
        genesis_path: gpath,
        validator: keyfile::read(&vpath)?,
        writer_path: wpath,
        data_dir: dir.join("data"),
    })
}

async fn dev(a: DevArgs) -> anyhow::Result<()> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("auditchain-dev-")
                .tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let dc = dev_chain(&dir, a.block_time_ms)?;
    let node = Node::start(NodeOptions {
        genesis: dc.genesis,
        data_dir: Some(dc.data_dir.clone()),
        key: Some(dc.validator),
        rpc: RpcConfig {
            addr: a.rpc_addr,
            ..RpcConfig::default()
        },
        p2p: None,
        admin_addr: None,
    })
    .await?;
    println!("rpc: {}", node.rpc_url());
    println!("ws: {}", node.ws_url());
    println!("writer key: {}", dc.writer_path.display());
    println!("genesis: {}", dc.genesis_path.display());
    println!("data dir: {}", dc.data_dir.display());
    println!("chain id: {}", node.chain_id);
    shutdown_signal().await;
    node.stop().await;
    Ok(())
}

async fn submit(a: SubmitArgs) -> anyhow::Result<()> {
    let key = keyfile::read(&a.key)?;
    let data = a
        .data
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
        .transpose()
        .context("--data is not valid JSON")?;
    let (_, r) = sign_and_wait(&a.rpc.rpc, &key, a.timeout_ms, |chain_id, nonce| {
        sign_record(
            chain_id,
            &key,
            nonce,
            &a.event_type,
            &a.entity,
            data,
            a.data_hash,
        )
    })
    .await?;
    println!(
        "{}",
        serde_json::json!({
            "id": r.tx_id, "height": r.header.height, "index": r.tx_index,
            "seq": r.history_index, "status": "committed"
        })
    );
    Ok(())
}

/// Asks the node at `rpc` for its chain id and `key`'s next nonce, has `sign` build the
/// transaction, submits it and waits up to `timeout_ms` for its commit. Returns the client
/// and the receipt. Errors: the node unreachable, a refusal (with the node's message), or a
/// timeout.
pub(crate) async fn sign_and_wait(
    rpc: &str,
    key: &SecretKey,
    timeout_ms: u64,
    sign: impl FnOnce(Hash, u64) -> anyhow::Result<Transaction>,
) -> anyhow::Result<(HttpClient, Receipt)> {
    let c = client(rpc)?;
    let status = c
        .node_status()
        .await
        .with_context(|| format!("contacting node at {rpc}"))?;
    let nonce = c.next_nonce(key.public_key()).await?;
    let tx = sign(status.chain_id, nonce)?;
    let r = c.submit_and_wait((&tx).into(), Some(timeout_ms)).await?;
    Ok((c, r))
}

async fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if a.follow {
        let s = std::sync::Arc::clone(&stop);
        tokio::spawn(async move {
            shutdown_signal().await;
            eprintln!("stopping: finishing submitted events");
            s.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
    let opts = crate::ingest::IngestOptions {
        hash_only: a.hash_only,
        follow: a.follow,
        sidecar: a.sidecar.clone(),
        batch: a.batch,
        inflight: a.inflight,
        retry_secs: a.retry_secs,
        finality_timeout_secs: a.finality_timeout_secs,
        progress: std::io::stderr().is_terminal(),
        stop,
        ..crate::ingest::IngestOptions::new(&a.rpc.rpc, keyfile::read(&a.key)?, a.format, a.files)
    };
    let s = crate::ingest::ingest(opts).await?;
    if a.json {
        print_json(&s)?;
    } else {
        s.print();
        println!("sidecar: {}", a.sidecar.display());
    }
    if !s.is_clean() {
        bail!("not every event was finalized (see the summary)");
    }
    Ok(())
}

async fn trail(a: TrailArgs) -> anyhow::Result<()> {
    let c = client(&a.rpc.rpc)?;
    let mut q = TrailQuery {
        entity: a.entity,
        signer: a.signer,
        event_type: a.event_type,
        from_ms: a.from_ms,
        to_ms: a.to_ms,
        cursor: None,
        limit: Some(a.page),
    };
    loop {
        let page = c.get_trail(q.clone()).await?;
        for e in &page.events {
            println!("{}", serde_json::to_string(e)?);
        }
        match page.next_cursor {
            Some(cur) => q.cursor = Some(cur),
            None => break,
        }
    }
    Ok(())
}
