//! A block's record in the store's append-only log ([`crate::Kv::log_append`]): the block's
//! transactions and the history-tree nodes the block completed, written once when it commits.
//! The `X` key of the block's first sequence number holds the record's [`Location`]; a block
//! without transactions has neither.
//!
//! Why one record per block: sled 0.34 is paid per inserted key, so a block should write few
//! of them. Layout 3 kept an `X` key per 16 transactions and an `R` key per stored history
//! node, about 1,200 sled keys per block of 10,000 transactions; leaving them out cut the
//! CPU of `bench ingest` from 5.62 to 5.19 core-s per 300,000 events (medians of 4
//! interleaved runs, 2-core reference machine), about 8 %. Why the log: sled keeps
//! values inside its B-tree leaves and rewrites a leaf, values included, each time it
//! consolidates one. A record never spans two blocks, and a block's record is the log's last
//! when the block commits, so reverting the head block cuts the log back to where its record
//! began, removing its nodes with its transactions.
//!
//! Record bytes, big-endian: `count u32 ‖ end u32 × count ‖ entries ‖ node hash (32 bytes) ×
//! nodes`. Entry `i` is the codec encoding of a [`crate::StoredTx`] and spans
//! `[end(i−1), end(i))` of the entries area (`end(−1)` = 0): one entry, or a run of them, is
//! read without reading the others ([`table_span`]). The nodes are the RFC 6962 §2.1 subtree
//! hashes of level ≥ [`MIN_STORED_LEVEL`] whose last leaf is in the block, by level, then
//! index ([`node_position`]); lower nodes are recomputed from at most 15 transaction ids.

/// Lowest history-tree level whose nodes are stored; lower ones are recomputed from tx ids.
pub const MIN_STORED_LEVEL: u32 = 4;

/// Where a block's record lies in the log: `offset u64 ‖ len u32 ‖ txs u32`, big-endian
/// (16 bytes), as stored under the `X` key of the block's first sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Offset of the record's first byte in the log.
    pub offset: u64,
    /// The record's length, bytes.
    pub len: u32,
    /// The block's transactions (the record's `count`).
    pub txs: u32,
}

impl Location {
    /// Length of the stored form, bytes.
    pub const BYTES: usize = 16;

    /// The 16 stored bytes.
    pub fn encode(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::BYTES);
        v.extend_from_slice(&self.offset.to_be_bytes());
        v.extend_from_slice(&self.len.to_be_bytes());
        v.extend_from_slice(&self.txs.to_be_bytes());
        v
    }

    /// Parses stored bytes; `None` unless they are exactly 16.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != Self::BYTES {
            return None;
        }
        Some(Self {
            offset: u64::from_be_bytes(b.get(..8)?.try_into().ok()?),
            len: u32::from_be_bytes(b.get(8..12)?.try_into().ok()?),
            txs: u32::from_be_bytes(b.get(12..16)?.try_into().ok()?),
        })
    }

    /// Offset one past the record's last byte.
    pub fn end(self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// Starts a record of `n` entries at the end of `out`: writes the count and room for the
/// offset table, and returns the record's start in `out`. Append each entry's bytes to `out`
/// in order, calling [`end_entry`] after each, then the nodes.
pub fn begin(out: &mut Vec<u8>, n: usize) -> usize {
    let start = out.len();
    out.extend_from_slice(&(n as u32).to_be_bytes());
    out.resize(start + 4 + 4 * n, 0);
    start
}

/// Records that entry `i` of the record of `n` entries begun at `start` ends at the current
/// end of `out`.
pub fn end_entry(out: &mut [u8], start: usize, n: usize, i: usize) {
    let entries = start + 4 + 4 * n;
    let end = out.len().saturating_sub(entries) as u32;
    let at = start + 4 + 4 * i;
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&end.to_be_bytes());
    }
}

/// Nodes of `level` completed by a block whose leaves are `first..first + txs`: node
/// `(level, i)` is complete once its last leaf `(i + 1)·2^level − 1` is appended, so these are
/// the indexes `first >> level .. (first + txs) >> level`.
fn completed(first: u64, txs: u64, level: u32) -> std::ops::Range<u64> {
    let end = first.saturating_add(txs);
    if level >= u64::BITS {
        return 0..0;
    }
    (first >> level)..(end >> level)
}

/// Number of stored nodes (level ≥ [`MIN_STORED_LEVEL`]) a block of leaves
/// `first..first + txs` completes: the length of its record's node area, in hashes.
pub fn node_count(first: u64, txs: u64) -> u64 {
    (MIN_STORED_LEVEL..u64::BITS)
        .map(|l| completed(first, txs, l))
        .take_while(|r| !r.is_empty())
        .map(|r| r.end - r.start)
        .sum()
}

/// Position, in hashes from the start of the node area, of node `(level, index)` in the record
/// of the block of leaves `first..first + txs`: the nodes of lower levels first, then those of
/// `level` by index. `None` if the block did not complete that node or it is not stored.
pub fn node_position(first: u64, txs: u64, level: u32, index: u64) -> Option<u64> {
    if level < MIN_STORED_LEVEL || !completed(first, txs, level).contains(&index) {
        return None;
    }
    let below: u64 = (MIN_STORED_LEVEL..level)
        .map(|l| {
            let r = completed(first, txs, l);
            r.end - r.start
        })
        .sum();
    Some(below + index - (first >> level))
}

/// The part of a record's offset table to read for entries `from..to` (`from < to`): its
/// offset in the record and its length, bytes. The values read are `end(from − 1)` (absent,
/// 0, when `from` is 0) through `end(to − 1)`; pass them to [`entry_spans`].
pub fn table_span(from: u32, to: u32) -> (u64, usize) {
    let first = from.saturating_sub(1);
    (4 + 4 * u64::from(first), 4 * (to - first) as usize)
}

/// Offset in the record of the entries area of a record of `txs` entries.
pub fn entries_offset(txs: u32) -> u64 {
    4 + 4 * u64::from(txs)
}

/// The spans, within the entries area, of entries `from..to`, from the table part
/// [`table_span`] gave: `None` if it is not `4·k` bytes or the ends are not ascending.
pub fn entry_spans(from: u32, table: &[u8]) -> Option<Vec<(usize, usize)>> {
    if !table.len().is_multiple_of(4) {
        return None;
    }
    let mut ends = table
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize);
    let mut start = if from == 0 { 0 } else { ends.next()? };
    let mut spans = Vec::with_capacity(table.len() / 4);
    for end in ends {
        if end < start {
            return None;
        }
        spans.push((start, end));
        start = end;
    }
    Some(spans)
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    let arr: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(arr) as usize)
}

/// Number of entries in `record`; `None` if its table is cut short.
pub fn count(record: &[u8]) -> Option<usize> {
    let n = u32_at(record, 0)?;
    (record.len() >= 4usize.checked_add(n.checked_mul(4)?)?).then_some(n)
}

/// Entry `i` of a whole `record`; `None` if there is no such entry or the offsets are
/// inconsistent.
pub fn entry(record: &[u8], i: usize) -> Option<&[u8]> {
    let n = count(record)?;
    if i >= n {
        return None;
    }
    let base = 4 + 4 * n;
    let start = if i == 0 {
        0
    } else {
        u32_at(record, 4 + 4 * (i - 1))?
    };
    let end = u32_at(record, 4 + 4 * i)?;
    record.get(base.checked_add(start)?..base.checked_add(end)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_into(out: &mut Vec<u8>, entries: &[Vec<u8>]) {
        let start = begin(out, entries.len());
        for (i, e) in entries.iter().enumerate() {
            out.extend_from_slice(e);
            end_entry(out, start, entries.len(), i);
        }
    }

    fn encode(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![];
        encode_into(&mut out, entries);
        out
    }

    #[test]
    fn a_location_is_16_bytes_and_round_trips() {
        let l = Location {
            offset: 0x0102_0304_0506_0708,
            len: 0x0a0b_0c0d,
            txs: 0x1112_1314,
        };
        let b = l.encode();
        assert_eq!(hex(&b), "01020304050607080a0b0c0d11121314");
        assert_eq!(Location::decode(&b), Some(l));
        assert_eq!(l.end(), 0x0102_0304_0506_0708 + 0x0a0b_0c0d);
        assert_eq!(Location::decode(&b[..15]), None);
        assert_eq!(Location::decode(&[b.as_slice(), &[0]].concat()), None);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn entries_round_trip_and_damage_is_detected() {
        let entries: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; usize::from(i) * 3]).collect();
        let mut c = vec![0xee];
        encode_into(&mut c, &entries);
        assert_eq!(c.remove(0), 0xee, "appends after what is there");
        assert_eq!(count(&c), Some(5));
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(entry(&c, i), Some(&e[..]));
        }
        assert_eq!(entry(&c, 5), None);
        assert_eq!(count(&c[..10]), None, "table cut short");
        assert_eq!(entry(&c[..c.len() - 1], 4), None, "last entry cut short");
        let mut bad = c.clone();
        bad[4 + 4 * 2..4 + 4 * 3].copy_from_slice(&1000u32.to_be_bytes()); // past the next end
        assert_eq!(entry(&bad, 3), None);
        assert_eq!(count(&encode(&[])), Some(0));
    }

    /// Every run of entries read through [`table_span`] and [`entry_spans`] equals the entries,
    /// and a descending table is refused.
    #[test]
    fn a_run_of_entries_reads_from_its_part_of_the_table() {
        let entries: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i; usize::from(i) + 1]).collect();
        let c = encode(&entries);
        let base = entries_offset(7) as usize;
        for from in 0..7u32 {
            for to in from + 1..=7 {
                let (at, len) = table_span(from, to);
                let spans = entry_spans(from, &c[at as usize..at as usize + len]).unwrap();
                let got: Vec<&[u8]> = spans.iter().map(|&(s, e)| &c[base + s..base + e]).collect();
                let want: Vec<&[u8]> = entries[from as usize..to as usize]
                    .iter()
                    .map(Vec::as_slice)
                    .collect();
                assert_eq!(got, want, "{from}..{to}");
            }
        }
        let mut t = 9u32.to_be_bytes().to_vec();
        t.extend_from_slice(&3u32.to_be_bytes());
        assert_eq!(entry_spans(1, &t), None, "an end before the previous one");
        assert_eq!(entry_spans(0, &t[..3]), None, "not whole u32s");
    }

    /// The node area of consecutive blocks holds each stored node exactly once, at distinct
    /// positions `0..node_count`, by level then index, against a direct enumeration.
    #[test]
    fn each_stored_node_belongs_to_exactly_one_block_at_one_position() {
        let sizes = [1u64, 15, 1, 16, 33, 0, 100, 7, 256, 3, 600];
        let mut first = 0u64;
        let mut seen = std::collections::BTreeSet::new();
        for txs in sizes {
            let mut want = Vec::new();
            for level in MIN_STORED_LEVEL..20 {
                for index in 0..((first + txs) >> level) + 1 {
                    let last = ((index + 1) << level) - 1;
                    if (first..first + txs).contains(&last) {
                        want.push((level, index));
                    }
                }
            }
            assert_eq!(node_count(first, txs), want.len() as u64, "{first}+{txs}");
            for (pos, &(level, index)) in want.iter().enumerate() {
                assert_eq!(node_position(first, txs, level, index), Some(pos as u64));
                assert!(seen.insert((level, index)), "({level}, {index}) twice");
            }
            assert_eq!(
                node_position(first, txs, MIN_STORED_LEVEL - 1, first >> 3),
                None
            );
            assert_eq!(
                node_position(first, txs, MIN_STORED_LEVEL, (first + txs) >> 4),
                None
            );
            first += txs;
        }
        // every node of level ≥ 4 below the final size was stored by some block
        for level in MIN_STORED_LEVEL..20 {
            for index in 0..(first >> level) {
                assert!(seen.contains(&(level, index)), "({level}, {index}) missing");
            }
        }
    }
}
