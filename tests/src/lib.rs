//! Test harness: a node on loopback (port 0) over a temporary sled directory, with generated
//! keys and helpers to sign and submit events. Every chain stops when the test ends.

use std::time::Duration;

use auditchain_genesis::Genesis;
use auditchain_node::{Node, NodeOptions};
use auditchain_primitives::tx::{Payload, TxBody, data_hash};
use auditchain_primitives::{Hash, SecretKey, Transaction};
use auditchain_rpc::types::TxParam;
use auditchain_rpc::{AuditChainApiClient, ClientError, HttpClient, RpcConfig};
use serde_json::Value;

/// A one-validator chain under test.
pub struct TestChain {
    /// The running node (`None` while stopped).
    pub node: Option<Node>,
    /// Its genesis.
    pub genesis: Genesis,
    /// The validator key.
    pub validator: SecretKey,
    /// Keys with the writer role.
    pub writers: Vec<SecretKey>,
    /// The data directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// An HTTP client for the node.
    pub client: HttpClient,
}

/// A genesis with one validator and `writers` writer keys; `tweak` may change anything.
pub fn genesis(
    validator: &SecretKey,
    writers: &[SecretKey],
    tweak: impl FnOnce(&mut Genesis),
) -> Genesis {
    let writer_keys: Vec<_> = writers.iter().map(SecretKey::public_key).collect();
    let mut g = Genesis::new_round_robin(
        "test",
        auditchain_node::chain::now_ms(),
        50,
        &[validator.public_key()],
        &writer_keys,
        &[],
    );
    let rr = g.round_robin_mut().expect("a round-robin genesis");
    rr.max_empty_interval_ms = 2_000;
    tweak(&mut g);
    g.validate().expect("test genesis is valid");
    g
}

impl TestChain {
    /// Starts a chain with `writers` writer keys and a genesis changed by `tweak`.
    pub async fn start(writers: usize, tweak: impl FnOnce(&mut Genesis)) -> Self {
        let validator = SecretKey::generate();
        let writers: Vec<SecretKey> = (0..writers).map(|_| SecretKey::generate()).collect();
        let genesis = genesis(&validator, &writers, tweak);
        let dir = tempfile::tempdir().expect("tempdir");
        let node = start_node(&genesis, dir.path(), &validator).await;
        let client = client(&node);
        TestChain {
            node: Some(node),
            genesis,
            validator,
            writers,
            dir,
            client,
        }
    }

    /// The running node.
    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node running")
    }

    /// The data directory of the node.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the node (flushing everything); the data dir stays.
    pub async fn stop(&mut self) {
        if let Some(n) = self.node.take() {
            n.stop().await;
        }
    }

    /// Stops and starts the node again on the same data dir.
    pub async fn restart(&mut self) {
        self.stop().await;
        let node = start_node(&self.genesis, self.dir.path(), &self.validator).await;
        self.client = client(&node);
        self.node = Some(node);
    }

    /// Signs a `record_event` by writer `w`.
    pub fn record(&self, w: usize, nonce: u64, ty: &str, entity: &str, data: Value) -> Transaction {
        sign_record(
            &self.writers[w],
            self.genesis.hash(),
            nonce,
            ty,
            entity,
            data,
        )
    }

    /// Ingests loghub's `OpenSSH_2k.log` (syslog format) through writer 0 over RPC, with the
    /// sidecar in a temporary directory; returns the summary. Panics if ingest fails.
    pub async fn ingest_openssh(&self) -> auditchain_node::ingest::IngestSummary {
        use auditchain_node::ingest::{Format, IngestOptions, ingest};
        let tmp = tempfile::tempdir().expect("tmp");
        ingest(IngestOptions {
            sidecar: tmp.path().join("sidecar.jsonl"),
            ..IngestOptions::new(
                &self.node().rpc_url(),
                self.writers[0].clone(),
                Format::Syslog,
                vec![loghub("OpenSSH_2k.log")],
            )
        })
        .await
        .expect("ingest")
    }

    /// Waits until the head's history holds at least `events` transactions.
    pub async fn wait_for_events(&self, events: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let h = self.client.get_head().await.expect("head");
            if h.history_size >= events {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {events} events committed",
                h.history_size
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Logs to stderr when `RUST_LOG` is set (e.g. `RUST_LOG=info cargo test -- --nocapture`).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Signs a `record_event` with `key` for chain `chain_id`.
pub fn sign_record(
    key: &SecretKey,
    chain_id: Hash,
    nonce: u64,
    ty: &str,
    entity: &str,
    data: Value,
) -> Transaction {
    Transaction::sign(
        TxBody {
            chain_id,
            signer: key.public_key(),
            nonce,
            timestamp_ms: 1_700_000_000_000 + nonce,
            payload: Payload::RecordEvent {
                event_type: ty.into(),
                entity_id: entity.into(),
                data_hash: data_hash(&data).expect("hashable"),
                data: Some(data.try_into().expect("canonical")),
            },
        },
        key,
    )
    .expect("valid body")
}

/// A file of the loghub samples in `../shared/data/loghub` (tests only; the project does not
/// need them at run time).
pub fn loghub(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/loghub")
        .join(name)
}

/// A transaction as an RPC parameter.
pub fn wire(t: &Transaction) -> TxParam {
    TxParam::from(t)
}

async fn start_node(genesis: &Genesis, dir: &std::path::Path, key: &SecretKey) -> Node {
    Node::start(NodeOptions {
        genesis: genesis.clone(),
        data_dir: Some(dir.join("data")),
        key: Some(key.clone()),
        rpc: RpcConfig {
            addr: ([127, 0, 0, 1], 0).into(),
            ..RpcConfig::default()
        },
        p2p: None,
        admin_addr: None,
    })
    .await
    .expect("node starts")
}

fn client(node: &Node) -> HttpClient {
    auditchain_rpc::http_client(&node.rpc_url(), Duration::from_secs(30)).expect("client")
}

/// The JSON-RPC error code and message of a failed call.
pub fn rpc_error(e: &ClientError) -> (i32, String) {
    match e {
        ClientError::Call(obj) => (obj.code(), obj.message().to_string()),
        other => panic!("not a JSON-RPC error: {other}"),
    }
}

/// Sends raw bytes as an HTTP POST to the node and returns the response body.
pub fn raw_post(addr: std::net::SocketAddr, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
}

/// Sends `GET path` to the node; returns the status code and the body.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

/// A cluster of validators in one process, each with its own temporary sled directory, RPC on
/// 127.0.0.1 port 0 and libp2p on 127.0.0.1 (port 0 at first, then kept so peers can redial
/// after a restart).
pub struct Testnet {
    /// The genesis shared by all nodes.
    pub genesis: Genesis,
    /// Validator keys, in proposer order.
    pub validators: Vec<SecretKey>,
    /// Node keys of observers (nodes after the validators: index `validators.len() + k`).
    pub observers: Vec<SecretKey>,
    /// Writer keys.
    pub writers: Vec<SecretKey>,
    /// Running nodes (`None` while stopped).
    pub nodes: Vec<Option<Node>>,
    /// Data directories.
    pub dirs: Vec<tempfile::TempDir>,
    /// Each node's p2p listen address (`/ip4/127.0.0.1/tcp/PORT/p2p/ID`), once started.
    pub p2p_addrs: Vec<Option<String>>,
}

/// Cluster timing for tests: fast blocks, short timeouts.
pub fn cluster_genesis(
    validators: &[SecretKey],
    writers: &[SecretKey],
    tweak: impl FnOnce(&mut Genesis),
) -> Genesis {
    let vals: Vec<_> = validators.iter().map(SecretKey::public_key).collect();
    let ws: Vec<_> = writers.iter().map(SecretKey::public_key).collect();
    let mut g = Genesis::new_round_robin(
        "testnet",
        auditchain_node::chain::now_ms(),
        50,
        &vals,
        &ws,
        &[],
    );
    let rr = g.round_robin_mut().expect("a round-robin genesis");
    rr.max_empty_interval_ms = 500;
    rr.proposal_timeout_ms = 400;
    rr.vote_timeout_ms = 200;
    tweak(&mut g);
    g.validate().expect("test genesis is valid");
    g
}

impl Testnet {
    /// A cluster of `n` validators (none started) and `writers` writer keys.
    pub fn new(n: usize, writers: usize, tweak: impl FnOnce(&mut Genesis)) -> Self {
        Self::with_observers(n, 0, writers, tweak)
    }

    /// A cluster of `n` validators and `observers` observer nodes (none started).
    pub fn with_observers(
        n: usize,
        observers: usize,
        writers: usize,
        tweak: impl FnOnce(&mut Genesis),
    ) -> Self {
        init_logs();
        let validators: Vec<SecretKey> = (0..n).map(|_| SecretKey::generate()).collect();
        let observers: Vec<SecretKey> = (0..observers).map(|_| SecretKey::generate()).collect();
        let writers: Vec<SecretKey> = (0..writers).map(|_| SecretKey::generate()).collect();
        let genesis = cluster_genesis(&validators, &writers, tweak);
        let total = n + observers.len();
        Testnet {
            genesis,
            dirs: (0..total)
                .map(|_| tempfile::tempdir().expect("tempdir"))
                .collect(),
            nodes: (0..total).map(|_| None).collect(),
            p2p_addrs: vec![None; total],
            validators,
            observers,
            writers,
        }
    }

    /// Adds a node slot (not started) holding a fresh validator key that is *not* in the
    /// genesis validator set, for governance to add; returns its index. Only for testnets
    /// without observers (observer indices follow the validators').
    pub fn add_candidate(&mut self) -> usize {
        assert!(
            self.observers.is_empty(),
            "candidates only without observers"
        );
        self.validators.push(SecretKey::generate());
        self.dirs.push(tempfile::tempdir().expect("tempdir"));
        self.nodes.push(None);
        self.p2p_addrs.push(None);
        self.validators.len() - 1
    }

    /// Starts `n` validators and waits until each sees every other started one as a peer.
    pub async fn start(n: usize, writers: usize) -> Self {
        let mut t = Self::new(n, writers, |_| {});
        for i in 0..n {
            t.start_node(i).await;
        }
        t.wait_connected().await;
        t
    }

    /// Starts (or restarts) node `i` on its data dir, dialing every other known node.
    pub async fn start_node(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} already running");
        let listen = match &self.p2p_addrs[i] {
            Some(a) => a
                .rsplit_once("/p2p/")
                .map_or(a.clone(), |(addr, _)| addr.to_string()),
            None => "/ip4/127.0.0.1/tcp/0".to_string(),
        };
        let peers = self
            .p2p_addrs
            .iter()
            .enumerate()
            .filter(|(j, a)| *j != i && a.is_some())
            .filter_map(|(_, a)| a.clone())
            .collect();
        let n = self.validators.len();
        let (key, node_key) = match i.checked_sub(n) {
            None => (Some(self.validators[i].clone()), None),
            Some(k) => (None, Some(self.observers[k].clone())),
        };
        let node = Node::start(NodeOptions {
            genesis: self.genesis.clone(),
            data_dir: Some(self.dirs[i].path().join("data")),
            key,
            rpc: RpcConfig {
                addr: ([127, 0, 0, 1], 0).into(),
                ..RpcConfig::default()
            },
            p2p: Some(auditchain_node::node::P2pOptions {
                listen: vec![listen],
                peers,
                observers: self.observers.iter().map(SecretKey::public_key).collect(),
                node_key,
            }),
            admin_addr: Some(([127, 0, 0, 1], 0).into()),
        })
        .await
        .expect("node starts");
        let addr = node
            .net
            .as_ref()
            .expect("network")
            .listen_addrs()
            .await
            .expect("listen addrs")
            .remove(0);
        self.p2p_addrs[i] = Some(addr);
        self.nodes[i] = Some(node);
    }

    /// Stops node `i` (its data dir stays).
    pub async fn stop_node(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.stop().await;
        }
    }

    /// Node `i`, which must be running.
    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node running")
    }

    /// An HTTP client for node `i`.
    pub fn client(&self, i: usize) -> HttpClient {
        client(self.node(i))
    }

    /// Indices of running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect()
    }

    /// Waits (≤ 30 s) until every running node is connected to every other running node.
    pub async fn wait_connected(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let running = self.running();
        for &i in &running {
            let net = self.node(i).net.as_ref().expect("network");
            loop {
                let peers = net.peers().await.expect("peers").len();
                if peers + 1 >= running.len() {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "node {i} has {peers} peers of {}",
                    running.len() - 1
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Waits (≤ `secs`) until every running node's head holds at least `events` events and
    /// is at least at `height`; returns the lowest head height among them.
    pub async fn wait_all(&self, events: u64, height: u64, secs: u64) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let mut lowest = u64::MAX;
            let mut done = true;
            for i in self.running() {
                let h = self.client(i).get_head().await.expect("head");
                lowest = lowest.min(h.height);
                done &= h.history_size >= events && h.height >= height;
            }
            if done {
                return lowest;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not every node reached {events} events and height {height} within {secs} s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Signs a `record_event` by writer `w`.
    pub fn record(&self, w: usize, nonce: u64, ty: &str, entity: &str, data: Value) -> Transaction {
        sign_record(
            &self.writers[w],
            self.genesis.hash(),
            nonce,
            ty,
            entity,
            data,
        )
    }

    /// Stops every node.
    pub async fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i).await;
        }
    }
}

impl Testnet {
    /// An HTTP client for node `i`'s admin listener.
    pub fn admin(&self, i: usize) -> HttpClient {
        let addr = self.node(i).admin_addr.expect("admin listener");
        auditchain_rpc::http_client(&format!("http://{addr}"), Duration::from_secs(10))
            .expect("client")
    }

    /// Cuts (`up = false`) or restores the link between validators `a` and `b` through both
    /// nodes' admin API (each refuses or allows the other's peer id).
    pub async fn set_link(&self, a: usize, b: usize, up: bool) {
        use auditchain_rpc::admin::AdminApiClient;
        let id = |i: usize| auditchain_p2p::peer_id_of(&self.validators[i].public_key());
        for (x, y) in [(a, b), (b, a)] {
            let c = self.admin(x);
            let r = if up {
                c.allow_peer(id(y)).await
            } else {
                c.refuse_peer(id(y)).await
            };
            assert!(r.expect("admin call"));
        }
    }

    /// A node outside the testnet's slots with observer `k`'s identity, its data in `dir`,
    /// dialing only `peers` (multiaddrs); it allows the validators and every observer. For
    /// tests that give a node one chosen peer (a fake sync server, one validator).
    pub async fn start_outside_observer(
        &self,
        k: usize,
        dir: &std::path::Path,
        peers: Vec<String>,
    ) -> Node {
        Node::start(NodeOptions {
            genesis: self.genesis.clone(),
            data_dir: Some(dir.join("data")),
            key: None,
            rpc: RpcConfig {
                addr: ([127, 0, 0, 1], 0).into(),
                ..RpcConfig::default()
            },
            p2p: Some(auditchain_node::node::P2pOptions {
                listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
                peers,
                observers: self.observers.iter().map(SecretKey::public_key).collect(),
                node_key: Some(self.observers[k].clone()),
            }),
            admin_addr: None,
        })
        .await
        .expect("observer starts")
    }

    /// A raw p2p node with observer `k`'s identity, dialing every started node and serving
    /// sync from `provider`: for injecting bad input. Waits (≤ 20 s) until it is connected to
    /// `connected` peers and its subscriptions had time to spread.
    pub async fn injector(
        &self,
        k: usize,
        provider: std::sync::Arc<dyn auditchain_p2p::BlockProvider>,
        connected: usize,
    ) -> (
        auditchain_p2p::NetHandle,
        tokio::sync::mpsc::Receiver<auditchain_p2p::NetEvent>,
    ) {
        let (net, events) = auditchain_p2p::start(
            auditchain_p2p::P2pConfig {
                key: self.observers[k].clone(),
                listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
                bootstrap: self.p2p_addrs.iter().flatten().cloned().collect(),
                allowed: self
                    .validators
                    .iter()
                    .chain(&self.observers)
                    .map(SecretKey::public_key)
                    .collect(),
                chain_id: self.genesis.hash(),
                max_message_bytes: auditchain_p2p::MAX_GOSSIP_BYTES,
            },
            provider,
        )
        .await
        .expect("injector starts");
        wait_until("the injector connects", 20, async || {
            net.peers()
                .await
                .map(|p| p.len() >= connected)
                .unwrap_or(false)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        (net, events)
    }
}

/// Polls `f` every 50 ms until it is true; panics naming `what` after `secs` seconds.
pub async fn wait_until(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits up to `secs` s until the peer `peer_id` has answered at least once (`served` counts
/// its answers) and `net` no longer lists it among its peers: it was penalised into a ban.
/// Panics naming `what` on timeout.
pub async fn wait_banned(
    what: &str,
    secs: u64,
    net: &auditchain_p2p::NetHandle,
    peer_id: &str,
    served: &std::sync::atomic::AtomicU64,
) {
    wait_until(what, secs, async || {
        served.load(std::sync::atomic::Ordering::SeqCst) > 0
            && net
                .peers()
                .await
                .map(|ps| !ps.iter().any(|p| p.peer_id == peer_id))
                .unwrap_or(false)
    })
    .await;
}
