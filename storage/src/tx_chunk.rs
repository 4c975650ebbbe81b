//! Transactions are stored in chunks of up to [`CHUNK_TXS`] consecutive transactions of one
//! block, under the `X` key of the chunk's first sequence number.
//!
//! Why: sled 0.34 costs about 17 µs per inserted ~850-byte value on the 2-core reference
//! machine, and about 3.5 µs per transaction when 16 go into one value. A chunk never spans two
//! blocks, so a block's keys are all new (its revert deletes them) and a chunk is never
//! rewritten.
//!
//! Chunk bytes: `count u32 ‖ end offset u32 × count ‖ entries`, big-endian; entry `i` is the
//! codec encoding of a [`crate::StoredTx`] and spans `[end(i−1), end(i))` of the entries area
//! (`end(−1)` = 0). One entry is decoded without touching the others.

/// Transactions per chunk (the last chunk of a block may hold fewer).
pub const CHUNK_TXS: usize = 16;

/// Packs encoded entries into one chunk.
pub fn encode(entries: &[Vec<u8>]) -> Vec<u8> {
    let body: usize = entries.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(4 + 4 * entries.len() + body);
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    let mut end = 0u32;
    for e in entries {
        end = end.saturating_add(e.len() as u32);
        out.extend_from_slice(&end.to_be_bytes());
    }
    for e in entries {
        out.extend_from_slice(e);
    }
    out
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

    #[test]
    fn entries_round_trip_and_damage_is_detected() {
        let entries: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; usize::from(i) * 3]).collect();
        let c = encode(&entries);
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
