//! Typed contract events. Every state change emits one; a block's events are stored with it
//! (in execution order) and its state root commits to them.

use auditchain_primitives::call::{Choice, Role, Severity};
use auditchain_primitives::{Hash, PublicKey};
use serde::{Deserialize, Serialize};

/// One event and the transaction that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Index of the transaction in its block; absent for end-of-block work (block reward,
    /// proposal resolution, SLA escalation, validator-set changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<u32>,
    /// The event.
    #[serde(flatten)]
    pub event: ContractEvent,
}

/// What changed. Serialised with a `type` tag in snake_case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContractEvent {
    /// A call failed and changed nothing.
    CallFailed {
        /// Why.
        error: String,
    },
    /// Tokens moved.
    Transferred {
        /// Sender.
        from: PublicKey,
        /// Receiver.
        to: PublicKey,
        /// Tokens.
        amount: u64,
    },
    /// Tokens were created (an admin mint, a reward, a rule, a proposal). The seed's
    /// `qualityTokensMinted`.
    Minted {
        /// Receiver.
        to: PublicKey,
        /// Tokens.
        amount: u64,
        /// Why: the admin's reason, `event:<type>`, `block`, `rule:<name>` or `proposal:<id>`.
        reason: String,
    },
    /// Tokens were destroyed.
    Burned {
        /// Former holder.
        from: PublicKey,
        /// Tokens.
        amount: u64,
    },
    /// Voting power was delegated (`to` absent: taken back).
    Delegated {
        /// Delegator.
        from: PublicKey,
        /// Delegate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<PublicKey>,
    },
    /// A QA rule fired an alert.
    AlertRaised {
        /// Alert sequence number.
        seq: u64,
        /// Rule name.
        rule: String,
        /// Severity.
        severity: Severity,
        /// Message.
        message: String,
        /// The event's entity.
        entity: String,
        /// The threshold group value (e.g. the IP), if the rule groups.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
    },
    /// A QA rule was added or replaced.
    RuleSet {
        /// Rule name.
        name: String,
    },
    /// A QA rule was (de)activated.
    RuleActivated {
        /// Rule name.
        name: String,
        /// New state.
        active: bool,
    },
    /// A proposal was opened.
    ProposalCreated {
        /// Id.
        id: u64,
        /// Proposer.
        proposer: PublicKey,
        /// Title.
        title: String,
        /// Last height at which votes count.
        end_height: u64,
    },
    /// A vote was cast.
    Voted {
        /// Proposal.
        id: u64,
        /// Voter.
        voter: PublicKey,
        /// Vote.
        choice: Choice,
        /// Weight counted (quadratic proposals: √power).
        weight: u64,
    },
    /// A proposal was cancelled by its proposer.
    ProposalCancelled {
        /// Id.
        id: u64,
    },
    /// A proposal's voting period ended.
    ProposalResolved {
        /// Id.
        id: u64,
        /// `passed`, `rejected`, `no_quorum` or `failed` (passed, action failed).
        status: String,
        /// Failure of the action, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A role was granted.
    RoleGranted {
        /// Account.
        account: PublicKey,
        /// Role.
        role: Role,
    },
    /// A role was revoked.
    RoleRevoked {
        /// Account.
        account: PublicKey,
        /// Role.
        role: Role,
    },
    /// A module parameter changed.
    ParamChanged {
        /// Dotted name.
        name: String,
        /// New value.
        value: u64,
    },
    /// A validator-set change was scheduled.
    ValidatorSetScheduled {
        /// First height proposed and voted by the new set.
        from_height: u64,
        /// The new set, in proposer order.
        validators: Vec<PublicKey>,
    },
    /// The validator set changed; it is in force from the next height.
    ValidatorSetChanged {
        /// First height of the new set.
        from_height: u64,
        /// The set, in proposer order.
        validators: Vec<PublicKey>,
    },
    /// An evidence file hash was anchored.
    EvidenceAnchored {
        /// Entity.
        entity: String,
        /// File hash.
        sha256: Hash,
        /// File size, bytes.
        size_bytes: u64,
    },
    /// An SLA deadline opened.
    SlaOpened {
        /// Entity.
        entity: String,
        /// Deadline, ms since the Unix epoch (block time).
        deadline_ms: u64,
    },
    /// An SLA deadline was closed.
    SlaClosed {
        /// Entity.
        entity: String,
        /// Whether it closed before its deadline.
        on_time: bool,
    },
    /// An SLA deadline passed without closing (emitted exactly once per deadline).
    SlaEscalated {
        /// Entity.
        entity: String,
        /// The deadline missed, ms.
        deadline_ms: u64,
    },
}
