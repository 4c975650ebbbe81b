//! Proof of work among permissioned miners (`consensus.pow` in genesis), as pure functions.
//!
//! - **Work**: a header with difficulty `d` is valid when SHA-256 of its canonical bytes, read as
//!   a 256-bit big-endian integer, is at most `target(d) = ⌊(2²⁵⁶ − 1) / d⌋` (so about `d`
//!   hashes are needed). The nonce is in the header (`ConsensusFields::Pow`), so the block hash
//!   is the work hash. The miner must be in the genesis miner list and seal (sign) the block.
//! - **Difficulty**: constant within a retarget window; at every height `h ≥ retarget_interval`
//!   with `h mod retarget_interval = 0` it becomes `parent_d × target_block_time_ms × k /
//!   actual_ms`, where `actual_ms` is the time between the blocks at heights
//!   `max(0, h − 1 − retarget_interval)` and `h − 1` and `k` the number of intervals between
//!   them, bounded to `[parent_d / 4, parent_d × 4]` and at least 1 (Bitcoin's rule, with the
//!   window ending at the parent).
//! - **Time**: a timestamp must exceed the median of the previous 11 block times (fewer near
//!   genesis) and be at most local time + `max_future_drift_ms`.
//! - **Fork choice**: the branch with the most cumulative work (sum of difficulties); on a tie
//!   the branch seen first stays. **Finality**: a block `finality_depth` blocks below the head
//!   is final; the node never reorganises below it.

use std::sync::atomic::{AtomicU64, Ordering};

use auditchain_primitives::block::ConsensusFields;
use auditchain_primitives::{Hash, Header, PublicKey};
use serde::{Deserialize, Serialize};

/// Blocks whose times form the median-time-past bound.
pub const MEDIAN_TIME_SPAN: usize = 11;

fn default_max_future_drift_ms() -> u64 {
    5_000
}

/// Proof-of-work parameters (genesis `consensus.pow`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowConfig {
    /// Keys allowed to mine (seal) blocks.
    pub miners: Vec<PublicKey>,
    /// Difficulty of the first window (expected hashes per block), ≥ 1.
    pub initial_difficulty: u64,
    /// Desired time between blocks, ms.
    pub target_block_time_ms: u64,
    /// Blocks per difficulty window, ≥ 1.
    pub retarget_interval: u64,
    /// Blocks below the head after which a block is final, ≥ 1.
    pub finality_depth: u64,
    /// How far a header's time may run ahead of local time, ms (default 5,000).
    #[serde(default = "default_max_future_drift_ms")]
    pub max_future_drift_ms: u64,
}

/// Why a proof-of-work header is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowError {
    /// The header carries no proof-of-work fields.
    #[error("header is not a proof-of-work header")]
    NotPow,
    /// The difficulty is not the one the chain requires at this height.
    #[error("difficulty {got} but height {height} requires {expected}")]
    WrongDifficulty {
        /// Height.
        height: u64,
        /// Required difficulty.
        expected: u64,
        /// Header's difficulty.
        got: u64,
    },
    /// The hash does not meet the target.
    #[error("block hash {hash} does not meet difficulty {difficulty}")]
    InsufficientWork {
        /// The hash.
        hash: Hash,
        /// The difficulty claimed.
        difficulty: u64,
    },
    /// The miner is not in the genesis miner list.
    #[error("{0} is not a miner of this chain")]
    NotMiner(PublicKey),
    /// The timestamp is at or below the median of the previous blocks, or too far ahead.
    #[error("timestamp_ms {got} out of bounds: must be > {median_past} and <= {max}")]
    BadTimestamp {
        /// Median of the previous block times (exclusive lower bound).
        median_past: u64,
        /// Local time + drift (inclusive upper bound).
        max: u64,
        /// The header's time.
        got: u64,
    },
}

/// `⌊(2²⁵⁶ − 1) / difficulty⌋` as 32 big-endian bytes (difficulty 0 is treated as 1).
pub fn target(difficulty: u64) -> [u8; 32] {
    let d = u128::from(difficulty.max(1));
    let mut out = [0u8; 32];
    let mut rem: u128 = 0;
    for i in 0..4 {
        // long division of the all-ones number, 64 bits at a time
        let cur = (rem << 64) | u128::from(u64::MAX);
        let q = cur / d;
        rem = cur % d;
        out[i * 8..i * 8 + 8].copy_from_slice(&(q as u64).to_be_bytes());
    }
    out
}

/// Whether `hash` meets `difficulty` (big-endian comparison with [`target`]).
pub fn meets(hash: &Hash, difficulty: u64) -> bool {
    hash.0 <= target(difficulty)
}

/// The difficulty and nonce of a proof-of-work header.
pub fn fields(h: &Header) -> Result<(u64, u64), PowError> {
    match h.consensus {
        ConsensusFields::Pow { difficulty, nonce } => Ok((difficulty, nonce)),
        _ => Err(PowError::NotPow),
    }
}

/// The difficulty required at `height`, given the parent's difficulty and a way to read the
/// timestamps of ancestors by height (`time_at(h)`, for heights below `height`).
pub fn required_difficulty(
    cfg: &PowConfig,
    height: u64,
    parent_difficulty: u64,
    mut time_at: impl FnMut(u64) -> Option<u64>,
) -> u64 {
    let n = cfg.retarget_interval.max(1);
    if height < n || !height.is_multiple_of(n) {
        return parent_difficulty.max(1);
    }
    // the window: the n blocks ending at the parent, timed from the block before them
    // (genesis for the first window, which then spans n − 1 intervals)
    let last = height - 1;
    let first = last.saturating_sub(n);
    let (Some(end), Some(start)) = (time_at(last), time_at(first)) else {
        return parent_difficulty.max(1);
    };
    let actual = u128::from(end.saturating_sub(start).max(1));
    let expected = u128::from(cfg.target_block_time_ms) * u128::from((last - first).max(1));
    let d = u128::from(parent_difficulty.max(1));
    let next = (d * expected / actual).clamp((d / 4).max(1), d * 4);
    u64::try_from(next).unwrap_or(u64::MAX)
}

/// Median of up to the last [`MEDIAN_TIME_SPAN`] block times (0 if none).
pub fn median_time_past(times: &[u64]) -> u64 {
    let start = times.len().saturating_sub(MEDIAN_TIME_SPAN);
    let mut w: Vec<u64> = times[start..].to_vec();
    if w.is_empty() {
        return 0;
    }
    w.sort_unstable();
    w[w.len() / 2]
}

/// Checks a header's proof-of-work rules: miner listed, difficulty as required, hash meets it,
/// timestamp above the median of `recent_times` (the previous blocks' times, oldest first) and
/// at most `now_ms` + drift. The seal and the parent link are checked by the caller.
/// Errors: [`PowError`].
pub fn check_header(
    cfg: &PowConfig,
    header: &Header,
    required: u64,
    recent_times: &[u64],
    now_ms: u64,
) -> Result<(), PowError> {
    let (difficulty, _) = fields(header)?;
    if !cfg.miners.contains(&header.proposer) {
        return Err(PowError::NotMiner(header.proposer));
    }
    if difficulty != required {
        return Err(PowError::WrongDifficulty {
            height: header.height,
            expected: required,
            got: difficulty,
        });
    }
    let hash = header.hash();
    if !meets(&hash, difficulty) {
        return Err(PowError::InsufficientWork { hash, difficulty });
    }
    let median_past = median_time_past(recent_times);
    let max = now_ms.saturating_add(cfg.max_future_drift_ms);
    if header.timestamp_ms <= median_past || header.timestamp_ms > max {
        return Err(PowError::BadTimestamp {
            median_past,
            max,
            got: header.timestamp_ms,
        });
    }
    Ok(())
}

/// Searches nonces from `start` for `template` (whose consensus fields name the difficulty)
/// until the hash meets it, `max_tries` hashes are spent, or `abort` no longer equals `epoch`
/// (a better head arrived). Returns the header with the winning nonce.
pub fn mine(
    template: &Header,
    start: u64,
    max_tries: u64,
    abort: &AtomicU64,
    epoch: u64,
) -> Option<Header> {
    let (difficulty, _) = fields(template).ok()?;
    let tgt = target(difficulty);
    let mut h = template.clone();
    for i in 0..max_tries {
        if i % 1024 == 0 && abort.load(Ordering::Relaxed) != epoch {
            return None;
        }
        let nonce = start.wrapping_add(i);
        h.consensus = ConsensusFields::Pow { difficulty, nonce };
        if h.hash().0 <= tgt {
            return Some(h);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditchain_primitives::block::HEADER_VERSION;
    use auditchain_primitives::{SecretKey, merkle};

    fn cfg() -> PowConfig {
        PowConfig {
            miners: vec![SecretKey::from_seed(&[1; 32]).public_key()],
            initial_difficulty: 16,
            target_block_time_ms: 1_000,
            retarget_interval: 10,
            finality_depth: 6,
            max_future_drift_ms: 5_000,
        }
    }

    fn template(difficulty: u64, ts: u64) -> Header {
        Header {
            version: HEADER_VERSION,
            height: 1,
            parent_hash: Hash([3; 32]),
            timestamp_ms: ts,
            proposer: SecretKey::from_seed(&[1; 32]).public_key(),
            tx_root: merkle::empty_root(),
            tx_count: 0,
            history_root: merkle::empty_root(),
            history_size: 0,
            state_root: Hash::ZERO,
            last_commit_hash: Hash::ZERO,
            consensus: ConsensusFields::Pow {
                difficulty,
                nonce: 0,
            },
        }
    }

    #[test]
    fn targets() {
        assert_eq!(target(1), [0xff; 32]);
        let mut half = [0xff; 32];
        half[0] = 0x7f;
        assert_eq!(target(2), half);
        let mut quarter = [0xff; 32];
        quarter[0] = 0x3f;
        assert_eq!(target(4), quarter);
        // 2^256-1 = 3 × 0x5555…55
        assert_eq!(target(3), [0x55; 32]);
        assert!(target(1000) < target(999));
        assert!(meets(&Hash([0; 32]), u64::MAX));
        assert!(!meets(&Hash([0xff; 32]), 2));
    }

    #[test]
    fn mined_headers_pass_and_tampering_fails() {
        let c = cfg();
        let abort = AtomicU64::new(0);
        let h = mine(&template(64, 5_000), 0, 1 << 20, &abort, 0).expect("found");
        assert!(meets(&h.hash(), 64));
        assert_eq!(check_header(&c, &h, 64, &[4_000], 5_000), Ok(()));
        // the required difficulty differs
        assert!(matches!(
            check_header(&c, &h, 128, &[4_000], 5_000),
            Err(PowError::WrongDifficulty { .. })
        ));
        // another nonce almost surely misses the target
        let mut bad = h.clone();
        let (d, n) = fields(&h).unwrap();
        let mut k = n;
        loop {
            k += 1;
            bad.consensus = ConsensusFields::Pow {
                difficulty: d,
                nonce: k,
            };
            if !meets(&bad.hash(), d) {
                break;
            }
        }
        assert!(matches!(
            check_header(&c, &bad, 64, &[4_000], 5_000),
            Err(PowError::InsufficientWork { .. })
        ));
        // not a miner
        let mut other = h.clone();
        other.proposer = SecretKey::from_seed(&[2; 32]).public_key();
        assert_eq!(
            check_header(&c, &other, 64, &[4_000], 5_000),
            Err(PowError::NotMiner(other.proposer))
        );
        // time: not above the median of the previous blocks, or too far ahead
        assert!(matches!(
            check_header(&c, &h, 64, &[4_000, 5_000, 6_000], 5_000),
            Err(PowError::BadTimestamp { .. })
        ));
        let ahead = mine(&template(64, 20_000), 0, 1 << 20, &abort, 0).expect("found");
        assert_eq!(check_header(&c, &ahead, 64, &[1_000], 15_000), Ok(()));
        assert!(matches!(
            check_header(&c, &ahead, 64, &[1_000], 14_999),
            Err(PowError::BadTimestamp { max: 19_999, .. })
        ));
    }

    #[test]
    fn abort_stops_mining() {
        let abort = AtomicU64::new(7);
        assert_eq!(mine(&template(u64::MAX, 1), 0, u64::MAX, &abort, 6), None);
    }

    #[test]
    fn retarget_follows_the_window_and_is_bounded() {
        let c = cfg();
        let times = |spacing: u64| move |h: u64| Some(h * spacing);
        // inside a window: unchanged
        assert_eq!(required_difficulty(&c, 15, 100, times(1_000)), 100);
        assert_eq!(required_difficulty(&c, 5, 100, times(1_000)), 100);
        // on target: unchanged
        assert_eq!(required_difficulty(&c, 20, 100, times(1_000)), 100);
        // twice too fast: doubles; twice too slow: halves
        assert_eq!(required_difficulty(&c, 20, 100, times(500)), 200);
        assert_eq!(required_difficulty(&c, 20, 100, times(2_000)), 50);
        // the first window starts at genesis (9 intervals for 10 blocks)
        assert_eq!(required_difficulty(&c, 10, 100, times(1_000)), 100);
        assert_eq!(required_difficulty(&c, 10, 100, times(500)), 200);
        // bounded to ×4 / ÷4
        assert_eq!(required_difficulty(&c, 20, 100, times(1)), 400);
        assert_eq!(required_difficulty(&c, 20, 100, times(1_000_000)), 25);
        assert_eq!(required_difficulty(&c, 20, 1, times(1_000_000)), 1);
    }

    #[test]
    fn median_time() {
        assert_eq!(median_time_past(&[]), 0);
        assert_eq!(median_time_past(&[5]), 5);
        assert_eq!(median_time_past(&[1, 9, 5]), 5);
        let many: Vec<u64> = (1..=20).collect();
        // only the last 11 (10..=20) count
        assert_eq!(median_time_past(&many), 15);
    }
}
