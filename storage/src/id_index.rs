//! The transaction-id index (tx id → sequence number), kept as a small log-structured merge
//! tree over the ordered keyspace instead of one key per transaction.
//!
//! Why: tx ids are uniformly random, and sled 0.34 pays a copy-on-write of a leaf and a log
//! record for every key inserted at a random place: about 20 µs per id on the 2-core reference
//! machine, more than half of the writer's time per transaction. Sorted runs written as large
//! pages at sequential keys cost well under 1 µs per id.
//!
//! Layout (see [`crate::keys`]):
//! - level 0, `J ‖ height u64 ‖ part u32` → the block's entries, sorted, in parts of at most
//!   [`PART_ENTRIES`] entries, each part sorted: a block writes them
//!   inside its atomic commit, so an acknowledged transaction is always findable; reverting
//!   the block deletes them;
//! - sorted runs, `O ‖ run u64` → run header (entries u64, level u8), and
//!   `L ‖ run u64 ‖ last id` → a page of up to [`PAGE_ENTRIES`] entries ascending by id;
//!   keying a page by its last id makes "the first page whose last id ≥ x" one forward seek.
//!
//! An entry is `id (32 bytes) ‖ seq u64 big-endian`, 40 bytes. Compaction (after a commit,
//! when level 0 holds enough entries or blocks, see [`Tuning`]) turns level 0 into a run, then
//! merges `fanout` runs of one level into one run of the next, up to `max_merge_level`; each
//! compaction is one atomic batch, so a crash leaves the old or the new layout, never a mix.
//! Lookup order: level 0, then every run.
//!
//! Invariant: every committed transaction has an entry in level 0 or in a run. Entries of
//! blocks reverted after compaction may remain in runs; they are stale, so a run hit is
//! accepted only if the transaction stored at that sequence number has that id.

use auditchain_primitives::Hash;

/// Bytes of one entry: id ‖ seq.
pub const ENTRY: usize = 40;
/// Entries per run page (20,480 bytes).
pub const PAGE_ENTRIES: usize = 512;
/// Most entries in one level-0 part of a block (1,638: [`crate::keys::MAX_VALUE_BYTES`] /
/// [`ENTRY`]).
pub const PART_ENTRIES: usize = crate::keys::MAX_VALUE_BYTES / ENTRY;

/// When the index compacts. [`Tuning::default`] is what nodes use; tests shrink it to reach
/// merges with few blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Level 0 is compacted once it holds this many entries (default 32,768)…
    pub compact_entries: usize,
    /// …or this many level-0 parts (default 256; a block writes one per [`PART_ENTRIES`]
    /// ids; bounds the level-0 scan of a lookup on chains of small blocks).
    pub compact_blocks: usize,
    /// Runs of one level merged together (default 8).
    pub fanout: usize,
    /// Runs above this level are never merged (default 1): a merge holds its runs in memory,
    /// 40 bytes per entry, at most `fanout^(max_merge_level+1) · compact_entries` entries
    /// (84 MB by default). Lookups seek once per run, so a chain of 10^8 transactions has about
    /// 50 top-level runs.
    pub max_merge_level: u8,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            compact_entries: 32_768,
            compact_blocks: 256,
            fanout: 8,
            max_merge_level: 1,
        }
    }
}

impl Tuning {
    /// Level of a run of `entries` entries: 0 below `fanout · compact_entries`, +1 per factor
    /// `fanout` above.
    pub fn level_of(&self, entries: u64) -> u8 {
        let fanout = self.fanout.max(2) as u64;
        let mut level = 0;
        let mut bound = fanout.saturating_mul(self.compact_entries as u64);
        while entries >= bound && level < u8::MAX {
            level += 1;
            bound = bound.saturating_mul(fanout);
        }
        level
    }
}

/// Encodes `(id, seq)` pairs as a sorted entry list.
pub fn encode_entries(mut pairs: Vec<(Hash, u64)>) -> Vec<u8> {
    pairs.sort_unstable_by_key(|p| p.0.0);
    let mut out = Vec::with_capacity(pairs.len() * ENTRY);
    for (id, seq) in pairs {
        out.extend_from_slice(&id.0);
        out.extend_from_slice(&seq.to_be_bytes());
    }
    out
}

/// Binary search of a sorted entry list for `id`. `None` if absent or if `list` is not a
/// whole number of entries.
pub fn search(list: &[u8], id: &Hash) -> Option<u64> {
    if !list.len().is_multiple_of(ENTRY) {
        return None;
    }
    let n = list.len() / ENTRY;
    let entry = |i: usize| &list[i * ENTRY..(i + 1) * ENTRY];
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        match entry(mid)[..32].cmp(&id.0[..]) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => {
                let seq: [u8; 8] = entry(mid)[32..].try_into().ok()?;
                return Some(u64::from_be_bytes(seq));
            }
        }
    }
    None
}

/// A run header: its entry count and level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunHeader {
    /// Entries in the run.
    pub entries: u64,
    /// Its level ([`Tuning::level_of`] its size when written).
    pub level: u8,
}

impl RunHeader {
    /// 9 bytes: entries u64 ‖ level u8.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = self.entries.to_be_bytes().to_vec();
        v.push(self.level);
        v
    }

    /// Inverse of [`RunHeader::encode`]; `None` if not 9 bytes.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let arr: [u8; 9] = b.try_into().ok()?;
        Some(Self {
            entries: u64::from_be_bytes(arr[..8].try_into().ok()?),
            level: arr[8],
        })
    }
}

/// Splits a sorted entry list into pages: `(last id, page bytes)`.
pub fn pages(sorted: &[u8]) -> Vec<(Hash, Vec<u8>)> {
    sorted
        .chunks(PAGE_ENTRIES * ENTRY)
        .filter(|p| p.len() >= ENTRY)
        .map(|p| {
            let last = &p[p.len() - ENTRY..p.len() - ENTRY + 32];
            let mut id = [0u8; 32];
            id.copy_from_slice(last);
            (Hash(id), p.to_vec())
        })
        .collect()
}

/// Merges entry lists (each sorted) into one sorted list. Duplicated ids (a block reverted
/// and its transaction included again) keep every entry: lookups check each candidate.
pub fn merge(lists: &[Vec<u8>]) -> Vec<u8> {
    let mut all: Vec<&[u8]> = lists.iter().flat_map(|l| l.chunks_exact(ENTRY)).collect();
    all.sort_by(|a, b| a[..32].cmp(&b[..32]));
    all.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u64) -> Hash {
        auditchain_primitives::sha256(&i.to_be_bytes())
    }

    #[test]
    fn entries_search_pages_and_merge() {
        let list = encode_entries((0..1500).map(|i| (id(i), i * 3)).collect());
        assert_eq!(list.len(), 1500 * ENTRY);
        for i in 0..1500 {
            assert_eq!(search(&list, &id(i)), Some(i * 3));
        }
        assert_eq!(search(&list, &id(1500)), None);
        assert_eq!(
            search(&list[1..], &id(3)),
            None,
            "a torn list finds nothing"
        );
        let ps = pages(&list);
        assert_eq!(ps.len(), 3);
        assert_eq!(ps[2].1.len(), (1500 - 1024) * ENTRY);
        for (last, page) in &ps {
            assert!(search(page, last).is_some());
        }
        assert!(ps.windows(2).all(|w| w[0].0.0 < w[1].0.0));
        let a = encode_entries((0..10).map(|i| (id(i), i)).collect());
        let b = encode_entries((10..20).map(|i| (id(i), i)).collect());
        let m = merge(&[a, b]);
        for i in 0..20 {
            assert_eq!(search(&m, &id(i)), Some(i));
        }
        assert!(
            m.chunks_exact(ENTRY)
                .collect::<Vec<_>>()
                .windows(2)
                .all(|w| w[0][..32] <= w[1][..32])
        );
    }

    #[test]
    fn levels_and_headers() {
        let t = Tuning::default();
        assert_eq!(t.level_of(1), 0);
        assert_eq!(t.level_of(8 * 32_768 - 1), 0);
        assert_eq!(t.level_of(8 * 32_768), 1);
        assert_eq!(t.level_of(64 * 32_768), 2);
        let h = RunHeader {
            entries: 77,
            level: 1,
        };
        assert_eq!(RunHeader::decode(&h.encode()), Some(h));
        assert_eq!(RunHeader::decode(&[1, 2]), None);
    }
}
