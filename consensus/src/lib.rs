//! auditchain consensus: engines as pure state machines (values in, values out).
//!
//! An [`Engine`] receives [`Input`]s with the current time and returns [`Output`]s; it owns no
//! timers, sockets or disk, so it is tested with a fake clock. It also judges headers
//! ([`Engine::verify_header`]): who may seal a height, and the timing rules.
//!
//! [`round_robin::RoundRobin`] is proof of authority: the proposer of height `h` is
//! `validators[h mod n]`. [`bft::Bft`] adds round changes, signed votes and 2/3 finality
//! (Tendermint's algorithm) for clusters.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod bft;
pub mod pow;
pub mod round_robin;

use auditchain_primitives::{Block, Hash, Header, PublicKey};

pub use round_robin::{RoundRobin, RoundRobinConfig};

/// Why a header is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    /// Height is not parent height + 1.
    #[error("height {got} does not follow parent height {parent}")]
    BadHeight {
        /// Parent height.
        parent: u64,
        /// Header height.
        got: u64,
    },
    /// `parent_hash` is not the parent's hash.
    #[error("parent_hash {got} is not the hash of block {height} ({expected})")]
    BadParent {
        /// Height of the parent.
        height: u64,
        /// Its hash.
        expected: Hash,
        /// The header's parent_hash.
        got: Hash,
    },
    /// The timestamp is not after the parent's, or too far in the future.
    #[error("timestamp_ms {got} out of bounds: must be > {min} and <= {max}")]
    BadTimestamp {
        /// Exclusive lower bound (parent time).
        min: u64,
        /// Inclusive upper bound (local time + drift).
        max: u64,
        /// The header's timestamp.
        got: u64,
    },
    /// The proposer is not the one scheduled for this height and round.
    #[error(
        "proposer {got} is not the scheduled proposer {expected} of height {height} round {round}"
    )]
    WrongProposer {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// Scheduled proposer.
        expected: PublicKey,
        /// Header's proposer.
        got: PublicKey,
    },
    /// The header's consensus fields are for another engine or an unsupported round.
    #[error("consensus fields not valid for this engine: {0}")]
    BadConsensusFields(String),
    /// The seal does not verify.
    #[error("seal does not verify for proposer {0}")]
    BadSeal(PublicKey),
}

/// What the service around an engine tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A new head was committed.
    NewHead {
        /// Its height.
        height: u64,
        /// Its block time, ms.
        timestamp_ms: u64,
    },
    /// The number of transactions waiting in the mempool changed.
    Pending {
        /// Transactions ready for inclusion.
        txs: usize,
    },
    /// Time passed.
    Tick,
}

/// What an engine asks the service to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Build, seal and import a block at `height` with this round and timestamp.
    Propose {
        /// Height to propose.
        height: u64,
        /// Round at that height.
        round: u32,
        /// Block time to use, ms (> parent time).
        timestamp_ms: u64,
    },
}

/// A consensus engine.
pub trait Engine: Send {
    /// Advances the state machine. `now_ms` is wall-clock ms since the Unix epoch.
    fn on_input(&mut self, input: Input, now_ms: u64) -> Vec<Output>;

    /// The earliest time at which [`Input::Tick`] could produce output, for the service's timer.
    fn next_deadline_ms(&self) -> Option<u64>;

    /// Checks `block` (header, seal) as a child of `parent` given local time `now_ms`.
    /// Transactions and roots are checked by the node. Errors: [`ConsensusError`].
    fn verify_header(
        &self,
        block: &Block,
        parent: &Header,
        now_ms: u64,
    ) -> Result<(), ConsensusError>;

    /// Whether `key` may seal `header` (height and round only; used by offline verifiers).
    fn check_proposer(&self, header: &Header) -> Result<(), ConsensusError>;
}
