//! The admission pool: where transactions arriving from clients (RPC) and peers (gossip) are
//! parsed and their signatures verified, at a lower CPU priority than consensus.
//!
//! Admission is most of a validator's CPU under load, and it is elastic: a transaction that
//! waits a few milliseconds longer loses nothing. Consensus is not: a proposal or vote that
//! waits behind a flood of submissions stalls finality for every transaction already
//! admitted (measured: an empty block took 1.9 s to finalize while 4 nodes on 2 cores
//! verified a burst). So admission runs on its own threads, one per core, with Linux
//! niceness raised by [`NICE`] (CFS then gives a runnable consensus thread about 10× their share of a
//! contended core); the chain actor, block checks, the writer and the network keep normal
//! priority. This is the rule CometBFT applies with per-channel priorities (consensus before
//! mempool), applied here to CPU. Elsewhere than Linux the threads keep normal priority.
//!
//! Invariant: only work whose delay is harmless runs here; nothing consensus waits on.

use std::sync::OnceLock;

use auditchain_primitives::Transaction;
use auditchain_primitives::tx::TxError;

/// How much nicer than the process the admission threads run (niceness 0 is normal, 19 the
/// lowest priority).
pub const NICE: i32 = 10;

fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
            .thread_name(|i| format!("admission-{i}"))
            .start_handler(|_| lower_priority())
            .build()
            .expect("admission threads start")
    })
}

/// Raises the calling thread's niceness by [`NICE`] (at most 19) (Linux; a no-op elsewhere
/// or if refused).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        // On Linux a thread id names one thread: only this thread's priority changes.
        let me = Some(rustix::thread::gettid());
        let nice = getpriority_process(me).map_or(NICE, |n| (n + NICE).min(19));
        if setpriority_process(me, nice).is_err() {
            tracing::debug!("admission thread keeps normal priority (setpriority refused)");
        }
    }
}

/// Runs `f` on the admission pool and waits for its result without blocking the async
/// runtime. Returns `None` if `f` panicked.
pub async fn run<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    pool().spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.ok()
}

/// Verifies the signatures of `txs` (ZIP-215) in batches of 256 spread over the admission
/// threads; one result per transaction, in order. Call it from inside [`run`] so the work
/// stays at admission priority.
pub fn verify(txs: &[Transaction]) -> Vec<Result<(), TxError>> {
    pool().install(|| crate::verify::verify_parallel(txs))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use auditchain_primitives::tx::{Payload, TxBody, WireTx};
    use auditchain_primitives::{SecretKey, Signature, sha256};

    /// A record with nonce `i` signed by `key`.
    pub(crate) fn tx(i: u64, key: &SecretKey) -> Transaction {
        let body = TxBody {
            chain_id: sha256(b"c"),
            signer: key.public_key(),
            nonce: i,
            timestamp_ms: 1_700_000_000_000,
            payload: Payload::RecordEvent {
                event_type: "t".into(),
                entity_id: "e".into(),
                data: None,
                data_hash: sha256(b"d"),
            },
        };
        Transaction::sign(body, key).unwrap()
    }

    /// `t` with its signature replaced by one that does not verify.
    pub(crate) fn forged(t: Transaction) -> Transaction {
        let wire = WireTx {
            body: WireTx::from(t).body,
            signature: Signature([7; 64]),
        };
        Transaction::try_from(wire).unwrap()
    }

    #[tokio::test]
    async fn verification_on_the_pool_gives_one_result_per_transaction_in_order() {
        let key = SecretKey::from_seed(&[9; 32]);
        let mut txs: Vec<Transaction> = (0..600).map(|i| tx(i, &key)).collect();
        // a forged signature in the third batch of 256
        txs[530] = forged(txs[530].clone());
        let results = run(move || verify(&txs)).await.unwrap();
        assert_eq!(results.len(), 600);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.is_err(), i == 530, "transaction {i}: {r:?}");
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn pool_threads_run_at_lower_priority() {
        use rustix::process::getpriority_process;
        let niceness = || getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let pool = run(niceness).await.unwrap();
        assert_eq!(pool, (niceness() + NICE).min(19), "pool niceness");
    }
}
