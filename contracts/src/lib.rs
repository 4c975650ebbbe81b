//! auditchain native contracts, executed on every node for every block: the quality-token
//! ledger ([`tokens`]), contribution rewards ([`rewards`]), QA monitor rules ([`qa`]),
//! governance ([`governance`]), evidence anchoring ([`evidence`]) and SLA escalation ([`sla`]),
//! plus the system state they share ([`system`]: roles, parameters, the validator set).
//!
//! FRAME's rules (docs/contracts.md):
//! - **checks first, writes last**: a call that fails changes nothing (its writes are buffered
//!   in an [`state::Overlay`] and dropped); the transaction stays in the block, its nonce is
//!   used, and a [`ContractEvent::CallFailed`] event says why;
//! - every state change emits a typed [`ContractEvent`], stored with the block;
//! - deterministic: time is the block timestamp, no randomness, only ordered maps;
//! - module parameters come from genesis ([`ContractsConfig`]) and change only by governance.
//!
//! Entry points: [`genesis_state`] (the state before block 1), [`BlockExec`] (one block), and
//! [`dry_run`] (would a call succeed on the current state: mempool admission).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod config;
pub mod error;
pub mod events;
pub mod evidence;
pub mod governance;
pub mod keys;
pub mod qa;
pub mod rewards;
mod runtime;
pub mod sla;
pub mod state;
pub mod system;
pub mod tokens;

pub use config::{ContractsConfig, GovParams, Params, RewardParams, SlaRule};
pub use error::ContractError;
pub use events::{ContractEvent, EventRecord};
pub use runtime::{BlockCtx, BlockExec, BlockOutput, dry_run, genesis_state};
pub use state::{MemState, Overlay, StateError, StateRead, Writes};
