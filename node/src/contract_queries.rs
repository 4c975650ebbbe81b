//! Reads of native contract state for the RPC API (`token_*`, `gov_*`, `qa_*`, `sla_*`,
//! `chain_getContractEvents`) and the notifications of `contract_subscribeEvents`. Every read
//! sees the state after the head block.

use auditchain_contracts::{Overlay, StateError, evidence, governance, qa, sla, system, tokens};
use auditchain_primitives::tx::Payload;
use auditchain_rpc::RpcError;
use auditchain_rpc::types::ContractQuery;
use auditchain_storage::ChainStore;
use serde::Serialize;
use serde_json::{Value, json};

use crate::execute::StoreState;

fn state_err(e: StateError) -> RpcError {
    RpcError::Unavailable(e.to_string())
}

fn to_json<T: Serialize>(v: &T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::Unavailable(e.to_string()))
}

/// Answers one contract query. Errors: not found, bad parameters, storage.
pub fn contract_query(store: &dyn ChainStore, q: ContractQuery) -> Result<Value, RpcError> {
    let base = StoreState(store);
    let st = Overlay::new(&base);
    match q {
        ContractQuery::Balance(a) => Ok(json!({
            "account": a,
            "balance": tokens::balance(&st, &a).map_err(state_err)?,
            "voting_power": tokens::voting_power(&st, &a).map_err(state_err)?,
            "delegate": tokens::delegate_of(&st, &a).map_err(state_err)?,
            "roles": system::roles(&st, &a).map_err(state_err)?,
        })),
        ContractQuery::Supply => Ok(json!({ "supply": tokens::supply(&st).map_err(state_err)? })),
        ContractQuery::History(a, cursor, limit) => {
            let rows = tokens::history(&st, &a, cursor, limit + 1).map_err(state_err)?;
            let next = rows.get(limit).map(|(seq, _)| *seq);
            let entries: Vec<Value> = rows
                .into_iter()
                .take(limit)
                .map(|(seq, e)| {
                    let mut v = to_json(&e)?;
                    v["seq"] = json!(seq);
                    Ok(v)
                })
                .collect::<Result<_, RpcError>>()?;
            Ok(json!({ "entries": entries, "next_cursor": next }))
        }
        ContractQuery::Proposal(id) => match governance::get(&st, id) {
            Ok(p) => to_json(&p),
            Err(auditchain_contracts::ContractError::State(e)) => Err(state_err(e)),
            Err(e) => Err(RpcError::NotFound(e.to_string())),
        },
        ContractQuery::Proposals(status, cursor, limit) => {
            const STATUSES: [&str; 6] = [
                "active",
                "passed",
                "rejected",
                "no_quorum",
                "failed",
                "cancelled",
            ];
            if let Some(s) = &status
                && !STATUSES.contains(&s.as_str())
            {
                return Err(RpcError::params(
                    "status",
                    format!("must be one of {}", STATUSES.join(", ")),
                ));
            }
            let mut list =
                governance::list(&st, status.as_deref(), cursor, limit + 1).map_err(state_err)?;
            let next = (list.len() > limit).then(|| list[limit].id);
            list.truncate(limit);
            Ok(json!({ "proposals": to_json(&list)?, "next_cursor": next }))
        }
        ContractQuery::Votes(id) => {
            if let Err(e) = governance::get(&st, id) {
                return Err(RpcError::NotFound(e.to_string()));
            }
            to_json(&governance::votes(&st, id, usize::MAX).map_err(state_err)?)
        }
        ContractQuery::Rules => to_json(&qa::all_rules(&st).map_err(state_err)?),
        ContractQuery::Alerts(filter, cursor, limit) => {
            let filter: qa::AlertFilter = if filter.is_null() {
                qa::AlertFilter::default()
            } else {
                serde_json::from_value(filter)
                    .map_err(|e| RpcError::params("filter", e.to_string()))?
            };
            let (alerts, next) = qa::alerts(&st, &filter, cursor, limit).map_err(state_err)?;
            Ok(json!({ "alerts": to_json(&alerts)?, "next_cursor": next }))
        }
        ContractQuery::SlaStatus(entity) => match sla::status(&st, &entity).map_err(state_err)? {
            Some(d) => to_json(&d),
            None => Err(RpcError::NotFound(format!(
                "entity {entity:?} has no SLA deadline"
            ))),
        },
        ContractQuery::Breaches(cursor, limit) => {
            let mut b = sla::breaches(&st, cursor, limit + 1).map_err(state_err)?;
            let next = (b.len() > limit).then(|| b[limit].seq);
            b.truncate(limit);
            Ok(json!({ "breaches": to_json(&b)?, "next_cursor": next }))
        }
        ContractQuery::Events(height) => match store.contract_events(height) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                .map_err(|e| RpcError::Unavailable(format!("stored events of {height}: {e}"))),
            Ok(None) => match store.head_height() {
                Ok(Some(h)) if height <= h => Ok(json!([])),
                Ok(_) => Err(RpcError::NotFound(format!("block {height}"))),
                Err(e) => Err(RpcError::Unavailable(e.to_string())),
            },
            Err(e) => Err(RpcError::Unavailable(e.to_string())),
        },
    }
}

/// Every anchoring of a file hash, from contract state.
pub fn anchorings(
    store: &dyn ChainStore,
    sha256: &auditchain_primitives::Hash,
) -> Result<Vec<evidence::Anchoring>, RpcError> {
    let base = StoreState(store);
    evidence::verify(&Overlay::new(&base), sha256, 10_000).map_err(state_err)
}

/// The notifications of the block at `height`: its contract events, then one
/// `audit_event_recorded` per committed record; each carries `height`.
pub fn block_notifications(store: &dyn ChainStore, height: u64) -> Result<Vec<Value>, RpcError> {
    let mut out = Vec::new();
    if let Value::Array(events) = contract_query(store, ContractQuery::Events(height))? {
        for mut e in events {
            e["height"] = json!(height);
            out.push(e);
        }
    }
    let block = store
        .block(height)
        .map_err(|e| RpcError::Unavailable(e.to_string()))?
        .ok_or_else(|| RpcError::NotFound(format!("block {height}")))?;
    for (i, tx) in block.txs.iter().enumerate() {
        if let Payload::RecordEvent {
            event_type,
            entity_id,
            ..
        } = &tx.body().payload
        {
            out.push(json!({
                "type": "audit_event_recorded",
                "height": height,
                "tx": i,
                "tx_id": tx.id(),
                "signer": tx.signer(),
                "event_type": event_type,
                "entity_id": entity_id,
            }));
        }
    }
    Ok(out)
}
