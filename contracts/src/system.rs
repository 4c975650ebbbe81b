//! System state shared by the modules: account roles, module parameters, and the round-robin
//! validator set with its scheduled changes.
//!
//! The validator set stored under [`keys::VALIDATORS`] after block `h` is the set that
//! proposes and votes at height `h + 1`. A change decided at height `h` is scheduled for
//! `h + governance.validator_change_delay_blocks` and becomes the stored set at the end of the
//! block before that height.

use auditchain_primitives::PublicKey;
use auditchain_primitives::call::Role;
use serde::{Deserialize, Serialize};

use crate::config::Params;
use crate::error::ContractError;
use crate::events::ContractEvent;
use crate::keys;
use crate::runtime::Call;
use crate::state::{Overlay, StateError, StateRead};

/// snake_case name of a role.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::Writer => "writer",
        Role::Validator => "validator",
    }
}

fn role_bits(st: &dyn StateRead, who: &PublicKey) -> Result<u8, StateError> {
    match st.get(&keys::role(who))? {
        None => Ok(0),
        Some(v) => serde_json::from_slice(&v)
            .map_err(|e| StateError(format!("role of {who} does not decode: {e}"))),
    }
}

/// Whether `who` holds `role`.
pub fn has_role(st: &dyn StateRead, who: &PublicKey, role: Role) -> Result<bool, StateError> {
    Ok(role_bits(st, who)? & role.bit() != 0)
}

/// The roles `who` holds.
pub fn roles(st: &dyn StateRead, who: &PublicKey) -> Result<Vec<Role>, StateError> {
    let bits = role_bits(st, who)?;
    Ok([Role::Admin, Role::Writer, Role::Validator]
        .into_iter()
        .filter(|r| bits & r.bit() != 0)
        .collect())
}

/// Grants (`on`) or revokes a role, emitting the event. Errors: state reads.
pub fn set_role(c: &mut Call<'_>, who: &PublicKey, role: Role, on: bool) -> Result<(), StateError> {
    let bits = role_bits(&c.st, who)?;
    let next = if on {
        bits | role.bit()
    } else {
        bits & !role.bit()
    };
    if next == bits {
        return Ok(());
    }
    c.put_u64(keys::role(who), u64::from(next))?;
    c.emit(if on {
        ContractEvent::RoleGranted {
            account: *who,
            role,
        }
    } else {
        ContractEvent::RoleRevoked {
            account: *who,
            role,
        }
    });
    Ok(())
}

/// The module parameters. Errors: missing or undecodable.
pub fn params(st: &Overlay<'_>) -> Result<Params, StateError> {
    st.get_json(keys::PARAMS)?
        .ok_or_else(|| StateError("module parameters missing".into()))
}

/// The validator set for the height after the state's last block.
pub fn validators(st: &dyn StateRead) -> Result<Vec<PublicKey>, StateError> {
    let v = st
        .get(keys::VALIDATORS)?
        .ok_or_else(|| StateError("validator set missing".into()))?;
    serde_json::from_slice(&v).map_err(|e| StateError(format!("validator set: {e}")))
}

/// The validator set that certifies blocks at `height` (≥ 1): the newest entry of the
/// validator-set history starting at or below it. Errors: state reads, or no entry (a state
/// without genesis).
pub fn validators_at(st: &dyn StateRead, height: u64) -> Result<Vec<PublicKey>, StateError> {
    let rows = st.scan(
        keys::VALIDATORS_AT,
        &keys::validators_at(height.saturating_add(1)),
        usize::MAX,
    )?;
    let (_, v) = rows
        .last()
        .ok_or_else(|| StateError(format!("no validator set for height {height}")))?;
    serde_json::from_slice(v).map_err(|e| StateError(format!("validator set: {e}")))
}

/// The scheduled validator-set change, if any. Errors: state reads.
pub fn pending_validators(st: &dyn StateRead) -> Result<Option<PendingSet>, StateError> {
    match st.get(keys::VALIDATORS_PENDING)? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| StateError(format!("pending validator set: {e}"))),
    }
}

/// A validator-set change waiting for its height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSet {
    /// First height of the new set.
    pub from_height: u64,
    /// The new set, in proposer order.
    pub validators: Vec<PublicKey>,
}

/// The set that will be in force once pending changes apply (what a new change builds on).
pub fn latest_validators(c: &Call<'_>) -> Result<Vec<PublicKey>, StateError> {
    match c.st.get_json::<PendingSet>(keys::VALIDATORS_PENDING)? {
        Some(p) => Ok(p.validators),
        None => validators(&c.st),
    }
}

/// Schedules `set` from height `current + delay`. Errors: state reads.
pub fn schedule_validators(c: &mut Call<'_>, set: Vec<PublicKey>) -> Result<(), ContractError> {
    let from_height = c
        .ctx
        .height
        .saturating_add(c.params.governance.validator_change_delay_blocks);
    c.st.put_json(
        keys::VALIDATORS_PENDING.to_vec(),
        &PendingSet {
            from_height,
            validators: set.clone(),
        },
    )?;
    c.emit(ContractEvent::ValidatorSetScheduled {
        from_height,
        validators: set,
    });
    Ok(())
}

/// At the end of a block: makes a pending set the stored set if it starts at the next
/// height. Returns the new set when it changed.
pub fn advance_validator_set(c: &mut Call<'_>) -> Result<Option<Vec<PublicKey>>, StateError> {
    let Some(p) = c.st.get_json::<PendingSet>(keys::VALIDATORS_PENDING)? else {
        return Ok(None);
    };
    if p.from_height > c.ctx.height + 1 {
        return Ok(None);
    }
    c.st.delete(keys::VALIDATORS_PENDING.to_vec());
    c.st.put_json(keys::VALIDATORS.to_vec(), &p.validators)?;
    c.st.put_json(keys::validators_at(c.ctx.height + 1), &p.validators)?;
    c.emit(ContractEvent::ValidatorSetChanged {
        from_height: c.ctx.height + 1,
        validators: p.validators.clone(),
    });
    Ok(Some(p.validators))
}

/// Checks that `f` would succeed on the state so far without keeping its writes or events.
pub fn check_only<T>(
    c: &Call<'_>,
    f: impl FnOnce(&mut Call<'_>) -> Result<T, ContractError>,
) -> Result<T, ContractError> {
    let mut probe = Call::new(&c.st, c.ctx, c.params, c.signer, c.tx);
    f(&mut probe)
}
