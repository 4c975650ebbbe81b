//! Why a contract call fails. A failed call changes nothing; the message is stored in the
//! block's [`crate::ContractEvent::CallFailed`] event and returned by mempool admission.

use auditchain_primitives::{Hash, PublicKey};

use crate::state::StateError;

/// A call failure (or, for [`ContractError::State`], a state read failure that aborts the
/// whole block).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// The signer lacks a role the call needs.
    #[error("signer {signer} does not hold the {role} role")]
    MissingRole {
        /// The signer.
        signer: PublicKey,
        /// The role needed, snake_case.
        role: &'static str,
    },
    /// The balance is below the amount.
    #[error("balance {available} tokens is below {needed}")]
    InsufficientBalance {
        /// Tokens needed.
        needed: u64,
        /// Tokens held.
        available: u64,
    },
    /// The result would exceed the supply cap of 2^53 − 1 tokens.
    #[error("{what} would exceed the token supply cap of 2^53−1")]
    Overflow {
        /// What overflowed.
        what: &'static str,
    },
    /// A transfer or delegation to oneself.
    #[error("{0}")]
    Pointless(&'static str),
    /// No proposal with this id.
    #[error("unknown proposal {id}")]
    UnknownProposal {
        /// Proposal id.
        id: u64,
    },
    /// The proposal is not open for votes (ended, resolved or cancelled).
    #[error(
        "proposal {id} is not open for votes (status {status}, voting ended at height {end_height})"
    )]
    VotingClosed {
        /// Proposal id.
        id: u64,
        /// Its status.
        status: String,
        /// Last height at which votes counted.
        end_height: u64,
    },
    /// The account already voted on this proposal.
    #[error("{voter} already voted on proposal {id}")]
    AlreadyVoted {
        /// Proposal id.
        id: u64,
        /// The voter.
        voter: PublicKey,
    },
    /// The voter had no voting power when the proposal was created.
    #[error("{voter} had no voting power when proposal {id} was created")]
    NoVotingPower {
        /// Proposal id.
        id: u64,
        /// The voter.
        voter: PublicKey,
    },
    /// Only the proposer may cancel, and only before any vote.
    #[error("proposal {id} cannot be cancelled: {reason}")]
    CannotCancel {
        /// Proposal id.
        id: u64,
        /// Why.
        reason: &'static str,
    },
    /// The voting period is outside the governance bounds.
    #[error("voting_period_blocks {got} is outside {min}–{max}")]
    VotingPeriod {
        /// Requested.
        got: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A proposal action that cannot be executed.
    #[error("invalid action: {0}")]
    InvalidAction(String),
    /// A parameter name that does not exist, or a value out of its range.
    #[error("parameter {name}: {reason}")]
    Param {
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// No QA rule with this name.
    #[error("unknown rule {name:?}")]
    UnknownRule {
        /// Rule name.
        name: String,
    },
    /// This file hash is already anchored for this entity.
    #[error("evidence {sha256} is already anchored for entity {entity:?} (at height {height})")]
    AlreadyAnchored {
        /// The entity.
        entity: String,
        /// The file hash.
        sha256: Hash,
        /// Height of the first anchoring.
        height: u64,
    },
    /// State could not be read: not the call's fault; the block is not executed.
    #[error(transparent)]
    State(#[from] StateError),
}
