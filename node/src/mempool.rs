//! The mempool: transactions admitted but not yet committed.
//!
//! Bounded by count (`mempool_max_txs`), bytes (`mempool_max_bytes`) and per signer
//! (`mempool_max_per_signer`, also the nonce window). Admission is explicit: every rejection
//! is an [`AdmitError`], never a silent drop. When full, a transaction displaces its own
//! signer's pending transactions with higher nonces (highest first) if that makes room —
//! they cannot commit before it — so future nonces can never lock out the ones that close a
//! gap (docs/rpc.md). Signatures are checked before admission (in
//! batches, by the RPC backend); the mempool checks chain state: signer role, nonce, duplicates.
//!
//! Invariants: each signer has at most one transaction per nonce, every pending nonce is ≥ the
//! signer's next committed nonce, and the byte and count totals equal the sums over entries.
//! Owned by the chain actor only.

use std::collections::{BTreeMap, HashMap};

use auditchain_genesis::Limits;
use auditchain_primitives::{Hash, PublicKey, Transaction};

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdmitError {
    /// Same id already pending.
    #[error("already pending")]
    DuplicatePending,
    /// Same id already committed.
    #[error("already committed")]
    DuplicateCommitted,
    /// Nonce below the signer's next expected nonce.
    #[error("nonce {got} too low, expected {expected}")]
    NonceTooLow {
        /// Next expected nonce.
        expected: u64,
        /// Nonce given.
        got: u64,
    },
    /// Nonce beyond the window.
    #[error("nonce {got} too high, expected {expected}")]
    NonceTooHigh {
        /// Next expected nonce.
        expected: u64,
        /// Nonce given.
        got: u64,
        /// Window size.
        window: u64,
    },
    /// Another pending transaction holds this nonce.
    #[error("nonce {nonce} taken by {other}")]
    NonceTaken {
        /// The nonce.
        nonce: u64,
        /// The pending transaction.
        other: Hash,
    },
    /// Mempool or signer quota full.
    #[error("mempool full: {0}")]
    Full(String),
    /// Refused by a state rule before the mempool (writer role, a contract call that would
    /// fail); carries the RPC error to return.
    #[error("{0}")]
    Rejected(auditchain_rpc::RpcError),
}

impl From<auditchain_rpc::RpcError> for AdmitError {
    fn from(e: auditchain_rpc::RpcError) -> Self {
        AdmitError::Rejected(e)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    id: Hash,
    tx: Transaction,
    size: usize,
    arrival: u64,
}

/// The pending transactions of one node. Each is held once, in its signer's nonce-ordered
/// run (`by_signer`); `ids` and `arrivals` point into the runs by `(signer, nonce)`, so that
/// block selection walks arrivals and runs without a lookup by id per transaction (on a
/// mempool of tens of thousands, those lookups miss the cache).
#[derive(Debug)]
pub struct Mempool {
    limits: Limits,
    by_signer: HashMap<PublicKey, BTreeMap<u64, Entry>>,
    ids: HashMap<Hash, (PublicKey, u64)>,
    arrivals: BTreeMap<u64, (PublicKey, u64)>,
    next_arrival: u64,
    bytes: usize,
}

impl Mempool {
    /// An empty mempool with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            by_signer: HashMap::new(),
            ids: HashMap::new(),
            arrivals: BTreeMap::new(),
            next_arrival: 0,
            bytes: 0,
        }
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Total pending bytes (body text + signature).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A pending transaction by id.
    pub fn get(&self, id: &Hash) -> Option<&Transaction> {
        self.entry(id).map(|e| &e.tx)
    }

    fn entry(&self, id: &Hash) -> Option<&Entry> {
        let (signer, nonce) = self.ids.get(id)?;
        self.by_signer.get(signer)?.get(nonce)
    }

    /// The next nonce `signer` should use given `committed_next`: one past the contiguous run of
    /// pending nonces starting at `committed_next`.
    pub fn next_nonce(&self, signer: &PublicKey, committed_next: u64) -> u64 {
        let mut n = committed_next;
        if let Some(m) = self.by_signer.get(signer) {
            for (&nonce, _) in m.range(committed_next..) {
                if nonce != n {
                    break;
                }
                n += 1;
            }
        }
        n
    }

    /// Admits `tx` with id `id`; `committed_next` is the signer's next committed nonce and
    /// `committed` says whether the id is already in the chain. Errors: [`AdmitError`].
    pub fn admit(
        &mut self,
        tx: Transaction,
        id: Hash,
        committed_next: u64,
        committed: impl FnOnce() -> bool,
    ) -> Result<(), AdmitError> {
        if self.ids.contains_key(&id) {
            return Err(AdmitError::DuplicatePending);
        }
        let nonce = tx.body().nonce;
        if nonce < committed_next {
            if committed() {
                return Err(AdmitError::DuplicateCommitted);
            }
            return Err(AdmitError::NonceTooLow {
                expected: committed_next,
                got: nonce,
            });
        }
        let window = u64::from(self.limits.mempool_max_per_signer);
        if nonce >= committed_next.saturating_add(window) {
            return Err(AdmitError::NonceTooHigh {
                expected: committed_next,
                got: nonce,
                window,
            });
        }
        let signer = *tx.signer();
        let mine = self.by_signer.get(&signer);
        if let Some(other) = mine.and_then(|m| m.get(&nonce)) {
            return Err(AdmitError::NonceTaken {
                nonce,
                other: other.id,
            });
        }
        // When full, the signer's own pending transactions with higher nonces make room
        // (highest first): they cannot commit before this one anyway, and otherwise a mempool
        // filled with a signer's future nonces could never take the nonces that close the gap.
        // Decided first, removed only if admission then succeeds.
        let size = tx.size_bytes();
        let (mut count, mut mine_count, mut bytes) =
            (self.ids.len(), mine.map_or(0, BTreeMap::len), self.bytes);
        let mut victims = Vec::new();
        // Lazy: a full mempool is rare, and collecting a signer's later nonces on every
        // admission cost O(pending) each (quadratic under out-of-order gossip).
        let mut later = mine
            .into_iter()
            .flat_map(|m| m.range(nonce + 1..).rev().map(|(_, e)| (e.id, e.size)));
        loop {
            let full = if mine_count >= self.limits.mempool_max_per_signer as usize {
                Some(format!(
                    "signer {signer} has {mine_count} pending transactions (limit {})",
                    self.limits.mempool_max_per_signer
                ))
            } else if count >= self.limits.mempool_max_txs as usize {
                Some(format!(
                    "{count} transactions pending (limit {})",
                    self.limits.mempool_max_txs
                ))
            } else if (bytes + size) as u64 > self.limits.mempool_max_bytes {
                Some(format!(
                    "{bytes} bytes pending (limit {})",
                    self.limits.mempool_max_bytes
                ))
            } else {
                None
            };
            let Some(reason) = full else { break };
            let Some((victim, victim_size)) = later.next() else {
                return Err(AdmitError::Full(reason));
            };
            count -= 1;
            mine_count -= 1;
            bytes -= victim_size;
            victims.push(victim);
        }
        for v in &victims {
            self.remove(v);
        }
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.by_signer.entry(signer).or_default().insert(
            nonce,
            Entry {
                id,
                tx,
                size,
                arrival,
            },
        );
        self.arrivals.insert(arrival, (signer, nonce));
        self.ids.insert(id, (signer, nonce));
        self.bytes += size;
        Ok(())
    }

    /// Picks transactions for a block: in arrival order, each signer's transactions in nonce
    /// order starting at its next committed nonce (`committed_next`), skipping gaps, up to
    /// `max_txs` transactions and `max_bytes` bytes. Returns `(id, tx)` in block order.
    pub fn select(
        &self,
        max_txs: usize,
        max_bytes: u64,
        mut committed_next: impl FnMut(&PublicKey) -> u64,
    ) -> Vec<(Hash, Transaction)> {
        let mut out = Vec::new();
        let mut bytes = 0u64;
        let mut expected: HashMap<PublicKey, u64> = HashMap::new();
        'outer: for &(signer, nonce) in self.arrivals.values() {
            let exp = *expected
                .entry(signer)
                .or_insert_with(|| committed_next(&signer));
            if nonce != exp {
                continue;
            }
            // Take this transaction and the signer's consecutive successors already pending,
            // so a signer's run is not split by arrival-order interleaving.
            let Some(run) = self.by_signer.get(&signer) else {
                continue;
            };
            let mut n = exp;
            for (&nonce, re) in run.range(exp..) {
                if nonce != n || out.len() >= max_txs {
                    break;
                }
                if bytes + re.size as u64 > max_bytes {
                    break 'outer;
                }
                bytes += re.size as u64;
                out.push((re.id, re.tx.clone()));
                n += 1;
            }
            expected.insert(signer, n);
            if out.len() >= max_txs {
                break;
            }
        }
        out
    }

    /// Removes committed transactions, then drops any pending transaction whose nonce is now
    /// below its signer's next committed nonce (it can never commit).
    pub fn remove_committed(
        &mut self,
        ids: &[Hash],
        mut committed_next: impl FnMut(&PublicKey) -> u64,
    ) {
        let mut touched = Vec::new();
        for id in ids {
            if let Some(e) = self.remove(id) {
                touched.push(*e.tx.signer());
            }
        }
        touched.sort();
        touched.dedup();
        for signer in touched {
            let next = committed_next(&signer);
            let stale: Vec<Hash> = self
                .by_signer
                .get(&signer)
                .map(|m| m.range(..next).map(|(_, e)| e.id).collect())
                .unwrap_or_default();
            for id in stale {
                self.remove(&id);
            }
        }
    }

    fn remove(&mut self, id: &Hash) -> Option<Entry> {
        let (signer, nonce) = self.ids.remove(id)?;
        let m = self.by_signer.get_mut(&signer)?;
        let e = m.remove(&nonce)?;
        if m.is_empty() {
            self.by_signer.remove(&signer);
        }
        self.bytes -= e.size;
        self.arrivals.remove(&e.arrival);
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditchain_primitives::tx::{Payload, TxBody};
    use auditchain_primitives::{SecretKey, sha256};

    fn tx(key: &SecretKey, nonce: u64) -> (Hash, Transaction) {
        let t = Transaction::sign(
            TxBody {
                chain_id: Hash([1; 32]),
                signer: key.public_key(),
                nonce,
                timestamp_ms: 1,
                payload: Payload::RecordEvent {
                    event_type: "t".into(),
                    entity_id: "e".into(),
                    data: None,
                    data_hash: sha256(b"x"),
                },
            },
            key,
        )
        .unwrap();
        (t.id(), t)
    }

    fn limits(per_signer: u32, total: u32) -> Limits {
        Limits {
            mempool_max_per_signer: per_signer,
            mempool_max_txs: total,
            ..Limits::default()
        }
    }

    #[test]
    fn admission_rules() {
        let k = SecretKey::from_seed(&[1; 32]);
        let mut m = Mempool::new(limits(3, 10));
        let (id0, t0) = tx(&k, 5);
        m.admit(t0.clone(), id0, 5, || false).unwrap();
        assert_eq!(
            m.admit(t0.clone(), id0, 5, || false),
            Err(AdmitError::DuplicatePending)
        );
        let (id4, t4) = tx(&k, 4);
        assert_eq!(
            m.admit(t4.clone(), id4, 5, || false),
            Err(AdmitError::NonceTooLow {
                expected: 5,
                got: 4
            })
        );
        assert_eq!(
            m.admit(t4, id4, 5, || true),
            Err(AdmitError::DuplicateCommitted)
        );
        let (id8, t8) = tx(&k, 8);
        assert!(matches!(
            m.admit(t8, id8, 5, || false),
            Err(AdmitError::NonceTooHigh { .. })
        ));
        // same nonce, different tx (different timestamp)
        let other = Transaction::sign(
            TxBody {
                timestamp_ms: 2,
                ..t0.body().clone()
            },
            &k,
        )
        .unwrap();
        assert_eq!(
            m.admit(other.clone(), other.id(), 5, || false),
            Err(AdmitError::NonceTaken {
                nonce: 5,
                other: id0
            })
        );
        for n in [6, 7] {
            let (i, t) = tx(&k, n);
            m.admit(t, i, 5, || false).unwrap();
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.next_nonce(&k.public_key(), 5), 8);
        let bytes = m.bytes();
        m.remove_committed(&[id0], |_| 6);
        assert_eq!(m.len(), 2);
        assert!(m.bytes() < bytes);
    }

    #[test]
    fn full_pool_and_signer_quota_are_explicit() {
        let (a, b) = (
            SecretKey::from_seed(&[1; 32]),
            SecretKey::from_seed(&[2; 32]),
        );
        let mut m = Mempool::new(limits(2, 3));
        for n in 0..2 {
            let (i, t) = tx(&a, n);
            m.admit(t, i, 0, || false).unwrap();
        }
        // the window is also 2, so nonce 2 is "too high" rather than over quota
        let (i, t) = tx(&a, 2);
        assert!(matches!(
            m.admit(t, i, 0, || false),
            Err(AdmitError::NonceTooHigh { .. })
        ));
        let (i, t) = tx(&b, 0);
        m.admit(t, i, 0, || false).unwrap();
        let (i, t) = tx(&b, 1);
        assert!(matches!(
            m.admit(t, i, 0, || false),
            Err(AdmitError::Full(_))
        ));
    }

    #[test]
    fn when_full_a_lower_nonce_displaces_the_signers_highest_nonces_only() {
        let (a, b) = (
            SecretKey::from_seed(&[1; 32]),
            SecretKey::from_seed(&[2; 32]),
        );
        // a pool of 3 filled with a's future nonces 5, 6, 7: nonce 0 could never get in
        let mut m = Mempool::new(limits(100, 3));
        let ids: Vec<Hash> = (5..8)
            .map(|n| {
                let (i, t) = tx(&a, n);
                m.admit(t, i, 0, || false).unwrap();
                i
            })
            .collect();
        let (i0, t0) = tx(&a, 0);
        m.admit(t0, i0, 0, || false).unwrap();
        assert!(m.get(&i0).is_some());
        assert!(m.get(&ids[2]).is_none(), "nonce 7 made room");
        assert!(m.get(&ids[0]).is_some() && m.get(&ids[1]).is_some());
        assert_eq!(m.len(), 3);
        // another signer displaces nothing of a's, and a higher nonce of a displaces nothing
        let (ib, tb) = tx(&b, 0);
        assert!(matches!(
            m.admit(tb, ib, 0, || false),
            Err(AdmitError::Full(_))
        ));
        let (i9, t9) = tx(&a, 9);
        assert!(matches!(
            m.admit(t9, i9, 0, || false),
            Err(AdmitError::Full(_))
        ));
        assert_eq!(m.len(), 3, "a refused admission changes nothing");
        assert!(m.get(&ids[1]).is_some());
    }

    impl Mempool {
        /// Asserts the invariants: every pending transaction is reachable by id, by arrival
        /// and in its signer's run under its own nonce, once; the byte total is their sum.
        fn check(&self) {
            let mut n = 0;
            let mut bytes = 0;
            for (signer, run) in &self.by_signer {
                assert!(!run.is_empty(), "no empty runs are kept");
                for (nonce, e) in run {
                    n += 1;
                    bytes += e.size;
                    assert_eq!((e.tx.signer(), e.tx.body().nonce), (signer, *nonce));
                    assert_eq!(e.tx.id(), e.id);
                    assert_eq!(self.ids.get(&e.id), Some(&(*signer, *nonce)));
                    assert_eq!(self.arrivals.get(&e.arrival), Some(&(*signer, *nonce)));
                }
            }
            assert_eq!((self.ids.len(), self.arrivals.len()), (n, n));
            assert_eq!(self.bytes, bytes);
        }
    }

    #[test]
    fn random_admissions_and_commits_keep_the_invariants() {
        let keys: Vec<SecretKey> = (1..=3).map(|i| SecretKey::from_seed(&[i; 32])).collect();
        let txs: Vec<Vec<(Hash, Transaction)>> = keys
            .iter()
            .map(|k| (0..12).map(|n| tx(k, n)).collect())
            .collect();
        let mut committed = [0u64; 3];
        let mut m = Mempool::new(limits(6, 10));
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut rand = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let signer = |p: &PublicKey| keys.iter().position(|k| k.public_key() == *p).unwrap();
        let mut commits = 0;
        for _ in 0..2_000 {
            if rand(4) > 0 {
                let s = rand(3) as usize;
                let (id, t) = txs[s][rand(12) as usize].clone();
                let _ = m.admit(t, id, committed[s], || false);
            } else {
                let picked = m.select(1 + rand(5) as usize, u64::MAX, |p| committed[signer(p)]);
                for (_, t) in &picked {
                    let s = signer(t.signer());
                    assert_eq!(t.body().nonce, committed[s], "runs start at the next nonce");
                    committed[s] += 1;
                }
                commits += picked.len();
                let ids: Vec<Hash> = picked.iter().map(|(id, _)| *id).collect();
                m.remove_committed(&ids, |p| committed[signer(p)]);
                if committed.iter().any(|&c| c >= 12) {
                    committed = [0; 3];
                    m = Mempool::new(limits(6, 10));
                }
            }
            m.check();
        }
        assert!(commits > 100, "the walk commits ({commits})");
    }

    #[test]
    fn select_keeps_nonce_order_and_skips_gaps() {
        let (a, b) = (
            SecretKey::from_seed(&[1; 32]),
            SecretKey::from_seed(&[2; 32]),
        );
        let mut m = Mempool::new(limits(100, 100));
        // arrival order: a1, b0, a0, a3 (gap at a2), b1
        for (k, n) in [(&a, 1), (&b, 0), (&a, 0), (&a, 3), (&b, 1)] {
            let (i, t) = tx(k, n);
            m.admit(t, i, 0, || false).unwrap();
        }
        let picked: Vec<(PublicKey, u64)> = m
            .select(100, u64::MAX, |_| 0)
            .iter()
            .map(|(_, t)| (*t.signer(), t.body().nonce))
            .collect();
        let (pa, pb) = (a.public_key(), b.public_key());
        assert_eq!(picked, vec![(pb, 0), (pb, 1), (pa, 0), (pa, 1)]);
        assert_eq!(m.select(3, u64::MAX, |_| 0).len(), 3);
        let one = m.select(100, 1, |_| 0);
        assert!(one.is_empty(), "byte limit respected");
    }
}
