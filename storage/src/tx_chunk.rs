//! Transactions are stored in chunks of up to [`CHUNK_TXS`] consecutive transactions of one
//! block. The chunks live in the store's append-only log ([`crate::Kv::log_append`]); the `X`
//! key of a chunk's first sequence number holds its [`Location`] in the log.
//!
//! Why chunks: sled 0.34 costs about 17 µs per inserted ~850-byte value on the 2-core reference
//! machine, and about 3.5 µs per transaction when 16 go into one value. Why a log: sled keeps
//! values inside its B-tree leaves and rewrites a leaf, values included, each time it
//! consolidates one; with ~14 KB chunks that doubled the bytes written (about 3 KB written per
//! 850-byte transaction) and made sled's writing thread a tenth of the ingest CPU. A chunk
//! never spans two blocks, so a block's chunks are contiguous at the log's end, and reverting
//! the head block cuts the log back to where its first chunk began.
//!
//! Chunk bytes: `count u32 ‖ end offset u32 × count ‖ entries`, big-endian; entry `i` is the
//! codec encoding of a [`crate::StoredTx`] and spans `[end(i−1), end(i))` of the entries area
//! (`end(−1)` = 0). One entry is decoded without touching the others.

/// Where a chunk lies in the log: `offset u64 ‖ len u32`, big-endian (12 bytes), as stored
/// under the chunk's `X` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Offset of the chunk's first byte in the log.
    pub offset: u64,
    /// The chunk's length, bytes.
    pub len: u32,
}

impl Location {
    /// The 12 stored bytes.
    pub fn encode(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(12);
        v.extend_from_slice(&self.offset.to_be_bytes());
        v.extend_from_slice(&self.len.to_be_bytes());
        v
    }

    /// Parses stored bytes; `None` unless they are exactly 12.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let offset = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let len = u32::from_be_bytes(b.get(8..12)?.try_into().ok()?);
        (b.len() == 12).then_some(Self { offset, len })
    }

    /// Offset one past the chunk's last byte.
    pub fn end(self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// Transactions per chunk (the last chunk of a block may hold fewer).
pub const CHUNK_TXS: usize = 16;

/// Starts a chunk of `n` entries at the end of `out`: writes the count and room for the
/// offset table, and returns the chunk's start in `out`. Append each entry's bytes to `out`
/// in order, calling [`end_entry`] after each; the chunk then spans `out[start..]`.
pub fn begin(out: &mut Vec<u8>, n: usize) -> usize {
    let start = out.len();
    out.extend_from_slice(&(n as u32).to_be_bytes());
    out.resize(start + 4 + 4 * n, 0);
    start
}

/// Records that entry `i` of the chunk of `n` entries begun at `start` ends at the current end
/// of `out`.
pub fn end_entry(out: &mut [u8], start: usize, n: usize, i: usize) {
    let entries = start + 4 + 4 * n;
    let end = out.len().saturating_sub(entries) as u32;
    let at = start + 4 + 4 * i;
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&end.to_be_bytes());
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    let arr: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(arr) as usize)
}

/// Number of entries in `chunk`; `None` if its table is cut short.
pub fn count(chunk: &[u8]) -> Option<usize> {
    let n = u32_at(chunk, 0)?;
    (chunk.len() >= 4usize.checked_add(n.checked_mul(4)?)?).then_some(n)
}

/// Entry `i` of `chunk`; `None` if there is no such entry or the offsets are inconsistent.
pub fn entry(chunk: &[u8], i: usize) -> Option<&[u8]> {
    let n = count(chunk)?;
    if i >= n {
        return None;
    }
    let base = 4 + 4 * n;
    let start = if i == 0 {
        0
    } else {
        u32_at(chunk, 4 + 4 * (i - 1))?
    };
    let end = u32_at(chunk, 4 + 4 * i)?;
    chunk.get(base.checked_add(start)?..base.checked_add(end)?)
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
    fn a_location_is_12_bytes_and_round_trips() {
        let l = Location {
            offset: 0x0102_0304_0506_0708,
            len: 0x0a0b_0c0d,
        };
        let b = l.encode();
        assert_eq!(hex(&b), "01020304050607080a0b0c0d");
        assert_eq!(Location::decode(&b), Some(l));
        assert_eq!(l.end(), 0x0102_0304_0506_0708 + 0x0a0b_0c0d);
        assert_eq!(Location::decode(&b[..11]), None);
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
}
