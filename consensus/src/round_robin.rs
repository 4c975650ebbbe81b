//! Round-robin proof of authority.
//!
//! The validator set is the ordered list from genesis. The proposer of height `h` in round `r`
//! is `validators[(h + r) mod n]`; round 0 is the scheduled proposer, and a round change (see
//! [`crate::bft`]) hands the height to the next validator. A proposer proposes when it is its
//! turn and either transactions are pending and `block_time_ms` has passed since the parent, or
//! `max_empty_interval_ms` has passed (an empty block, so liveness is visible).
//!
//! This module holds the genesis parameters and the stateless header rules ([`Engine::verify_header`],
//! [`Engine::check_proposer`]); the node drives heights with [`crate::bft::Bft`], which adds votes
//! and 2/3 finality on the same schedule. [`RoundRobin`]'s own `on_input` is the single-proposer
//! schedule without votes (round 0 only), kept as the reference the BFT timing follows.

use auditchain_primitives::block::ConsensusFields;
use auditchain_primitives::{Block, Header, PublicKey};
use serde::{Deserialize, Serialize};

use crate::{ConsensusError, Engine, Input, Output};

fn default_max_empty_interval_ms() -> u64 {
    10_000
}

fn default_max_future_drift_ms() -> u64 {
    5_000
}

fn default_proposal_timeout_ms() -> u64 {
    1_000
}

fn default_vote_timeout_ms() -> u64 {
    500
}

/// Round-robin parameters, as in the genesis file under `consensus.round_robin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundRobinConfig {
    /// Minimum time between blocks while transactions are pending, ms.
    pub block_time_ms: u64,
    /// Maximum time without a block, ms: an empty block is proposed after it (default 10,000).
    #[serde(default = "default_max_empty_interval_ms")]
    pub max_empty_interval_ms: u64,
    /// How far a header's timestamp may run ahead of local time, ms (default 5,000).
    #[serde(default = "default_max_future_drift_ms")]
    pub max_future_drift_ms: u64,
    /// How long validators wait for a round's proposer beyond its due time before voting nil
    /// and moving to the next round, ms (default 1,000; grows by this much per round).
    #[serde(default = "default_proposal_timeout_ms")]
    pub proposal_timeout_ms: u64,
    /// How long validators wait for the remaining votes of a step once a quorum of any votes is
    /// in, ms (default 500; grows by this much per round).
    #[serde(default = "default_vote_timeout_ms")]
    pub vote_timeout_ms: u64,
    /// The validator set, in proposer order.
    pub validators: Vec<PublicKey>,
}

impl RoundRobinConfig {
    /// The timing parameters of the BFT engine that drives this schedule.
    pub fn timing(&self) -> crate::bft::BftTiming {
        crate::bft::BftTiming {
            block_time_ms: self.block_time_ms,
            max_empty_interval_ms: self.max_empty_interval_ms,
            proposal_timeout_ms: self.proposal_timeout_ms,
            vote_timeout_ms: self.vote_timeout_ms,
        }
    }
}

/// The round-robin engine for one node.
#[derive(Debug, Clone)]
pub struct RoundRobin {
    config: RoundRobinConfig,
    me: Option<PublicKey>,
    head_height: u64,
    head_time_ms: u64,
    pending: usize,
    proposed_at: Option<u64>,
}

impl RoundRobin {
    /// An engine for validator `me` (or an observer if `None`) whose head is at
    /// `head_height` with block time `head_time_ms`.
    pub fn new(
        config: RoundRobinConfig,
        me: Option<PublicKey>,
        head_height: u64,
        head_time_ms: u64,
    ) -> Self {
        Self {
            config,
            me,
            head_height,
            head_time_ms,
            pending: 0,
            proposed_at: None,
        }
    }

    /// The validator set the schedule rotates through.
    pub fn validators(&self) -> &[PublicKey] {
        &self.config.validators
    }

    /// Replaces the validator set the schedule rotates through (a governance change, from the
    /// height the node's head is about to reach).
    pub fn set_validators(&mut self, validators: Vec<PublicKey>) {
        self.config.validators = validators;
    }

    /// The scheduled proposer of `height` in `round`; `None` if the set is empty.
    pub fn proposer(&self, height: u64, round: u32) -> Option<PublicKey> {
        let n = self.config.validators.len() as u64;
        if n == 0 {
            return None;
        }
        let i = (height.wrapping_add(u64::from(round))) % n;
        self.config.validators.get(i as usize).copied()
    }

    fn my_turn(&self, height: u64) -> bool {
        self.me.is_some() && self.proposer(height, 0) == self.me
    }

    fn due_at(&self) -> u64 {
        if self.pending > 0 {
            self.head_time_ms + self.config.block_time_ms
        } else {
            self.head_time_ms + self.config.max_empty_interval_ms
        }
    }
}

impl Engine for RoundRobin {
    fn on_input(&mut self, input: Input, now_ms: u64) -> Vec<Output> {
        match input {
            Input::NewHead {
                height,
                timestamp_ms,
            } => {
                self.head_height = height;
                self.head_time_ms = timestamp_ms;
                self.proposed_at = None;
            }
            Input::Pending { txs } => self.pending = txs,
            Input::Tick => {}
        }
        let next = self.head_height + 1;
        if self.proposed_at == Some(next) || !self.my_turn(next) || now_ms < self.due_at() {
            return Vec::new();
        }
        self.proposed_at = Some(next);
        vec![Output::Propose {
            height: next,
            round: 0,
            timestamp_ms: now_ms.max(self.head_time_ms + 1),
        }]
    }

    fn next_deadline_ms(&self) -> Option<u64> {
        let next = self.head_height + 1;
        (self.my_turn(next) && self.proposed_at != Some(next)).then(|| self.due_at())
    }

    fn verify_header(
        &self,
        block: &Block,
        parent: &Header,
        now_ms: u64,
    ) -> Result<(), ConsensusError> {
        let h = &block.header;
        if h.height != parent.height + 1 {
            return Err(ConsensusError::BadHeight {
                parent: parent.height,
                got: h.height,
            });
        }
        let parent_hash = parent.hash();
        if h.parent_hash != parent_hash {
            return Err(ConsensusError::BadParent {
                height: parent.height,
                expected: parent_hash,
                got: h.parent_hash,
            });
        }
        let max = now_ms.saturating_add(self.config.max_future_drift_ms);
        if h.timestamp_ms <= parent.timestamp_ms || h.timestamp_ms > max {
            return Err(ConsensusError::BadTimestamp {
                min: parent.timestamp_ms,
                max,
                got: h.timestamp_ms,
            });
        }
        self.check_proposer(h)?;
        block
            .verify_seal()
            .map_err(|_| ConsensusError::BadSeal(h.proposer))
    }

    /// Any round is acceptable here: which round decided a height is proven by the block's
    /// commit certificate, not by the header alone.
    fn check_proposer(&self, h: &Header) -> Result<(), ConsensusError> {
        let round = match h.consensus {
            ConsensusFields::RoundRobin { round } => round,
            other => {
                return Err(ConsensusError::BadConsensusFields(format!(
                    "{other:?} (expected round_robin)"
                )));
            }
        };
        let expected = self
            .proposer(h.height, round)
            .ok_or_else(|| ConsensusError::BadConsensusFields("empty validator set".to_string()))?;
        if h.proposer != expected {
            return Err(ConsensusError::WrongProposer {
                height: h.height,
                round,
                expected,
                got: h.proposer,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditchain_primitives::block::{HEADER_VERSION, state_root};
    use auditchain_primitives::{Hash, SecretKey, merkle};

    fn keys(n: u8) -> Vec<SecretKey> {
        (0..n).map(|i| SecretKey::from_seed(&[i + 1; 32])).collect()
    }

    fn config(ks: &[SecretKey]) -> RoundRobinConfig {
        RoundRobinConfig {
            block_time_ms: 100,
            max_empty_interval_ms: 1_000,
            max_future_drift_ms: 50,
            proposal_timeout_ms: 1_000,
            vote_timeout_ms: 500,
            validators: ks.iter().map(SecretKey::public_key).collect(),
        }
    }

    fn parent() -> Header {
        Header {
            version: HEADER_VERSION,
            height: 0,
            parent_hash: Hash::ZERO,
            timestamp_ms: 10_000,
            proposer: PublicKey([0; 32]),
            tx_root: merkle::empty_root(),
            tx_count: 0,
            history_root: merkle::empty_root(),
            history_size: 0,
            state_root: state_root(&Hash::ZERO, &Default::default()),
            last_commit_hash: Hash::ZERO,
            consensus: ConsensusFields::Genesis,
        }
    }

    fn child(p: &Header, key: &SecretKey, ts: u64) -> Block {
        let mut h = p.clone();
        h.height = p.height + 1;
        h.parent_hash = p.hash();
        h.timestamp_ms = ts;
        h.proposer = key.public_key();
        h.consensus = ConsensusFields::RoundRobin { round: 0 };
        Block::seal_with(h, vec![], key)
    }

    #[test]
    fn single_validator_seals_on_time_and_once() {
        let ks = keys(1);
        let mut e = RoundRobin::new(config(&ks), Some(ks[0].public_key()), 0, 10_000);
        assert!(e.on_input(Input::Pending { txs: 3 }, 10_050).is_empty());
        assert_eq!(e.next_deadline_ms(), Some(10_100));
        let out = e.on_input(Input::Tick, 10_100);
        assert_eq!(
            out,
            vec![Output::Propose {
                height: 1,
                round: 0,
                timestamp_ms: 10_100
            }]
        );
        assert!(
            e.on_input(Input::Tick, 10_200).is_empty(),
            "proposes once per height"
        );
        e.on_input(
            Input::NewHead {
                height: 1,
                timestamp_ms: 10_100,
            },
            10_101,
        );
        e.on_input(Input::Pending { txs: 0 }, 10_101);
        assert!(
            e.on_input(Input::Tick, 11_099).is_empty(),
            "no empty block before the interval"
        );
        assert_eq!(
            e.on_input(Input::Tick, 11_100).len(),
            1,
            "empty block at the interval"
        );
    }

    #[test]
    fn only_the_scheduled_proposer_proposes() {
        let ks = keys(3);
        let cfg = config(&ks);
        // height 1 -> validators[1]
        for (i, k) in ks.iter().enumerate() {
            let mut e = RoundRobin::new(cfg.clone(), Some(k.public_key()), 0, 10_000);
            let out = e.on_input(Input::Pending { txs: 1 }, 20_000);
            assert_eq!(out.len(), usize::from(i == 1), "validator {i}");
        }
        let mut observer = RoundRobin::new(cfg, None, 0, 10_000);
        assert!(
            observer
                .on_input(Input::Pending { txs: 1 }, 20_000)
                .is_empty()
        );
    }

    #[test]
    fn header_rules() {
        let ks = keys(3);
        let e = RoundRobin::new(config(&ks), None, 0, 10_000);
        let p = parent();
        let good = child(&p, &ks[1], 10_500);
        assert_eq!(e.verify_header(&good, &p, 10_500), Ok(()));
        let wrong = child(&p, &ks[2], 10_500);
        assert!(matches!(
            e.verify_header(&wrong, &p, 10_500),
            Err(ConsensusError::WrongProposer { .. })
        ));
        // a round change hands height 1 to the next validator
        let mut h = wrong.header.clone();
        h.consensus = ConsensusFields::RoundRobin { round: 1 };
        let round1 = Block::seal_with(h, vec![], &ks[2]);
        assert_eq!(e.verify_header(&round1, &p, 10_500), Ok(()));
        let stale = child(&p, &ks[1], 10_000);
        assert!(matches!(
            e.verify_header(&stale, &p, 10_500),
            Err(ConsensusError::BadTimestamp { .. })
        ));
        let future = child(&p, &ks[1], 10_600);
        assert!(matches!(
            e.verify_header(&future, &p, 10_500),
            Err(ConsensusError::BadTimestamp { .. })
        ));
        let mut bad_seal = good.clone();
        bad_seal.seal.0[5] ^= 1;
        assert!(matches!(
            e.verify_header(&bad_seal, &p, 10_500),
            Err(ConsensusError::BadSeal(_))
        ));
        let mut bad_parent = good.clone();
        bad_parent.header.parent_hash = Hash([9; 32]);
        assert!(matches!(
            e.verify_header(&bad_parent, &p, 10_500),
            Err(ConsensusError::BadParent { .. })
        ));
    }

    #[test]
    fn config_defaults_from_json() {
        let c: RoundRobinConfig =
            serde_json::from_str(r#"{"block_time_ms":500,"validators":[]}"#).unwrap();
        assert_eq!(c.max_empty_interval_ms, 10_000);
        assert!(
            serde_json::from_str::<RoundRobinConfig>(
                r#"{"block_time_ms":1,"validators":[],"x":1}"#
            )
            .is_err()
        );
    }
}
