//! SLA escalation. An event whose type opens an SLA ([`crate::SlaRule`]) starts a deadline
//! for its entity: block time + the hours in the event's data (or the rule's default). An
//! event of the closing type for the same entity closes it. At the end of every block, each
//! open deadline at or before the block time escalates: [`ContractEvent::SlaEscalated`] is
//! emitted and a breach stored, exactly once (the deadline leaves the queue).
//!
//! *Chosen*: an opening event for an entity whose deadline is still open leaves that deadline
//! unchanged; closing an entity with no open deadline does nothing. Hours may be fractional.

use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::events::ContractEvent;
use crate::keys;
use crate::qa::Event;
use crate::runtime::Call;
use crate::state::{Overlay, StateError, StateRead};

/// Escalations handled per block at most (the rest wait for the next block).
pub const MAX_ESCALATIONS_PER_BLOCK: usize = 1_000;

/// The SLA state of an entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// Entity.
    pub entity: String,
    /// The opening event type.
    pub open_type: String,
    /// Block time it opened, ms.
    pub opened_ms: u64,
    /// Deadline, ms.
    pub deadline_ms: u64,
    /// `open`, `closed` (on time), `escalated`, or `closed_late` (closed after escalating).
    pub status: String,
    /// Block time it closed, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_ms: Option<u64>,
}

/// A stored escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breach {
    /// Sequence number.
    pub seq: u64,
    /// Entity.
    pub entity: String,
    /// Deadline missed, ms.
    pub deadline_ms: u64,
    /// Height of the block that escalated it.
    pub height: u64,
}

/// Opens or closes a deadline for a committed event.
pub fn on_event(c: &mut Call<'_>, ev: &Event<'_>) -> Result<(), ContractError> {
    let params = c.params;
    if let Some(rule) = params.sla.iter().find(|s| s.open_type == ev.event_type) {
        let key = keys::deadline(ev.entity);
        if c.st
            .get_json::<Deadline>(&key)?
            .is_some_and(|d| d.status == "open")
        {
            return Ok(());
        }
        let hours = ev
            .data
            .and_then(|d| d.pointer(&rule.hours_pointer))
            .and_then(|v| v.as_f64())
            .filter(|h| h.is_finite() && *h >= 0.0 && *h < 1e9)
            .unwrap_or(rule.default_hours as f64);
        let deadline_ms = c
            .ctx
            .timestamp_ms
            .saturating_add((hours * 3_600_000.0).round() as u64);
        c.st.put_json(
            key,
            &Deadline {
                entity: ev.entity.to_string(),
                open_type: rule.open_type.clone(),
                opened_ms: c.ctx.timestamp_ms,
                deadline_ms,
                status: "open".into(),
                closed_ms: None,
            },
        )?;
        c.st.put(keys::sla_queue(deadline_ms, ev.entity), b"1".to_vec());
        c.emit(ContractEvent::SlaOpened {
            entity: ev.entity.to_string(),
            deadline_ms,
        });
    }
    if params.sla.iter().any(|s| s.close_type == ev.event_type) {
        let key = keys::deadline(ev.entity);
        let Some(mut d) = c.st.get_json::<Deadline>(&key)? else {
            return Ok(());
        };
        let on_time = match d.status.as_str() {
            "open" => {
                c.st.delete(keys::sla_queue(d.deadline_ms, ev.entity));
                d.status = "closed".into();
                true
            }
            "escalated" => {
                d.status = "closed_late".into();
                false
            }
            _ => return Ok(()),
        };
        d.closed_ms = Some(c.ctx.timestamp_ms);
        c.st.put_json(key, &d)?;
        c.emit(ContractEvent::SlaClosed {
            entity: ev.entity.to_string(),
            on_time,
        });
    }
    Ok(())
}

/// Escalates the open deadlines at or before the block time.
pub fn end_block(c: &mut Call<'_>) -> Result<(), ContractError> {
    let end = keys::sla_queue(c.ctx.timestamp_ms.saturating_add(1), "");
    let due =
        c.st.scan(keys::SLA_QUEUE, &end, MAX_ESCALATIONS_PER_BLOCK)?;
    for (k, _) in due {
        c.st.delete(k.clone());
        let entity = String::from_utf8_lossy(&k[keys::SLA_QUEUE.len() + 8..]).into_owned();
        let key = keys::deadline(&entity);
        let Some(mut d) = c.st.get_json::<Deadline>(&key)? else {
            continue;
        };
        d.status = "escalated".into();
        c.st.put_json(key, &d)?;
        let seq = c.get_u64(keys::BREACH_NEXT)?;
        c.st.put_json(
            keys::breach(seq),
            &Breach {
                seq,
                entity: entity.clone(),
                deadline_ms: d.deadline_ms,
                height: c.ctx.height,
            },
        )?;
        c.put_u64(keys::BREACH_NEXT.to_vec(), seq + 1)?;
        c.emit(ContractEvent::SlaEscalated {
            entity,
            deadline_ms: d.deadline_ms,
        });
    }
    Ok(())
}

/// The SLA state of `entity`.
pub fn status(st: &Overlay<'_>, entity: &str) -> Result<Option<Deadline>, StateError> {
    st.get_json(&keys::deadline(entity))
}

/// Breaches from sequence `from`, at most `limit`.
pub fn breaches(st: &Overlay<'_>, from: u64, limit: usize) -> Result<Vec<Breach>, StateError> {
    st.scan(
        &keys::breach(from),
        &crate::state::prefix_end(keys::BREACHES),
        limit,
    )?
    .into_iter()
    .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| StateError(format!("breach: {e}"))))
    .collect()
}
