//! Round-robin BFT with 2/3 finality: Tendermint's algorithm (E. Buchman, J. Kwon,
//! Z. Milosevic, "The latest gossip on BFT consensus", 2018, Algorithm 1) as a pure state
//! machine. Values in ([`BftInput`] and the time), values out ([`BftOutput`]); no I/O.
//!
//! - The proposer of height `h`, round `r` is `validators[(h + r) mod n]`. If it proposes
//!   nothing in time, validators prevote nil, precommit nil and move to round `r + 1`, whose
//!   proposer is the next validator (a round change).
//! - Two voting steps per round: prevote, then precommit after ⌊2n/3⌋+1 prevotes (a "polka")
//!   for the block; a validator that precommits a block **locks** on it and only prevotes
//!   another block after a later polka. A block is **decided (final)** when ⌊2n/3⌋+1
//!   precommits of one round name it; those precommits are its [`CommitCertificate`].
//! - Safety: with at most f = ⌊(n−1)/3⌋ faulty validators no two blocks are decided at one
//!   height, whatever the network does. Liveness: once messages arrive within the timeouts,
//!   each height is decided. Decided blocks are never reverted, so there is no fork choice among
//!   final blocks; undecided proposals are never part of the chain.
//! - Two different votes of one validator for the same height, round and step are
//!   [`BftOutput::Equivocation`] evidence.
//!
//! Block timing follows the single-node rule: a proposer at round 0 proposes when transactions
//! are pending and `block_time_ms` has passed since the parent block, or when
//! `max_empty_interval_ms` has passed; other validators give it `proposal_timeout_ms` beyond
//! that — counted from when they themselves first saw transactions pending, if later, since
//! after an idle spell the proposer learns of new transactions no earlier than they do —
//! before voting nil. Later rounds propose at once; their timeouts grow linearly.

use std::collections::{BTreeMap, BTreeSet};

use auditchain_primitives::vote::{
    CommitCertificate, Vote, VoteBody, VoteKind, max_faulty, quorum,
};
use auditchain_primitives::{Hash, PublicKey, SecretKey};
use serde::{Deserialize, Serialize};

/// Most buffered messages for the next height (they arrive before this node decides).
const MAX_BUFFERED: usize = 4096;

fn default_proposal_timeout_ms() -> u64 {
    1_000
}

fn default_vote_timeout_ms() -> u64 {
    500
}

/// Timing parameters of the BFT engine (genesis `consensus.round_robin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BftTiming {
    /// Minimum time between blocks while transactions are pending, ms.
    pub block_time_ms: u64,
    /// Maximum time without a block, ms.
    pub max_empty_interval_ms: u64,
    /// How long validators wait for the proposer beyond its due time, ms (grows by this much
    /// per round).
    #[serde(default = "default_proposal_timeout_ms")]
    pub proposal_timeout_ms: u64,
    /// How long to wait for the rest of the votes once a quorum of any votes is in, ms
    /// (grows by this much per round).
    #[serde(default = "default_vote_timeout_ms")]
    pub vote_timeout_ms: u64,
}

/// What the service tells the engine. Signatures of votes are checked by the service (in
/// batches) before they are fed in; the engine checks membership and the rules.
#[derive(Debug, Clone, PartialEq)]
pub enum BftInput {
    /// Time passed.
    Tick,
    /// The number of transactions waiting in the mempool.
    Pending {
        /// Count.
        txs: usize,
    },
    /// The block asked for with [`BftOutput::BuildBlock`] is built and valid.
    Built {
        /// Its height.
        height: u64,
        /// The round it was built for.
        round: u32,
        /// Its hash.
        block: Hash,
        /// Its block time, ms.
        timestamp_ms: u64,
    },
    /// A proposal from the network, already checked by the service: `valid` says whether the
    /// block is well-formed, correctly sealed by `proposer`, and executes on the parent.
    Proposal {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// The proposed block's hash.
        block: Hash,
        /// The round of the polka that justifies re-proposing a locked block, if any.
        valid_round: Option<u32>,
        /// Who sealed it.
        proposer: PublicKey,
        /// Whether the service accepts the block.
        valid: bool,
        /// Its block time, ms.
        timestamp_ms: u64,
    },
    /// A signed vote from the network (signature verified by the service).
    Vote(Vote),
    /// The node's head moved outside consensus (start-up, block sync): continue from here.
    NewHead {
        /// Height of the head.
        height: u64,
        /// Its block time, ms.
        timestamp_ms: u64,
    },
}

/// What the engine asks the service to do.
#[derive(Debug, Clone, PartialEq)]
pub enum BftOutput {
    /// Build and validate a block for this height and round (this node proposes), then answer
    /// with [`BftInput::Built`].
    BuildBlock {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// Block time to use, ms.
        timestamp_ms: u64,
    },
    /// Gossip this node's proposal (the block with that hash, and `valid_round`).
    Propose {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// The block.
        block: Hash,
        /// Polka round justifying a re-proposal.
        valid_round: Option<u32>,
    },
    /// Gossip this node's signed vote.
    Vote(Vote),
    /// The block is final: commit it with its certificate.
    Decide {
        /// The certificate (height, round, block and the precommits).
        certificate: CommitCertificate,
    },
    /// A validator signed two different votes for one height, round and step.
    Equivocation {
        /// The vote seen first.
        first: Vote,
        /// The conflicting vote.
        second: Vote,
    },
    /// Messages for a height beyond the next one arrived: this node is behind; sync blocks up
    /// to at least `height - 1` and feed [`BftInput::NewHead`].
    Behind {
        /// The height seen.
        height: u64,
    },
}

/// Why an input was refused (the sender should be penalised where it is a peer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BftReject {
    /// The signer is not a validator.
    #[error("{0} is not a validator")]
    NotValidator(PublicKey),
    /// The proposal's sealer is not the proposer of its height and round.
    #[error("proposer {got} is not scheduled for height {height} round {round}")]
    WrongProposer {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// The sealer.
        got: PublicKey,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Propose,
    Prevote,
    Precommit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proposal {
    block: Hash,
    valid_round: Option<u32>,
    valid: bool,
    timestamp_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimeoutKind {
    Prevote,
    Precommit,
}

/// The engine of one node.
#[derive(Debug, Clone)]
pub struct Bft {
    timing: BftTiming,
    /// The validator set of the current height.
    validators: Vec<PublicKey>,
    /// Validator sets of later heights, by first height (see [`Bft::schedule_validators`]).
    scheduled: BTreeMap<u64, Vec<PublicKey>>,
    chain_id: Hash,
    key: Option<SecretKey>,
    height: u64,
    round: u32,
    step: Step,
    round_started_ms: u64,
    parent_time_ms: u64,
    pending: usize,
    /// When this node last saw pending transactions appear (none before), ms.
    pending_since_ms: Option<u64>,
    locked: Option<(u32, Hash)>,
    valid: Option<(u32, Hash)>,
    proposals: BTreeMap<u32, Proposal>,
    votes: BTreeMap<(u32, VoteKind), BTreeMap<PublicKey, Vote>>,
    polka_seen: BTreeSet<u32>,
    timeouts: BTreeMap<(u32, TimeoutKind), u64>,
    asked_to_build: bool,
    buffered: Vec<BftInput>,
    /// Validators seen sending messages for the next height.
    ahead: BTreeSet<PublicKey>,
    /// The precommits that decided the previous height, re-sent so that validators which
    /// missed some of them can still decide it (CometBFT's "last commit" gossip).
    last_commit: Vec<Vote>,
    last_broadcast_ms: u64,
    out: Vec<BftOutput>,
}

impl Bft {
    /// An engine for the validator holding `key` (`None`: an observer that votes nothing),
    /// whose decided head is `head_height` with block time `head_time_ms`.
    pub fn new(
        timing: BftTiming,
        validators: Vec<PublicKey>,
        chain_id: Hash,
        key: Option<SecretKey>,
        head_height: u64,
        head_time_ms: u64,
        now_ms: u64,
    ) -> Self {
        let mut b = Bft {
            timing,
            validators,
            scheduled: BTreeMap::new(),
            chain_id,
            key,
            height: head_height + 1,
            round: 0,
            step: Step::Propose,
            round_started_ms: now_ms,
            parent_time_ms: head_time_ms,
            pending: 0,
            pending_since_ms: None,
            locked: None,
            valid: None,
            proposals: BTreeMap::new(),
            votes: BTreeMap::new(),
            polka_seen: BTreeSet::new(),
            timeouts: BTreeMap::new(),
            asked_to_build: false,
            buffered: Vec::new(),
            ahead: BTreeSet::new(),
            last_commit: Vec::new(),
            last_broadcast_ms: now_ms,
            out: Vec::new(),
        };
        b.start_round(0, now_ms);
        b
    }

    /// Restores this validator's own votes at the current height after a restart (from its
    /// write-ahead log), so it neither contradicts them nor forgets its lock. Votes for other
    /// heights or of other validators are ignored.
    pub fn restore_own_votes(&mut self, votes: &[Vote]) {
        let me = self.me();
        for v in votes {
            if Some(v.body.validator) != me || v.body.height != self.height {
                continue;
            }
            self.record_vote(*v);
            if v.body.kind == VoteKind::Precommit
                && let Some(b) = v.body.block
                && self.locked.is_none_or(|(r, _)| r < v.body.round)
            {
                self.locked = Some((v.body.round, b));
            }
        }
    }

    /// Makes `validators` the validator set from `from_height` on (a governance change the
    /// node read from committed state). A change for a later height waits for it; one for the
    /// current height applies at once (the node learned it late, e.g. after a block sync) —
    /// with a change delay of at least 2 blocks, a node following consensus always learns a
    /// change before the height it starts at. Scheduling the set already in force changes
    /// nothing.
    pub fn schedule_validators(&mut self, from_height: u64, validators: Vec<PublicKey>) {
        if from_height > self.height {
            self.scheduled.insert(from_height, validators);
        } else if self.validators != validators {
            self.validators = validators;
        }
    }

    /// The validator set of `height` as far as this engine knows (the current set, or a
    /// scheduled one); used for messages of the next height, which arrive early.
    fn validators_for(&self, height: u64) -> &[PublicKey] {
        match self.scheduled.range(..=height).next_back() {
            Some((_, v)) if height > self.height => v,
            _ => &self.validators,
        }
    }

    /// The validator set of the height being decided.
    pub fn validators(&self) -> &[PublicKey] {
        &self.validators
    }

    /// The height being decided.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The current round.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// The proposer of `height` in `round` (in the set of that height, if known).
    pub fn proposer(&self, height: u64, round: u32) -> PublicKey {
        let set = self.validators_for(height);
        let n = set.len().max(1) as u64;
        let i = height.wrapping_add(u64::from(round)) % n;
        set.get(i as usize).copied().unwrap_or(PublicKey([0; 32]))
    }

    fn me(&self) -> Option<PublicKey> {
        self.key.as_ref().map(SecretKey::public_key)
    }

    fn quorum(&self) -> usize {
        quorum(self.validators.len())
    }

    /// Advances the state machine. Errors: [`BftReject`] for input from a non-validator or a
    /// proposal from the wrong proposer (the engine is unchanged).
    pub fn on_input(&mut self, input: BftInput, now_ms: u64) -> Result<Vec<BftOutput>, BftReject> {
        self.accept(input, now_ms)?;
        self.fire_timeouts(now_ms);
        self.apply_rules(now_ms);
        Ok(std::mem::take(&mut self.out))
    }

    /// The earliest time at which [`BftInput::Tick`] could produce output.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let rebroadcast = self
            .key
            .is_some()
            .then(|| self.last_broadcast_ms + self.rebroadcast_interval_ms());
        let mut d = match (self.timeouts.values().copied().min(), rebroadcast) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.step == Step::Propose {
            let t = if self.is_my_turn() {
                (!self.asked_to_build && self.valid.is_none()).then(|| self.build_due_ms())
            } else {
                Some(self.propose_timeout_ms())
            };
            d = match (d, t) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        d
    }

    /// How often a validator re-sends its current votes and proposal while the height is
    /// undecided, ms: gossip may lose messages (partitions), and the protocol assumes they
    /// eventually arrive.
    fn rebroadcast_interval_ms(&self) -> u64 {
        2 * (self.timing.vote_timeout_ms + self.timing.proposal_timeout_ms)
    }

    fn is_my_turn(&self) -> bool {
        self.me() == Some(self.proposer(self.height, self.round))
    }

    /// When the proposer of round 0 should build; later rounds build at once.
    fn build_due_ms(&self) -> u64 {
        if self.round > 0 {
            return self.round_started_ms;
        }
        let wait = if self.pending > 0 {
            self.timing.block_time_ms
        } else {
            self.timing.max_empty_interval_ms
        };
        self.parent_time_ms.saturating_add(wait)
    }

    fn propose_timeout_ms(&self) -> u64 {
        let extra = self.timing.proposal_timeout_ms * (u64::from(self.round) + 1);
        if self.round == 0 {
            let seen = if self.pending > 0 {
                self.pending_since_ms.unwrap_or(0)
            } else {
                0
            };
            self.build_due_ms().max(self.round_started_ms).max(seen) + extra
        } else {
            self.round_started_ms + extra
        }
    }

    fn accept(&mut self, input: BftInput, now_ms: u64) -> Result<(), BftReject> {
        match input {
            BftInput::Tick => {}
            BftInput::Pending { txs } => {
                if txs == 0 {
                    self.pending_since_ms = None;
                } else if self.pending == 0 || self.pending_since_ms.is_none() {
                    self.pending_since_ms = Some(now_ms);
                }
                self.pending = txs;
            }
            BftInput::NewHead {
                height,
                timestamp_ms,
            } => {
                if height + 1 > self.height {
                    self.enter_height(height + 1, timestamp_ms, now_ms);
                }
            }
            BftInput::Built {
                height,
                round,
                block,
                timestamp_ms,
            } => {
                if height == self.height && round == self.round && self.step == Step::Propose {
                    self.proposals.insert(
                        round,
                        Proposal {
                            block,
                            valid_round: None,
                            valid: true,
                            timestamp_ms,
                        },
                    );
                    self.out.push(BftOutput::Propose {
                        height,
                        round,
                        block,
                        valid_round: None,
                    });
                }
            }
            BftInput::Proposal {
                height,
                round,
                block,
                valid_round,
                proposer,
                valid,
                timestamp_ms,
            } => {
                if proposer != self.proposer(height, round) {
                    return Err(BftReject::WrongProposer {
                        height,
                        round,
                        got: proposer,
                    });
                }
                let p = Proposal {
                    block,
                    valid_round,
                    valid,
                    timestamp_ms,
                };
                if height == self.height {
                    // the first proposal of a round counts; a second one is ignored
                    self.proposals.entry(round).or_insert(p);
                } else if height == self.height + 1 {
                    self.buffer(BftInput::Proposal {
                        height,
                        round,
                        block,
                        valid_round,
                        proposer,
                        valid,
                        timestamp_ms,
                    });
                } else if height > self.height + 1 {
                    self.out.push(BftOutput::Behind { height });
                }
            }
            BftInput::Vote(v) => {
                // votes of past heights are ignored (their set may have changed since)
                if v.body.height >= self.height
                    && !self
                        .validators_for(v.body.height)
                        .contains(&v.body.validator)
                {
                    return Err(BftReject::NotValidator(v.body.validator));
                }
                if v.body.height == self.height {
                    self.record_vote(v);
                } else if v.body.height == self.height + 1 {
                    self.buffer(BftInput::Vote(v));
                    // f+1 validators at the next height: at least one honest one decided this
                    // height, which this node missed; it needs the block and its certificate.
                    self.ahead.insert(v.body.validator);
                    if self.ahead.len() == max_faulty(self.validators.len()) + 1 {
                        self.out.push(BftOutput::Behind {
                            height: v.body.height,
                        });
                    }
                } else if v.body.height > self.height + 1 {
                    self.out.push(BftOutput::Behind {
                        height: v.body.height,
                    });
                }
            }
        }
        Ok(())
    }

    fn buffer(&mut self, input: BftInput) {
        if self.buffered.len() < MAX_BUFFERED {
            self.buffered.push(input);
        }
    }

    fn record_vote(&mut self, v: Vote) {
        let slot = self.votes.entry((v.body.round, v.body.kind)).or_default();
        match slot.get(&v.body.validator) {
            Some(first) if first.body.block != v.body.block => {
                self.out.push(BftOutput::Equivocation {
                    first: *first,
                    second: v,
                });
            }
            Some(_) => {}
            None => {
                slot.insert(v.body.validator, v);
            }
        }
    }

    /// Validators voting `kind` in `round` for `block` (`None` = nil); `any` counts all.
    fn count(&self, round: u32, kind: VoteKind, block: Option<Option<Hash>>) -> usize {
        self.votes.get(&(round, kind)).map_or(0, |m| {
            m.values()
                .filter(|v| block.is_none_or(|b| v.body.block == b))
                .count()
        })
    }

    fn cast(&mut self, kind: VoteKind, block: Option<Hash>) {
        let Some(key) = self.key.clone() else {
            return;
        };
        let me = key.public_key();
        if !self.validators.contains(&me) {
            return;
        }
        // Never sign two different votes for one height, round and step (e.g. after a restart
        // that restored this node's earlier votes): repeat the recorded one instead.
        if let Some(prev) = self
            .votes
            .get(&(self.round, kind))
            .and_then(|m| m.get(&me))
            .copied()
        {
            self.out.push(BftOutput::Vote(prev));
            return;
        }
        let v = Vote::sign(
            &self.chain_id,
            VoteBody {
                kind,
                height: self.height,
                round: self.round,
                block,
                validator: key.public_key(),
            },
            &key,
        );
        self.record_vote(v);
        self.out.push(BftOutput::Vote(v));
    }

    /// Re-sends what peers may have lost: this validator's votes of the current round, its
    /// proposal, the prevotes of the polka behind its valid block (so peers can accept a
    /// re-proposal justified by it, CometBFT's "proof of lock" gossip), and the precommits
    /// that decided the previous height.
    fn rebroadcast(&mut self, now_ms: u64) {
        self.last_broadcast_ms = now_ms;
        let Some(me) = self.me() else { return };
        self.out
            .extend(self.last_commit.iter().map(|v| BftOutput::Vote(*v)));
        if let Some((vr, block)) = self.valid
            && let Some(m) = self.votes.get(&(vr, VoteKind::Prevote))
        {
            self.out.extend(
                m.values()
                    .filter(|v| v.body.block == Some(block))
                    .map(|v| BftOutput::Vote(*v)),
            );
        }
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            if let Some(v) = self.votes.get(&(self.round, kind)).and_then(|m| m.get(&me)) {
                self.out.push(BftOutput::Vote(*v));
            }
        }
        if self.is_my_turn()
            && let Some(p) = self.proposals.get(&self.round)
        {
            self.out.push(BftOutput::Propose {
                height: self.height,
                round: self.round,
                block: p.block,
                valid_round: p.valid_round,
            });
        }
    }

    fn start_round(&mut self, round: u32, now_ms: u64) {
        self.round = round;
        self.step = Step::Propose;
        self.round_started_ms = now_ms;
        self.asked_to_build = false;
        if self.is_my_turn()
            && let Some((vr, block)) = self.valid
        {
            // re-propose the block a polka already justified
            let ts = self
                .proposals
                .values()
                .find(|p| p.block == block)
                .map_or(0, |p| p.timestamp_ms);
            self.proposals.insert(
                round,
                Proposal {
                    block,
                    valid_round: Some(vr),
                    valid: true,
                    timestamp_ms: ts,
                },
            );
            self.out.push(BftOutput::Propose {
                height: self.height,
                round,
                block,
                valid_round: Some(vr),
            });
        }
    }

    fn enter_height(&mut self, height: u64, parent_time_ms: u64, now_ms: u64) {
        self.height = height;
        let later = self.scheduled.split_off(&(height + 1));
        if let Some((_, set)) = std::mem::replace(&mut self.scheduled, later).pop_last() {
            self.validators = set;
        }
        self.parent_time_ms = parent_time_ms;
        self.locked = None;
        self.valid = None;
        self.proposals.clear();
        self.votes.clear();
        self.polka_seen.clear();
        self.timeouts.clear();
        self.ahead.clear();
        self.last_broadcast_ms = now_ms;
        self.start_round(0, now_ms);
        let buffered = std::mem::take(&mut self.buffered);
        for input in buffered {
            // buffered inputs were checked on arrival; only their height matters now
            let _ = self.accept(input, now_ms);
        }
    }

    fn fire_timeouts(&mut self, now_ms: u64) {
        if self.key.is_some() && now_ms >= self.last_broadcast_ms + self.rebroadcast_interval_ms() {
            self.rebroadcast(now_ms);
        }
        if self.step == Step::Propose && !self.is_my_turn() && now_ms >= self.propose_timeout_ms() {
            self.cast(VoteKind::Prevote, None);
            self.step = Step::Prevote;
        }
        let due: Vec<(u32, TimeoutKind)> = self
            .timeouts
            .iter()
            .filter(|(_, d)| **d <= now_ms)
            .map(|(k, _)| *k)
            .collect();
        for (round, kind) in due {
            self.timeouts.remove(&(round, kind));
            if round != self.round {
                continue;
            }
            match kind {
                TimeoutKind::Prevote if self.step == Step::Prevote => {
                    self.cast(VoteKind::Precommit, None);
                    self.step = Step::Precommit;
                }
                TimeoutKind::Precommit => self.start_round(round + 1, now_ms),
                TimeoutKind::Prevote => {}
            }
        }
    }

    fn schedule(&mut self, kind: TimeoutKind, now_ms: u64) {
        let d = now_ms + self.timing.vote_timeout_ms * (u64::from(self.round) + 1);
        self.timeouts.entry((self.round, kind)).or_insert(d);
    }

    /// Applies Tendermint's "upon" rules until none fires.
    fn apply_rules(&mut self, now_ms: u64) {
        for _ in 0..64 {
            if !self.apply_one(now_ms) {
                return;
            }
        }
    }

    fn apply_one(&mut self, now_ms: u64) -> bool {
        let q = self.quorum();
        let r = self.round;
        // Decide (line 49): any round with a valid proposal and a quorum of precommits for it.
        let decided = self.proposals.iter().find_map(|(&pr, p)| {
            (p.valid && self.count(pr, VoteKind::Precommit, Some(Some(p.block))) >= q)
                .then_some((pr, *p))
        });
        if let Some((pr, p)) = decided {
            // BTreeMap order: sorted by validator key
            let commit: Vec<Vote> = self
                .votes
                .get(&(pr, VoteKind::Precommit))
                .into_iter()
                .flat_map(|m| m.values())
                .filter(|v| v.body.block == Some(p.block))
                .copied()
                .collect();
            let signatures = commit
                .iter()
                .map(|v| (v.body.validator, v.signature))
                .collect();
            self.last_commit = commit;
            self.out.push(BftOutput::Decide {
                certificate: CommitCertificate {
                    height: self.height,
                    round: pr,
                    block: p.block,
                    signatures,
                },
            });
            self.enter_height(self.height + 1, p.timestamp_ms, now_ms);
            return true;
        }
        // Round skip (line 55): f+1 validators are already in a later round.
        let later = self
            .votes
            .keys()
            .map(|(rr, _)| *rr)
            .filter(|rr| *rr > r)
            .find(|rr| {
                let mut who = BTreeSet::new();
                for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                    if let Some(m) = self.votes.get(&(*rr, kind)) {
                        who.extend(m.keys().copied());
                    }
                }
                who.len() > max_faulty(self.validators.len())
            });
        if let Some(rr) = later {
            self.start_round(rr, now_ms);
            return true;
        }
        let proposal = self.proposals.get(&r).copied();
        // Our turn to build (round 0 waits for its due time; later rounds build at once).
        if self.step == Step::Propose
            && self.is_my_turn()
            && proposal.is_none()
            && !self.asked_to_build
            && self.valid.is_none()
            && now_ms >= self.build_due_ms()
        {
            self.asked_to_build = true;
            self.out.push(BftOutput::BuildBlock {
                height: self.height,
                round: r,
                timestamp_ms: now_ms.max(self.parent_time_ms + 1),
            });
            return true;
        }
        if self.step == Step::Propose
            && let Some(p) = proposal
        {
            let acceptable = |lr: Option<(u32, Hash)>, vr: Option<u32>| match lr {
                None => true,
                Some((locked_round, locked_block)) => {
                    locked_block == p.block || vr.is_some_and(|vr| locked_round <= vr)
                }
            };
            match p.valid_round {
                // line 22: a fresh proposal
                None => {
                    let ok = p.valid && acceptable(self.locked, None);
                    self.cast(VoteKind::Prevote, ok.then_some(p.block));
                    self.step = Step::Prevote;
                    return true;
                }
                // line 28: a re-proposal justified by a polka in round vr < r
                Some(vr)
                    if vr < r && self.count(vr, VoteKind::Prevote, Some(Some(p.block))) >= q =>
                {
                    let ok = p.valid && acceptable(self.locked, Some(vr));
                    self.cast(VoteKind::Prevote, ok.then_some(p.block));
                    self.step = Step::Prevote;
                    return true;
                }
                Some(_) => {}
            }
        }
        // line 34: a quorum of any prevotes: start the prevote timeout
        if self.step == Step::Prevote
            && !self.timeouts.contains_key(&(r, TimeoutKind::Prevote))
            && self.count(r, VoteKind::Prevote, None) >= q
            && !self.polka_seen.contains(&r)
        {
            self.schedule(TimeoutKind::Prevote, now_ms);
        }
        // line 36: a polka for the valid proposal of this round
        if let Some(p) = proposal
            && p.valid
            && self.step >= Step::Prevote
            && !self.polka_seen.contains(&r)
            && self.count(r, VoteKind::Prevote, Some(Some(p.block))) >= q
        {
            self.polka_seen.insert(r);
            if self.step == Step::Prevote {
                self.locked = Some((r, p.block));
                self.cast(VoteKind::Precommit, Some(p.block));
                self.step = Step::Precommit;
            }
            self.valid = Some((r, p.block));
            return true;
        }
        // line 44: a quorum of nil prevotes
        if self.step == Step::Prevote && self.count(r, VoteKind::Prevote, Some(None)) >= q {
            self.cast(VoteKind::Precommit, None);
            self.step = Step::Precommit;
            return true;
        }
        // line 47: a quorum of any precommits: start the precommit timeout
        if !self.timeouts.contains_key(&(r, TimeoutKind::Precommit))
            && self.count(r, VoteKind::Precommit, None) >= q
        {
            self.schedule(TimeoutKind::Precommit, now_ms);
        }
        false
    }
}
