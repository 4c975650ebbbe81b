//! QA monitor rules: evaluated on every committed record, in rule-name order.
//!
//! A rule matches an event when every condition holds: event type, signer, entity prefix,
//! and each field comparison (RFC 6901 pointer into `data`; `lt le gt ge` compare numbers,
//! `eq ne` compare JSON values, `contains` finds a substring or an array element; a missing
//! field fails every operator except `ne`). With a threshold, a matching event is then
//! *counted* in its group (the value at `group_by`, as text) at its time (the number at
//! `time_pointer`, else the block time): counts older than `time − window_ms` are dropped,
//! and when `count` events remain the rule fires and the group's count restarts from zero.
//! So ≥ N events within the window fire once, 2N fire twice. Without a threshold, a matching
//! event fires the rule.
//!
//! Firing runs the actions in order: `alert` stores an [`Alert`] and emits
//! [`ContractEvent::AlertRaised`]; `mint` pays the signer through the capped reward path;
//! `create_proposal` opens a text proposal in the signer's name.

use auditchain_primitives::PublicKey;
use auditchain_primitives::call::{Action, FieldCondition, Op, Rule, Severity};
use auditchain_primitives::tx::{Data, DataReader};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ContractError;
use crate::events::ContractEvent;
use crate::runtime::Call;
use crate::state::{Overlay, StateError, StateRead, prefix_end};
use crate::{governance, keys, rewards};

/// The record a rule sees.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Event type.
    pub event_type: &'a str,
    /// Entity.
    pub entity: &'a str,
    /// Data, if on chain (parsed only if a rule reads a field of it).
    pub data: Option<&'a Data>,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Sequence number (from 0).
    pub seq: u64,
    /// The rule.
    pub rule: String,
    /// Severity.
    pub severity: Severity,
    /// Message.
    pub message: String,
    /// The triggering event's type.
    pub event_type: String,
    /// Its entity.
    pub entity: String,
    /// Its signer.
    pub signer: PublicKey,
    /// The threshold group value, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Block height.
    pub height: u64,
    /// Block time, ms.
    pub time_ms: u64,
    /// The triggering transaction's id (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<auditchain_primitives::Hash>,
}

/// Threshold windows and the alert counter of the block being executed, kept decoded between
/// consecutive records (records never fail, so nothing here needs rolling back) and written
/// to state by [`QaCache::flush`] before any other call and at the end of the block.
#[derive(Debug, Default)]
pub struct QaCache {
    windows: std::collections::BTreeMap<Vec<u8>, Vec<u64>>,
    alert_next: Option<u64>,
}

impl QaCache {
    /// Writes the cached windows (an empty window deletes its key) and alert counter.
    pub fn flush(&mut self, st: &mut Overlay<'_>) -> Result<(), StateError> {
        for (k, v) in std::mem::take(&mut self.windows) {
            if v.is_empty() {
                st.delete(k);
            } else {
                st.put_json(k, &v)?;
            }
        }
        if let Some(n) = self.alert_next.take() {
            st.put_json(keys::ALERT_NEXT.to_vec(), &n)?;
        }
        Ok(())
    }
}

/// The active rules, by name.
pub fn active_rules(st: &Overlay<'_>) -> Result<Vec<Rule>, StateError> {
    Ok(all_rules(st)?.into_iter().filter(|r| r.active).collect())
}

/// Every rule, by name.
pub fn all_rules(st: &Overlay<'_>) -> Result<Vec<Rule>, StateError> {
    Ok(st
        .scan_json::<Rule>(keys::RULES, usize::MAX)?
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

fn compare(f: &FieldCondition, v: Option<&Value>) -> bool {
    let Some(v) = v else {
        return f.op == Op::Ne;
    };
    let num = || v.as_f64().zip(f.value.as_f64());
    match f.op {
        Op::Eq => json_eq(v, &f.value),
        Op::Ne => !json_eq(v, &f.value),
        Op::Lt => num().is_some_and(|(a, b)| a < b),
        Op::Le => num().is_some_and(|(a, b)| a <= b),
        Op::Gt => num().is_some_and(|(a, b)| a > b),
        Op::Ge => num().is_some_and(|(a, b)| a >= b),
        Op::Contains => match (v, &f.value) {
            (Value::String(s), Value::String(n)) => s.contains(n.as_str()),
            (Value::Array(a), x) => a.iter().any(|e| json_eq(e, x)),
            _ => false,
        },
    }
}

/// JSON equality where numbers compare by value (1 == 1.0).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Fields of one event's data read by pointer, each pointer read once however many rules ask
/// for it, and the text scanned once for all of them ([`DataReader`]).
struct Fields<'a> {
    data: Option<DataReader<'a>>,
    read: Vec<(String, Option<Value>)>,
}

impl<'a> Fields<'a> {
    fn of(ev: &Event<'a>) -> Self {
        Fields {
            data: ev.data.map(Data::reader),
            read: Vec::new(),
        }
    }

    /// The value at RFC 6901 `pointer`, if any.
    fn get(&mut self, pointer: &str) -> Option<&Value> {
        let at = match self.read.iter().position(|(p, _)| p == pointer) {
            Some(at) => at,
            None => {
                let v = self.data.as_mut().and_then(|d| d.get(pointer));
                self.read.push((pointer.to_string(), v));
                self.read.len() - 1
            }
        };
        self.read[at].1.as_ref()
    }
}

/// Whether `rule`'s non-threshold conditions hold for `ev` signed by `signer`, reading the
/// data's fields through `fields`.
fn matches(rule: &Rule, signer: &PublicKey, ev: &Event<'_>, fields: &mut Fields<'_>) -> bool {
    let c = &rule.conditions;
    c.event_type.as_deref().is_none_or(|t| t == ev.event_type)
        && c.signer.as_ref().is_none_or(|s| s == signer)
        && c.entity_prefix
            .as_deref()
            .is_none_or(|p| ev.entity.starts_with(p))
        && c.fields.iter().all(|f| compare(f, fields.get(&f.pointer)))
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs the active `rules` on a committed record.
pub fn on_event(
    c: &mut Call<'_>,
    rules: &[Rule],
    ev: &Event<'_>,
    cache: &mut QaCache,
) -> Result<(), ContractError> {
    let signer = c.signer;
    let mut fields = Fields::of(ev);
    for rule in rules {
        if !matches(rule, &signer, ev, &mut fields) {
            continue;
        }
        let mut group = None;
        if let Some(t) = &rule.conditions.threshold {
            let g = match &t.group_by {
                None => String::new(),
                Some(p) => match fields.get(p) {
                    Some(v) => text_of(v),
                    None => continue,
                },
            };
            let time = match &t.time_pointer {
                None => c.ctx.timestamp_ms,
                Some(p) => match fields.get(p).and_then(Value::as_u64) {
                    Some(ms) => ms,
                    None => continue,
                },
            };
            let key = keys::rule_window(&rule.name, &g);
            let times = match cache.windows.entry(key) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let stored: Vec<u64> = c.st.get_json(v.key())?.unwrap_or_default();
                    v.insert(stored)
                }
            };
            let since = time.saturating_sub(t.window_ms);
            times.retain(|x| *x >= since && *x <= time);
            times.push(time);
            if times.len() < t.count as usize {
                continue;
            }
            times.clear();
            group = t.group_by.as_ref().map(|_| g);
        }
        fire(c, rule, ev, group, cache)?;
    }
    Ok(())
}

fn fire(
    c: &mut Call<'_>,
    rule: &Rule,
    ev: &Event<'_>,
    group: Option<String>,
    cache: &mut QaCache,
) -> Result<(), ContractError> {
    let signer = c.signer;
    for a in &rule.actions {
        match a {
            Action::Alert { severity, message } => {
                let seq = match cache.alert_next {
                    Some(n) => n,
                    None => c.get_u64(keys::ALERT_NEXT)?,
                };
                cache.alert_next = Some(seq + 1);
                let alert = Alert {
                    seq,
                    rule: rule.name.clone(),
                    severity: *severity,
                    message: message.clone(),
                    event_type: ev.event_type.to_string(),
                    entity: ev.entity.to_string(),
                    signer,
                    group: group.clone(),
                    height: c.ctx.height,
                    time_ms: c.ctx.timestamp_ms,
                    tx_id: c.tx_id(),
                };
                c.st.put_json(keys::alert(seq), &alert)?;
                c.emit(ContractEvent::AlertRaised {
                    seq,
                    rule: rule.name.clone(),
                    severity: *severity,
                    message: message.clone(),
                    entity: ev.entity.to_string(),
                    group: group.clone(),
                });
            }
            Action::Mint { amount } => {
                rewards::pay_capped(c, &signer, *amount, &format!("rule:{}", rule.name))?;
            }
            Action::CreateProposal { template } => {
                let title = format!("{}: {} ({})", template.title, rule.name, ev.entity);
                let title: String = title
                    .char_indices()
                    .take_while(|(i, ch)| {
                        i + ch.len_utf8() <= auditchain_primitives::call::MAX_NAME_BYTES
                    })
                    .map(|(_, ch)| ch)
                    .collect();
                let period = template.voting_period_blocks.clamp(
                    c.params.governance.min_voting_period_blocks,
                    c.params.governance.max_voting_period_blocks,
                );
                governance::propose(
                    c,
                    &signer,
                    governance::NewProposal {
                        title: &title,
                        description: &template.description,
                        voting_period_blocks: period,
                        action: None,
                        quadratic: false,
                    },
                )?;
            }
        }
    }
    Ok(())
}

/// Adds or replaces a rule (the caller checked the admin role; the rule's shape was checked
/// when the transaction was decoded).
pub fn set_rule(c: &mut Call<'_>, rule: &Rule) -> Result<(), ContractError> {
    c.st.put_json(keys::rule(&rule.name), rule)?;
    // a changed rule starts counting afresh
    let wprefix = keys::rule_window(&rule.name, "");
    for (k, _) in c.st.scan(&wprefix, &prefix_end(&wprefix), usize::MAX)? {
        c.st.delete(k);
    }
    c.rules_changed = true;
    c.emit(ContractEvent::RuleSet {
        name: rule.name.clone(),
    });
    Ok(())
}

/// Activates or deactivates a rule. Errors: [`ContractError::UnknownRule`].
pub fn set_rule_active(c: &mut Call<'_>, name: &str, active: bool) -> Result<(), ContractError> {
    let key = keys::rule(name);
    let mut r: Rule =
        c.st.get_json(&key)?
            .ok_or_else(|| ContractError::UnknownRule {
                name: name.to_string(),
            })?;
    r.active = active;
    c.st.put_json(key, &r)?;
    c.rules_changed = true;
    c.emit(ContractEvent::RuleActivated {
        name: name.to_string(),
        active,
    });
    Ok(())
}

/// A filter for [`alerts`]; every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertFilter {
    /// Rule name.
    pub rule: Option<String>,
    /// Lowest severity.
    pub min_severity: Option<Severity>,
    /// Entity.
    pub entity: Option<String>,
}

/// Alerts from sequence `from` matching `filter`, at most `limit`, and the sequence to
/// continue from (`None` when no more alerts exist). Scans at most 10,000 alerts per call.
pub fn alerts(
    st: &Overlay<'_>,
    filter: &AlertFilter,
    from: u64,
    limit: usize,
) -> Result<(Vec<Alert>, Option<u64>), StateError> {
    const SCAN: usize = 10_000;
    let rows = st.scan(&keys::alert(from), &prefix_end(keys::ALERTS), SCAN)?;
    let mut out = Vec::new();
    let mut next = None;
    let full = rows.len() == SCAN;
    for (_, v) in rows {
        let a: Alert = serde_json::from_slice(&v).map_err(|e| StateError(format!("alert: {e}")))?;
        if out.len() == limit {
            next = Some(a.seq);
            break;
        }
        let ok = filter.rule.as_ref().is_none_or(|r| *r == a.rule)
            && filter.min_severity.is_none_or(|s| a.severity >= s)
            && filter.entity.as_ref().is_none_or(|e| *e == a.entity);
        next = Some(a.seq + 1);
        if ok {
            out.push(a);
        }
    }
    if !full && out.len() < limit {
        next = None;
    }
    Ok((out, next))
}
