//! Test harness: a node on loopback (port 0) over a temporary sled directory, with generated
//! keys and helpers to sign and submit events. Every chain stops when the test ends.

use std::time::Duration;

use auditchain_genesis::{ConsensusConfig, Genesis};
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
    let ConsensusConfig::RoundRobin(rr) = &mut g.consensus;
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
                data: Some(data),
            },
        },
        key,
    )
    .expect("valid body")
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
