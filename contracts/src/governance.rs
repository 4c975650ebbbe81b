//! Governance: proposals voted with quality tokens.
//!
//! - `propose` snapshots every account's voting power (balance unless delegated, plus
//!   delegations) and the total; later token moves do not change the weights.
//! - `vote` once per account while the proposal is open (up to and including its end
//!   height); weight = snapshotted power, or its integer square root for a quadratic
//!   proposal.
//! - `cancel` by the proposer before any vote.
//! - At the end of the end height the proposal resolves: quorum = participation (linear
//!   power of all votes) ≥ `quorum_bps` of the snapshotted total; it passes if, with quorum,
//!   yes-weight × 10,000 > `pass_threshold_bps` × (yes + no weight). A passed action runs in
//!   its own overlay: if it fails, nothing of it is kept and the status is `failed`.
//! - Actions are checked at proposal time against the state then (known parameter, rule
//!   exists, validator not yet in the set, …) and again when they run.

use auditchain_primitives::PublicKey;
use auditchain_primitives::call::{Choice, GovAction, Role};
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::events::ContractEvent;
use crate::runtime::Call;
use crate::state::{Overlay, StateError, StateRead, prefix_end};
use crate::{keys, qa, system, tokens};

/// Votes counted per choice: `(linear power, counted weight)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Yes: linear power.
    pub yes_power: u64,
    /// Yes: counted weight.
    pub yes: u64,
    /// No: linear power.
    pub no_power: u64,
    /// No: counted weight.
    pub no: u64,
    /// Abstain: linear power.
    pub abstain_power: u64,
    /// Abstain: counted weight.
    pub abstain: u64,
    /// Number of votes.
    pub votes: u64,
}

/// A stored proposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Id (from 0).
    pub id: u64,
    /// Proposer.
    pub proposer: PublicKey,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// The action, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<GovAction>,
    /// Quadratic weighting.
    pub quadratic: bool,
    /// Height it was created at.
    pub created_height: u64,
    /// Last height at which votes count; it resolves at the end of this height.
    pub end_height: u64,
    /// Voting power snapshotted at creation (the quorum base), tokens.
    pub total_power: u64,
    /// `active`, `passed`, `rejected`, `no_quorum`, `failed` or `cancelled`.
    pub status: String,
    /// The votes.
    pub tally: Tally,
    /// Why a passed action failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A stored vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRecord {
    /// Voter.
    pub voter: PublicKey,
    /// Choice.
    pub choice: Choice,
    /// Snapshotted power.
    pub power: u64,
    /// Counted weight.
    pub weight: u64,
    /// Height of the vote.
    pub height: u64,
}

/// Arguments of a new proposal.
#[derive(Debug, Clone, Copy)]
pub struct NewProposal<'a> {
    /// Title.
    pub title: &'a str,
    /// Description.
    pub description: &'a str,
    /// Voting period, blocks.
    pub voting_period_blocks: u64,
    /// Action.
    pub action: Option<&'a GovAction>,
    /// Quadratic weighting.
    pub quadratic: bool,
}

/// Loads a proposal. Errors: [`ContractError::UnknownProposal`].
pub fn get(st: &Overlay<'_>, id: u64) -> Result<Proposal, ContractError> {
    st.get_json(&keys::proposal(id))?
        .ok_or(ContractError::UnknownProposal { id })
}

/// Opens a proposal; returns its id. Errors: period out of bounds, an action that cannot run.
pub fn propose(
    c: &mut Call<'_>,
    proposer: &PublicKey,
    p: NewProposal<'_>,
) -> Result<u64, ContractError> {
    let g = &c.params.governance;
    if p.voting_period_blocks < g.min_voting_period_blocks
        || p.voting_period_blocks > g.max_voting_period_blocks
    {
        return Err(ContractError::VotingPeriod {
            got: p.voting_period_blocks,
            min: g.min_voting_period_blocks,
            max: g.max_voting_period_blocks,
        });
    }
    if let Some(a) = p.action {
        system::check_only(c, |probe| execute_action(probe, a, u64::MAX))?;
    }
    let id = c.get_u64(keys::PROPOSAL_NEXT)?;
    let mut total = 0u64;
    for (k, power) in c.st.scan_json::<u64>(keys::VOTING_POWER, usize::MAX)? {
        let mut who = [0u8; 32];
        who.copy_from_slice(&k[keys::VOTING_POWER.len()..]);
        total = total.saturating_add(power);
        c.st.put_json(keys::snapshot(id, &PublicKey(who)), &power)?;
    }
    let end_height = c.ctx.height.saturating_add(p.voting_period_blocks);
    let prop = Proposal {
        id,
        proposer: *proposer,
        title: p.title.to_string(),
        description: p.description.to_string(),
        action: p.action.cloned(),
        quadratic: p.quadratic,
        created_height: c.ctx.height,
        end_height,
        total_power: total,
        status: "active".into(),
        tally: Tally::default(),
        error: None,
    };
    c.st.put_json(keys::proposal(id), &prop)?;
    c.put_u64(keys::PROPOSAL_NEXT.to_vec(), id + 1)?;
    c.st.put_json(keys::proposal_queue(end_height, id), &id)?;
    c.emit(ContractEvent::ProposalCreated {
        id,
        proposer: *proposer,
        title: prop.title,
        end_height,
    });
    Ok(id)
}

fn isqrt(n: u64) -> u64 {
    let mut x = (n as f64).sqrt() as u64;
    while x.saturating_mul(x) > n {
        x -= 1;
    }
    while (x + 1).saturating_mul(x + 1) <= n {
        x += 1;
    }
    x
}

/// Casts the signer's vote. Errors: unknown proposal, closed, already voted, no power.
pub fn vote(c: &mut Call<'_>, id: u64, choice: Choice) -> Result<(), ContractError> {
    let mut p = get(&c.st, id)?;
    if p.status != "active" || c.ctx.height > p.end_height {
        return Err(ContractError::VotingClosed {
            id,
            status: p.status,
            end_height: p.end_height,
        });
    }
    let voter = c.signer;
    if c.st.get(&keys::vote(id, &voter))?.is_some() {
        return Err(ContractError::AlreadyVoted { id, voter });
    }
    let power = c.get_u64(&keys::snapshot(id, &voter))?;
    if power == 0 {
        return Err(ContractError::NoVotingPower { id, voter });
    }
    let weight = if p.quadratic { isqrt(power) } else { power };
    let t = &mut p.tally;
    let (pw, w) = match choice {
        Choice::Yes => (&mut t.yes_power, &mut t.yes),
        Choice::No => (&mut t.no_power, &mut t.no),
        Choice::Abstain => (&mut t.abstain_power, &mut t.abstain),
    };
    *pw = pw.saturating_add(power);
    *w = w.saturating_add(weight);
    t.votes += 1;
    c.st.put_json(
        keys::vote(id, &voter),
        &VoteRecord {
            voter,
            choice,
            power,
            weight,
            height: c.ctx.height,
        },
    )?;
    c.st.put_json(keys::proposal(id), &p)?;
    c.emit(ContractEvent::Voted {
        id,
        voter,
        choice,
        weight,
    });
    Ok(())
}

/// Cancels a proposal. Errors: not the proposer, votes cast, not active.
pub fn cancel(c: &mut Call<'_>, id: u64) -> Result<(), ContractError> {
    let mut p = get(&c.st, id)?;
    let reason = if p.proposer != c.signer {
        Some("only the proposer may cancel")
    } else if p.status != "active" {
        Some("it is no longer active")
    } else if p.tally.votes > 0 {
        Some("votes have been cast")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(ContractError::CannotCancel { id, reason });
    }
    p.status = "cancelled".into();
    c.st.put_json(keys::proposal(id), &p)?;
    c.st.delete(keys::proposal_queue(p.end_height, id));
    c.emit(ContractEvent::ProposalCancelled { id });
    Ok(())
}

/// Runs (or, from `propose`, checks) a passed proposal's action.
fn execute_action(c: &mut Call<'_>, a: &GovAction, id: u64) -> Result<(), ContractError> {
    let bad = |m: String| Err(ContractError::InvalidAction(m));
    match a {
        GovAction::AddValidator { validator } | GovAction::RemoveValidator { validator } => {
            if !c.ctx.round_robin {
                return bad("validator-set changes need a round-robin chain".into());
            }
            let mut set = system::latest_validators(c)?;
            let add = matches!(a, GovAction::AddValidator { .. });
            match (add, set.iter().position(|v| v == validator)) {
                (true, Some(_)) => return bad(format!("{validator} is already a validator")),
                (false, None) => return bad(format!("{validator} is not a validator")),
                (false, Some(_)) if set.len() == 1 => {
                    return bad("cannot remove the last validator".into());
                }
                (true, None) => {
                    set.push(*validator);
                    system::set_role(c, validator, Role::Validator, true)?;
                }
                (false, Some(i)) => {
                    set.remove(i);
                }
            }
            system::schedule_validators(c, set)
        }
        GovAction::GrantRole { account, role } | GovAction::RevokeRole { account, role } => {
            let grant = matches!(a, GovAction::GrantRole { .. });
            if system::has_role(&c.st, account, *role)? == grant {
                return bad(format!(
                    "{account} {} the {} role",
                    if grant {
                        "already holds"
                    } else {
                        "does not hold"
                    },
                    system::role_name(*role)
                ));
            }
            system::set_role(c, account, *role, grant)?;
            Ok(())
        }
        GovAction::SetParam { name, value } => {
            let mut params = system::params(&c.st)?;
            params.set(name, *value)?;
            c.st.put_json(keys::PARAMS.to_vec(), &params)?;
            c.emit(ContractEvent::ParamChanged {
                name: name.clone(),
                value: *value,
            });
            Ok(())
        }
        GovAction::Mint { to, amount } => tokens::mint(c, to, *amount, &format!("proposal:{id}")),
        GovAction::SetRule { rule } => qa::set_rule(c, rule),
        GovAction::SetRuleActive { name, active } => qa::set_rule_active(c, name, *active),
    }
}

/// Resolves the proposals whose voting ends at this height.
pub fn end_block(c: &mut Call<'_>) -> Result<(), ContractError> {
    let from = keys::proposal_queue(c.ctx.height, 0);
    let to = keys::proposal_queue(c.ctx.height.saturating_add(1), 0);
    let due = c.st.scan(&from, &to, usize::MAX)?;
    let g = c.params.governance.clone();
    for (k, _) in due {
        c.st.delete(k.clone());
        let mut id = [0u8; 8];
        id.copy_from_slice(&k[k.len() - 8..]);
        let mut p = get(&c.st, u64::from_be_bytes(id))?;
        let t = p.tally;
        let participation =
            u128::from(t.yes_power) + u128::from(t.no_power) + u128::from(t.abstain_power);
        let quorum = participation * 10_000 >= u128::from(g.quorum_bps) * u128::from(p.total_power)
            && t.votes > 0;
        let passed = quorum
            && u128::from(t.yes) * 10_000
                > u128::from(g.pass_threshold_bps) * (u128::from(t.yes) + u128::from(t.no));
        p.status = if !quorum {
            "no_quorum"
        } else if passed {
            "passed"
        } else {
            "rejected"
        }
        .into();
        if let (true, Some(a)) = (passed, p.action.clone()) {
            let mut run = Call::new(&c.st, c.ctx, c.params, c.signer, None);
            match execute_action(&mut run, &a, p.id) {
                Ok(()) => {
                    let (writes, events, rules_changed) = run.into_parts();
                    c.st.absorb(writes);
                    c.events.extend(events);
                    c.rules_changed |= rules_changed;
                }
                Err(ContractError::State(e)) => return Err(e.into()),
                Err(e) => {
                    p.status = "failed".into();
                    p.error = Some(e.to_string());
                }
            }
        }
        c.st.put_json(keys::proposal(p.id), &p)?;
        c.emit(ContractEvent::ProposalResolved {
            id: p.id,
            status: p.status.clone(),
            error: p.error.clone(),
        });
    }
    Ok(())
}

/// Proposals from id `from`, optionally only those with `status`, at most `limit`.
pub fn list(
    st: &Overlay<'_>,
    status: Option<&str>,
    from: u64,
    limit: usize,
) -> Result<Vec<Proposal>, StateError> {
    const PAGE: usize = 256;
    let end = prefix_end(keys::PROPOSALS);
    let mut out = Vec::new();
    let mut next = keys::proposal(from);
    loop {
        let rows = st.scan(&next, &end, PAGE)?;
        let done = rows.len() < PAGE;
        for (k, v) in rows {
            let p: Proposal =
                serde_json::from_slice(&v).map_err(|e| StateError(format!("proposal: {e}")))?;
            if status.is_none_or(|s| s == p.status) {
                out.push(p);
                if out.len() == limit {
                    return Ok(out);
                }
            }
            next = k;
            next.push(0);
        }
        if done {
            return Ok(out);
        }
    }
}

/// The votes on proposal `id`, by voter key, at most `limit`.
pub fn votes(st: &Overlay<'_>, id: u64, limit: usize) -> Result<Vec<VoteRecord>, StateError> {
    Ok(st
        .scan_json::<VoteRecord>(&keys::votes_prefix(id), limit)?
        .into_iter()
        .map(|(_, v)| v)
        .collect())
}
