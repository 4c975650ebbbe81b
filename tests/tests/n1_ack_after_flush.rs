//! Nothing is acknowledged before it is durable: while the store's flush is held back, a
//! transaction whose block is already applied stays `pending` to every reader and
//! `submitAndWait` does not return; releasing the flush makes it committed everywhere.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use auditchain_node::{Node, NodeOptions};
use auditchain_primitives::SecretKey;
use auditchain_rpc::types::TxStatus;
use auditchain_rpc::{AuditChainApiClient, RpcConfig};
use auditchain_storage::kv::{Row, Rows, Write};
use auditchain_storage::{Kv, MemKv, StorageError, Store};
use auditchain_tests::{genesis, sign_record, wire};
use serde_json::json;

/// An in-memory backend whose `flush` blocks while the gate is closed.
#[derive(Default)]
struct GatedKv {
    inner: MemKv,
    gate: Arc<(Mutex<bool>, Condvar)>,
}

impl Kv for GatedKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }
    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Rows, StorageError> {
        self.inner.scan(from, to, limit)
    }
    fn seek_back(&self, from: &[u8], key: &[u8]) -> Result<Option<Row>, StorageError> {
        self.inner.seek_back(from, key)
    }
    fn apply(&self, writes: Vec<Write>) -> Result<(), StorageError> {
        self.inner.apply(writes)
    }
    fn flush(&self) -> Result<(), StorageError> {
        let (lock, cv) = &*self.gate;
        let mut closed = lock.lock().expect("lock");
        while *closed {
            closed = cv.wait(closed).expect("wait");
        }
        Ok(())
    }
    fn log_append(&self, bytes: &[u8]) -> Result<u64, StorageError> {
        self.inner.log_append(bytes)
    }
    fn log_sync(&self) -> Result<(), StorageError> {
        self.inner.log_sync()
    }
    fn log_read(&self, at: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        self.inner.log_read(at, len)
    }
    fn log_len(&self) -> Result<u64, StorageError> {
        self.inner.log_len()
    }
    fn log_truncate(&self, len: u64) -> Result<(), StorageError> {
        self.inner.log_truncate(len)
    }
}

fn set_gate(gate: &(Mutex<bool>, Condvar), closed: bool) {
    *gate.0.lock().expect("lock") = closed;
    gate.1.notify_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_and_status_wait_for_the_flush() {
    let validator = SecretKey::generate();
    let writer = SecretKey::generate();
    let g = genesis(&validator, std::slice::from_ref(&writer), |_| {});
    let kv = GatedKv::default();
    let gate = Arc::clone(&kv.gate);
    let node = Node::start_with_store(
        NodeOptions {
            genesis: g.clone(),
            data_dir: None,
            key: Some(validator),
            rpc: RpcConfig {
                addr: ([127, 0, 0, 1], 0).into(),
                ..RpcConfig::default()
            },
            p2p: None,
            admin_addr: None,
        },
        Arc::new(Store::new(kv)),
    )
    .await
    .expect("start");
    let c = auditchain_rpc::http_client(&node.rpc_url(), Duration::from_secs(30)).expect("client");
    let head_before = c.get_head().await.expect("head");

    set_gate(&gate, true);
    let tx = sign_record(&writer, g.hash(), 0, "login", "host", json!({"u": "root"}));
    let waiter = {
        let c = c.clone();
        let t = wire(&tx);
        tokio::spawn(async move { c.submit_and_wait(t, Some(20_000)).await })
    };
    // wait until the block is applied in the store (visible to a raw reader) …
    let applied = async {
        loop {
            if node.store.tx_seq(&tx.id()).expect("read").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), applied)
        .await
        .expect("block applied");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // … yet no client is told: status pending, no receipt, head unchanged, waiter still waiting
    let st = c.get_transaction(tx.id()).await.expect("status");
    assert_eq!(st.status, TxStatus::Pending);
    assert!(c.get_proof(tx.id()).await.is_err());
    assert_eq!(c.get_head().await.expect("head").height, head_before.height);
    assert!(
        !waiter.is_finished(),
        "submitAndWait returned before the flush"
    );

    set_gate(&gate, false);
    let receipt = waiter.await.expect("join").expect("receipt after flush");
    assert_eq!(receipt.tx_id, tx.id());
    let st = c.get_transaction(tx.id()).await.expect("status");
    assert_eq!(st.status, TxStatus::Committed);
    node.stop().await;
}
