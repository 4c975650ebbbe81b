//! The quality-token ledger: balances, total supply, delegation of voting power, and a
//! per-account history.
//!
//! Invariants (property-tested): total supply = Σ balances = Σ voting power; no balance is
//! negative (u64, checked arithmetic); supply ≤ 2^53 − 1 so every amount is exact in JSON.
//! An account's voting power is its own balance unless it delegated, plus the balances of
//! the accounts that delegated to it.

use auditchain_primitives::PublicKey;
use auditchain_primitives::tx::MAX_SAFE_INTEGER;
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::events::ContractEvent;
use crate::keys;
use crate::runtime::Call;
use crate::state::{Overlay, StateError, StateRead};

/// One change of an account's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Block height.
    pub height: u64,
    /// Block time, ms.
    pub time_ms: u64,
    /// `mint`, `burn`, `transfer_in` or `transfer_out`.
    pub kind: String,
    /// Tokens.
    pub amount: u64,
    /// The other account of a transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<PublicKey>,
    /// A mint's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Balance afterwards.
    pub balance: u64,
}

fn read_u64(st: &dyn StateRead, key: &[u8]) -> Result<u64, StateError> {
    match st.get(key)? {
        None => Ok(0),
        Some(v) => serde_json::from_slice(&v).map_err(|e| {
            StateError(format!(
                "{} does not decode: {e}",
                String::from_utf8_lossy(key)
            ))
        }),
    }
}

/// The balance of `who`, tokens.
pub fn balance(st: &dyn StateRead, who: &PublicKey) -> Result<u64, StateError> {
    read_u64(st, &keys::balance(who))
}

/// Total supply, tokens.
pub fn supply(st: &dyn StateRead) -> Result<u64, StateError> {
    read_u64(st, keys::SUPPLY)
}

/// Voting power of `who`, tokens.
pub fn voting_power(st: &dyn StateRead, who: &PublicKey) -> Result<u64, StateError> {
    read_u64(st, &keys::voting_power(who))
}

/// The delegate of `who`, if it delegated.
pub fn delegate_of(st: &Overlay<'_>, who: &PublicKey) -> Result<Option<PublicKey>, StateError> {
    st.get_json(&keys::delegate(who))
}

fn holder(c: &Call<'_>, who: &PublicKey) -> Result<PublicKey, StateError> {
    Ok(delegate_of(&c.st, who)?.unwrap_or(*who))
}

fn add_power(c: &mut Call<'_>, who: &PublicKey, delta: i128) -> Result<(), ContractError> {
    let now = i128::from(c.get_u64(&keys::voting_power(who))?);
    let next = u64::try_from(now + delta).map_err(|_| ContractError::Overflow {
        what: "voting power",
    })?;
    c.put_u64(keys::voting_power(who), next)?;
    Ok(())
}

/// Changes `who`'s balance by `delta` (and its power holder's voting power), appending a
/// history entry. Errors: [`ContractError::InsufficientBalance`], overflow.
fn adjust(
    c: &mut Call<'_>,
    who: &PublicKey,
    delta: i128,
    kind: &str,
    counterparty: Option<PublicKey>,
    reason: Option<&str>,
) -> Result<(), ContractError> {
    let bal = c.get_u64(&keys::balance(who))?;
    let next = i128::from(bal) + delta;
    if next < 0 {
        return Err(ContractError::InsufficientBalance {
            needed: delta.unsigned_abs() as u64,
            available: bal,
        });
    }
    let next = next as u64;
    if next > MAX_SAFE_INTEGER {
        return Err(ContractError::Overflow {
            what: "the balance",
        });
    }
    let h = holder(c, who)?;
    add_power(c, &h, delta)?;
    c.put_u64(keys::balance(who), next)?;
    let seq = c.get_u64(&keys::history_next(who))?;
    c.st.put_json(
        keys::history(who, seq),
        &HistoryEntry {
            height: c.ctx.height,
            time_ms: c.ctx.timestamp_ms,
            kind: kind.to_string(),
            amount: delta.unsigned_abs() as u64,
            counterparty,
            reason: reason.map(str::to_string),
            balance: next,
        },
    )?;
    c.put_u64(keys::history_next(who), seq + 1)?;
    Ok(())
}

/// Creates `amount` tokens for `to`. The caller checks who may mint. Errors:
/// [`ContractError::Overflow`] if the supply would pass 2^53 − 1.
pub fn mint(
    c: &mut Call<'_>,
    to: &PublicKey,
    amount: u64,
    reason: &str,
) -> Result<(), ContractError> {
    let s = supply(&c.st)?;
    let next = s
        .checked_add(amount)
        .filter(|n| *n <= MAX_SAFE_INTEGER)
        .ok_or(ContractError::Overflow { what: "the mint" })?;
    adjust(c, to, i128::from(amount), "mint", None, Some(reason))?;
    c.put_u64(keys::SUPPLY.to_vec(), next)?;
    c.emit(ContractEvent::Minted {
        to: *to,
        amount,
        reason: reason.to_string(),
    });
    Ok(())
}

/// Moves `amount` from `from` to `to`. Errors: insufficient balance, a transfer to oneself.
pub fn transfer(
    c: &mut Call<'_>,
    from: &PublicKey,
    to: &PublicKey,
    amount: u64,
) -> Result<(), ContractError> {
    if from == to {
        return Err(ContractError::Pointless("a transfer to oneself"));
    }
    adjust(
        c,
        from,
        -i128::from(amount),
        "transfer_out",
        Some(*to),
        None,
    )?;
    adjust(c, to, i128::from(amount), "transfer_in", Some(*from), None)?;
    c.emit(ContractEvent::Transferred {
        from: *from,
        to: *to,
        amount,
    });
    Ok(())
}

/// Destroys `amount` of `from`'s tokens. Errors: insufficient balance.
pub fn burn(c: &mut Call<'_>, from: &PublicKey, amount: u64) -> Result<(), ContractError> {
    adjust(c, from, -i128::from(amount), "burn", None, None)?;
    let s = supply(&c.st)?;
    c.put_u64(keys::SUPPLY.to_vec(), s - amount.min(s))?;
    c.emit(ContractEvent::Burned {
        from: *from,
        amount,
    });
    Ok(())
}

/// Delegates `from`'s voting power to `to` (`None`: back to itself). Errors: delegating to
/// oneself, or to the current delegate.
pub fn delegate(
    c: &mut Call<'_>,
    from: &PublicKey,
    to: Option<&PublicKey>,
) -> Result<(), ContractError> {
    if to == Some(from) {
        return Err(ContractError::Pointless(
            "delegating to oneself (omit `to` to take power back)",
        ));
    }
    let old = delegate_of(&c.st, from)?;
    if old.as_ref() == to {
        return Err(ContractError::Pointless("that is already the delegation"));
    }
    let bal = i128::from(balance(&c.st, from)?);
    add_power(c, &old.unwrap_or(*from), -bal)?;
    add_power(c, to.unwrap_or(from), bal)?;
    match to {
        Some(t) => c.st.put_json(keys::delegate(from), t)?,
        None => c.st.delete(keys::delegate(from)),
    }
    c.emit(ContractEvent::Delegated {
        from: *from,
        to: to.copied(),
    });
    Ok(())
}

/// Up to `limit` history entries of `who` from sequence `from`, with their sequence numbers.
pub fn history(
    st: &Overlay<'_>,
    who: &PublicKey,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, HistoryEntry)>, StateError> {
    let start = keys::history(who, from);
    let end = crate::state::prefix_end(&keys::history_prefix(who));
    st.scan(&start, &end, limit)?
        .into_iter()
        .map(|(k, v)| {
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&k[k.len() - 8..]);
            let e = serde_json::from_slice(&v)
                .map_err(|e| StateError(format!("token history: {e}")))?;
            Ok((u64::from_be_bytes(seq), e))
        })
        .collect()
}
