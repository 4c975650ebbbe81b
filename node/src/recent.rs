//! Transactions this node verified recently, so that a gossiped copy arriving after its
//! transaction was admitted or committed costs one SHA-256 instead of a parse and a signature
//! check.
//!
//! Under load a gossiped batch often arrives after the proposal that carried its transactions:
//! it was queued behind other batches at admission priority. Measured in `bench cluster`, such
//! late batches kept every node verifying already-committed transactions for seconds after
//! the load stopped, and client submissions waited behind them.
//!
//! Invariant: an entry names an exact signed transaction (its id and its signature) whose
//! signature verified here, so skipping a copy never lets an unverified signature through:
//! a copy with the same body but another signature is a different entry. Memory is bounded:
//! two generations of at most [`GENERATION`] entries (32 bytes each); when the newer one
//! fills, the older one is dropped, so an entry lives for 65,536 to 131,072 insertions.

use std::collections::HashSet;
use std::sync::Mutex;

use auditchain_primitives::bytes::sha256_parts;
use auditchain_primitives::{Hash, Signature, Transaction};

/// Entries per generation.
pub const GENERATION: usize = 1 << 16;

/// The key of one signed transaction: SHA-256(id ‖ signature).
pub fn key(id: &Hash, signature: &Signature) -> Hash {
    sha256_parts(&[&id.0, &signature.0])
}

/// Recently verified transactions; shared by the chain actor (which adds what it admits or
/// commits) and the network pump (which skips them in gossip).
#[derive(Default)]
pub struct RecentTxs {
    generations: Mutex<[HashSet<Hash>; 2]>,
}

impl RecentTxs {
    /// Records transactions whose signatures verified.
    pub fn insert<'a>(&self, txs: impl IntoIterator<Item = &'a Transaction>) {
        let keys: Vec<Hash> = txs
            .into_iter()
            .map(|t| key(&t.id(), t.signature()))
            .collect();
        self.insert_keys(keys);
    }

    /// Records keys (see [`key`]).
    fn insert_keys(&self, keys: impl IntoIterator<Item = Hash>) {
        let mut g = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            if g[0].len() >= GENERATION {
                g.swap(0, 1);
                g[0].clear();
            }
            g[0].insert(k);
        }
    }

    /// For each key: whether it was recorded (and not yet forgotten).
    pub fn contains_each(&self, keys: &[Hash]) -> Vec<bool> {
        let g = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .map(|k| g[0].contains(k) || g[1].contains(k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::tests::{forged, tx};
    use auditchain_primitives::SecretKey;

    #[test]
    fn an_entry_is_one_signed_transaction_and_old_entries_are_forgotten() {
        let key_a = SecretKey::from_seed(&[3; 32]);
        let recent = RecentTxs::default();
        let first = tx(0, &key_a);
        recent.insert([&first]);
        let bad = forged(first.clone());
        let k = |t: &Transaction| key(&t.id(), t.signature());
        assert_eq!(first.id(), bad.id(), "same body, so the same id");
        assert_eq!(
            recent.contains_each(&[k(&first), k(&bad)]),
            vec![true, false]
        );
        // two generations later the first entry is gone; the latest are kept
        let keys: Vec<Hash> = (0..2 * GENERATION as u64)
            .map(|i| sha256_parts(&[&i.to_be_bytes()]))
            .collect();
        recent.insert_keys(keys.iter().copied());
        assert_eq!(
            recent.contains_each(&[k(&first), keys[keys.len() - 1], keys[GENERATION]]),
            vec![false, true, true]
        );
    }
}
