//! Block execution: [`BlockExec`] runs each transaction's contract work in its own overlay
//! (dropped if the call fails), then the end-of-block work (proposal resolution, SLA
//! escalation, the block reward, validator-set changes).

use auditchain_primitives::call::{Role, Rule};
use auditchain_primitives::tx::Payload;
use auditchain_primitives::{Hash, PublicKey, Transaction};

use crate::config::{ContractsConfig, Params};
use crate::error::ContractError;
use crate::events::{ContractEvent, EventRecord};
use crate::state::{MemState, Overlay, StateError, StateRead, Writes};
use crate::{evidence, governance, keys, qa, rewards, sla, system, tokens};

/// The block being executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCtx {
    /// Its height.
    pub height: u64,
    /// Its timestamp, ms since the Unix epoch: the only clock contracts see.
    pub timestamp_ms: u64,
    /// Its proposer (receives the block reward).
    pub proposer: PublicKey,
    /// Whether the chain is round-robin (validator-set actions are allowed) rather than
    /// proof-of-work.
    pub round_robin: bool,
}

/// The context of one call: its buffered writes and events, dropped if it fails.
pub struct Call<'s> {
    /// State with this call's writes.
    pub st: Overlay<'s>,
    /// The block.
    pub ctx: &'s BlockCtx,
    /// Module parameters.
    pub params: &'s Params,
    /// The transaction's signer (the proposer for end-of-block work).
    pub signer: PublicKey,
    /// Index in the block and the transaction, if any (its id is hashed only when needed:
    /// [`Call::tx_id`]).
    pub tx: Option<(u32, &'s Transaction)>,
    /// Events emitted so far.
    pub events: Vec<EventRecord>,
    /// Set when the QA rules changed.
    pub rules_changed: bool,
}

impl<'s> Call<'s> {
    /// A call context over `base`.
    pub fn new(
        base: &'s dyn StateRead,
        ctx: &'s BlockCtx,
        params: &'s Params,
        signer: PublicKey,
        tx: Option<(u32, &'s Transaction)>,
    ) -> Self {
        Self {
            st: Overlay::new(base),
            ctx,
            params,
            signer,
            tx,
            events: Vec::new(),
            rules_changed: false,
        }
    }

    /// The id of the call's transaction, if any.
    pub fn tx_id(&self) -> Option<Hash> {
        self.tx.map(|(_, t)| t.id())
    }

    /// Ends a call that succeeded: its writes, its events, and whether it changed the QA rules.
    pub fn into_parts(self) -> (Writes, Vec<EventRecord>, bool) {
        (self.st.into_writes(), self.events, self.rules_changed)
    }

    /// Records an event.
    pub fn emit(&mut self, event: ContractEvent) {
        self.events.push(EventRecord {
            tx: self.tx.map(|(i, _)| i),
            event,
        });
    }

    /// The u64 at `key` (0 if absent).
    pub fn get_u64(&self, key: &[u8]) -> Result<u64, StateError> {
        Ok(self.st.get_json::<u64>(key)?.unwrap_or(0))
    }

    /// Stores a u64 at `key`; 0 deletes the key (values are never empty or zero-defaulted).
    pub fn put_u64(&mut self, key: Vec<u8>, v: u64) -> Result<(), StateError> {
        if v == 0 {
            self.st.delete(key);
            Ok(())
        } else {
            self.st.put_json(key, &v)
        }
    }

    /// Fails unless the signer holds `role`. Errors: [`ContractError::MissingRole`].
    pub fn require_role(&self, role: Role) -> Result<(), ContractError> {
        if system::has_role(&self.st, &self.signer, role)? {
            Ok(())
        } else {
            Err(ContractError::MissingRole {
                signer: self.signer,
                role: system::role_name(role),
            })
        }
    }
}

/// What executing a block produced.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockOutput {
    /// State writes, sorted by key (`None` deletes).
    pub writes: Writes,
    /// Events in execution order.
    pub events: Vec<EventRecord>,
    /// The validator set for the next height, when this block changed it.
    pub validators: Option<Vec<PublicKey>>,
}

/// Executes one block's contract work over committed state.
pub struct BlockExec<'a> {
    st: Overlay<'a>,
    ctx: BlockCtx,
    params: Params,
    rules: Vec<Rule>,
    qa_cache: qa::QaCache,
    events: Vec<EventRecord>,
}

/// The state before block 1: roles and balances of the genesis accounts, the parameters,
/// the QA rules and the validator set. `accounts` is `(key, roles, balance)`.
/// Errors: a balance sum over the supply cap, as text.
pub fn genesis_state(
    config: &ContractsConfig,
    accounts: &[(PublicKey, Vec<Role>, u64)],
    validators: &[PublicKey],
) -> Result<MemState, String> {
    let base = MemState::default();
    let ctx = BlockCtx {
        height: 0,
        timestamp_ms: 0,
        proposer: PublicKey([0; 32]),
        round_robin: true,
    };
    let params = config.params();
    let mut c = Call::new(&base, &ctx, &params, PublicKey([0; 32]), None);
    let run = |c: &mut Call<'_>| -> Result<(), ContractError> {
        c.st.put_json(keys::PARAMS.to_vec(), &params)?;
        c.st.put_json(keys::VALIDATORS.to_vec(), &validators)?;
        c.st.put_json(keys::validators_at(1), &validators)?;
        for (key, roles, balance) in accounts {
            for r in roles {
                system::set_role(c, key, *r, true)?;
            }
            if *balance > 0 {
                tokens::mint(c, key, *balance, "genesis")?;
            }
        }
        for r in &config.qa_rules {
            c.st.put_json(keys::rule(&r.name), r)?;
        }
        Ok(())
    };
    run(&mut c).map_err(|e| e.to_string())?;
    let mut out = MemState::default();
    out.apply(&c.st.into_writes());
    Ok(out)
}

impl<'a> BlockExec<'a> {
    /// Starts a block over `base` (the state after its parent). Errors: state reads.
    pub fn begin(base: &'a dyn StateRead, ctx: BlockCtx) -> Result<Self, StateError> {
        let st = Overlay::new(base);
        let params = system::params(&st)?;
        let rules = qa::active_rules(&st)?;
        Ok(Self {
            st,
            ctx,
            params,
            rules,
            qa_cache: qa::QaCache::default(),
            events: Vec::new(),
        })
    }

    /// Whether `who` holds `role` in the state so far.
    pub fn has_role(&self, who: &PublicKey, role: Role) -> Result<bool, StateError> {
        system::has_role(&self.st, who, role)
    }

    /// Runs the contract work of transaction `index` (already checked for signature, nonce
    /// and role). A failing call changes nothing and is recorded as
    /// [`ContractEvent::CallFailed`]. Errors: only state read failures.
    pub fn apply(&mut self, index: u32, tx: &Transaction) -> Result<(), StateError> {
        let body = tx.body();
        if !matches!(body.payload, Payload::RecordEvent { .. }) {
            self.qa_cache.flush(&mut self.st)?;
        }
        let mut c = Call::new(
            &self.st,
            &self.ctx,
            &self.params,
            body.signer,
            Some((index, tx)),
        );
        match dispatch(&mut c, &self.rules, &body.payload, &mut self.qa_cache) {
            Ok(()) => {
                let (writes, events, rules_changed) = c.into_parts();
                self.st.absorb(writes);
                self.events.extend(events);
                if rules_changed {
                    self.rules = qa::active_rules(&self.st)?;
                }
            }
            Err(ContractError::State(e)) => return Err(e),
            Err(e) => self.events.push(EventRecord {
                tx: Some(index),
                event: ContractEvent::CallFailed {
                    error: e.to_string(),
                },
            }),
        }
        Ok(())
    }

    /// End-of-block work, then everything the block wrote. Errors: state read failures.
    pub fn finish(mut self) -> Result<BlockOutput, StateError> {
        self.qa_cache.flush(&mut self.st)?;
        let proposer = self.ctx.proposer;
        let mut c = Call::new(&self.st, &self.ctx, &self.params, proposer, None);
        let end = (|| -> Result<(), ContractError> {
            governance::end_block(&mut c)?;
            sla::end_block(&mut c)?;
            rewards::block_reward(&mut c)
        })();
        match end {
            Ok(()) => {}
            Err(ContractError::State(e)) => return Err(e),
            // end-of-block work only fails on state errors; anything else is a bug that
            // must not stop the chain: it is recorded and the work skipped
            Err(e) => {
                c = Call::new(&self.st, &self.ctx, &self.params, proposer, None);
                c.emit(ContractEvent::CallFailed {
                    error: format!("end of block: {e}"),
                });
            }
        }
        let validators = system::advance_validator_set(&mut c)?;
        let (writes, events, _) = c.into_parts();
        self.st.absorb(writes);
        self.events.extend(events);
        Ok(BlockOutput {
            writes: self.st.into_writes(),
            events: self.events,
            validators,
        })
    }
}

fn dispatch(
    c: &mut Call<'_>,
    rules: &[Rule],
    p: &Payload,
    cache: &mut qa::QaCache,
) -> Result<(), ContractError> {
    match p {
        Payload::RecordEvent {
            event_type,
            entity_id,
            data,
            ..
        } => {
            let ev = qa::Event {
                event_type,
                entity: entity_id,
                data: data.as_ref(),
            };
            rewards::on_event(c, event_type)?;
            sla::on_event(c, &ev)?;
            qa::on_event(c, rules, &ev, cache)
        }
        Payload::AnchorEvidence {
            entity_id,
            sha256,
            size_bytes,
            uri,
        } => evidence::anchor(c, entity_id, sha256, *size_bytes, uri.as_deref()),
        Payload::TokenTransfer { to, amount } => {
            let from = c.signer;
            tokens::transfer(c, &from, to, *amount)
        }
        Payload::TokenMint { to, amount, reason } => {
            c.require_role(Role::Admin)?;
            tokens::mint(c, to, *amount, reason)
        }
        Payload::TokenBurn { amount } => {
            let from = c.signer;
            tokens::burn(c, &from, *amount)
        }
        Payload::TokenDelegate { to } => {
            let from = c.signer;
            tokens::delegate(c, &from, to.as_ref())
        }
        Payload::GovPropose {
            title,
            description,
            voting_period_blocks,
            action,
            quadratic,
        } => {
            let proposer = c.signer;
            governance::propose(
                c,
                &proposer,
                governance::NewProposal {
                    title,
                    description,
                    voting_period_blocks: *voting_period_blocks,
                    action: action.as_ref(),
                    quadratic: *quadratic,
                },
            )
            .map(|_| ())
        }
        Payload::GovVote { proposal, choice } => governance::vote(c, *proposal, *choice),
        Payload::GovCancel { proposal } => governance::cancel(c, *proposal),
        Payload::QaSetRule { rule } => {
            c.require_role(Role::Admin)?;
            qa::set_rule(c, rule)
        }
        Payload::QaSetRuleActive { name, active } => {
            c.require_role(Role::Admin)?;
            qa::set_rule_active(c, name, *active)
        }
    }
}

/// Whether `tx`'s contract call would succeed on `base` as the first transaction of a block
/// with context `ctx` (mempool admission: a clear error before the call is ever included).
/// Records and evidence anchors are checked too (re-anchoring fails). The outer error is a
/// state read failure; the inner one the call's.
pub fn dry_run(
    base: &dyn StateRead,
    ctx: BlockCtx,
    tx: &Transaction,
) -> Result<Result<(), ContractError>, StateError> {
    let b = BlockExec::begin(base, ctx)?;
    let body = tx.body();
    let mut c = Call::new(&b.st, &b.ctx, &b.params, body.signer, Some((0, tx)));
    match dispatch(&mut c, &b.rules, &body.payload, &mut qa::QaCache::default()) {
        Err(ContractError::State(e)) => Err(e),
        other => Ok(other),
    }
}
