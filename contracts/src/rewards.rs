//! Contribution rewards: newly minted tokens for the signer of a committed event whose type
//! is in the reward table, for QA rules' `mint` actions, and for the proposer of each block.
//!
//! Anti-farming cap: event rewards and rule mints paid to one account within a reward window
//! (`[k·window_blocks, (k+1)·window_blocks)`) total at most `cap_per_window`; the excess is
//! not paid. A reward that would pass the supply cap is not paid either. Rewards never make
//! the event's transaction fail. The block reward is not capped.

use auditchain_primitives::PublicKey;
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::keys;
use crate::runtime::Call;
use crate::tokens;

/// Rewards paid to an account in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowPaid {
    /// Window index (height / window_blocks).
    pub window: u64,
    /// Tokens paid in it.
    pub paid: u64,
}

/// Pays up to `amount` to `to`, within the cap; returns what was paid.
pub fn pay_capped(
    c: &mut Call<'_>,
    to: &PublicKey,
    amount: u64,
    reason: &str,
) -> Result<u64, ContractError> {
    let p = &c.params.rewards;
    let window = c.ctx.height / p.window_blocks.max(1);
    let cap = p.cap_per_window;
    let mut w =
        c.st.get_json::<WindowPaid>(&keys::reward_window(to))?
            .filter(|w| w.window == window)
            .unwrap_or(WindowPaid { window, paid: 0 });
    let pay = amount.min(cap.saturating_sub(w.paid));
    if pay == 0 {
        return Ok(0);
    }
    match tokens::mint(c, to, pay, reason) {
        Ok(()) => {}
        Err(ContractError::Overflow { .. }) => return Ok(0),
        Err(e) => return Err(e),
    }
    w.paid += pay;
    c.st.put_json(keys::reward_window(to), &w)?;
    Ok(pay)
}

/// The reward for a committed event of `event_type`, paid to the signer.
pub fn on_event(c: &mut Call<'_>, event_type: &str) -> Result<(), ContractError> {
    let Some(amount) = c.params.rewards.table.get(event_type).copied() else {
        return Ok(());
    };
    let to = c.signer;
    pay_capped(c, &to, amount, &format!("event:{event_type}")).map(|_| ())
}

/// The block reward, paid to the proposer at the end of the block.
pub fn block_reward(c: &mut Call<'_>) -> Result<(), ContractError> {
    let amount = c.params.rewards.block_reward;
    if amount == 0 || c.ctx.height == 0 {
        return Ok(());
    }
    let to = c.ctx.proposer;
    match tokens::mint(c, &to, amount, "block") {
        Ok(()) | Err(ContractError::Overflow { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
