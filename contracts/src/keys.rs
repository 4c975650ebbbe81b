//! State keys: an ASCII table name, then binary parts (32-byte keys, big-endian u64s), so
//! that byte order is the order scans need. The tables are listed in docs/contracts.md.

use auditchain_primitives::{Hash, PublicKey};

fn k(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `role/‖account` → role bit set (u8 as JSON number).
pub fn role(a: &PublicKey) -> Vec<u8> {
    k(&[b"role/", &a.0])
}
/// The module parameters ([`crate::Params`]).
pub const PARAMS: &[u8] = b"params";
/// The validator set in force for the next height.
pub const VALIDATORS: &[u8] = b"vset";
/// A scheduled validator-set change.
pub const VALIDATORS_PENDING: &[u8] = b"vset/pending";
/// Prefix of the validator-set history.
pub const VALIDATORS_AT: &[u8] = b"vset/at/";
/// `vset/at/‖from_height` → the validator set in force from that height (until the next
/// entry); genesis writes the entry for height 1.
pub fn validators_at(from_height: u64) -> Vec<u8> {
    k(&[VALIDATORS_AT, &from_height.to_be_bytes()])
}
/// `tok/bal/‖account` → balance.
pub fn balance(a: &PublicKey) -> Vec<u8> {
    k(&[b"tok/bal/", &a.0])
}
/// Total supply.
pub const SUPPLY: &[u8] = b"tok/supply";
/// Prefix of voting-power entries.
pub const VOTING_POWER: &[u8] = b"tok/vp/";
/// `tok/vp/‖account` → voting power (own balance unless delegated, plus delegated balances);
/// absent when zero.
pub fn voting_power(a: &PublicKey) -> Vec<u8> {
    k(&[VOTING_POWER, &a.0])
}
/// `tok/dg/‖account` → its delegate.
pub fn delegate(a: &PublicKey) -> Vec<u8> {
    k(&[b"tok/dg/", &a.0])
}
/// `tok/h/‖account‖seq` → history entry.
pub fn history(a: &PublicKey, seq: u64) -> Vec<u8> {
    k(&[b"tok/h/", &a.0, &seq.to_be_bytes()])
}
/// Prefix of an account's history.
pub fn history_prefix(a: &PublicKey) -> Vec<u8> {
    k(&[b"tok/h/", &a.0])
}
/// `tok/hn/‖account` → next history sequence number.
pub fn history_next(a: &PublicKey) -> Vec<u8> {
    k(&[b"tok/hn/", &a.0])
}
/// `rw/‖account` → reward paid in the current window.
pub fn reward_window(a: &PublicKey) -> Vec<u8> {
    k(&[b"rw/", &a.0])
}
/// Prefix of QA rules.
pub const RULES: &[u8] = b"qa/r/";
/// `qa/r/‖name` → rule.
pub fn rule(name: &str) -> Vec<u8> {
    k(&[RULES, name.as_bytes()])
}
/// `qa/w/‖name‖0x00‖group` → times (ms) of the events counted in the current window.
pub fn rule_window(name: &str, group: &str) -> Vec<u8> {
    k(&[b"qa/w/", name.as_bytes(), &[0], group.as_bytes()])
}
/// Prefix of alerts.
pub const ALERTS: &[u8] = b"qa/a/";
/// `qa/a/‖seq` → alert.
pub fn alert(seq: u64) -> Vec<u8> {
    k(&[ALERTS, &seq.to_be_bytes()])
}
/// Next alert sequence number.
pub const ALERT_NEXT: &[u8] = b"qa/an";
/// Next proposal id.
pub const PROPOSAL_NEXT: &[u8] = b"gov/n";
/// Prefix of proposals.
pub const PROPOSALS: &[u8] = b"gov/p/";
/// `gov/p/‖id` → proposal.
pub fn proposal(id: u64) -> Vec<u8> {
    k(&[PROPOSALS, &id.to_be_bytes()])
}
/// `gov/w/‖id‖account` → voting power snapshotted at creation.
pub fn snapshot(id: u64, a: &PublicKey) -> Vec<u8> {
    k(&[b"gov/w/", &id.to_be_bytes(), &a.0])
}
/// `gov/v/‖id‖account` → vote.
pub fn vote(id: u64, a: &PublicKey) -> Vec<u8> {
    k(&[b"gov/v/", &id.to_be_bytes(), &a.0])
}
/// Prefix of a proposal's votes.
pub fn votes_prefix(id: u64) -> Vec<u8> {
    k(&[b"gov/v/", &id.to_be_bytes()])
}
/// Prefix of the resolution queue.
pub const PROPOSAL_QUEUE: &[u8] = b"gov/q/";
/// `gov/q/‖end height‖id` → id: proposals to resolve at the end of a height.
pub fn proposal_queue(end_height: u64, id: u64) -> Vec<u8> {
    k(&[PROPOSAL_QUEUE, &end_height.to_be_bytes(), &id.to_be_bytes()])
}
/// `ev/‖sha256‖entity` → anchoring.
pub fn anchor(sha256: &Hash, entity: &str) -> Vec<u8> {
    k(&[b"ev/", &sha256.0, entity.as_bytes()])
}
/// Prefix of a file hash's anchorings.
pub fn anchor_prefix(sha256: &Hash) -> Vec<u8> {
    k(&[b"ev/", &sha256.0])
}
/// `sla/o/‖entity` → deadline.
pub fn deadline(entity: &str) -> Vec<u8> {
    k(&[b"sla/o/", entity.as_bytes()])
}
/// Prefix of the escalation queue.
pub const SLA_QUEUE: &[u8] = b"sla/q/";
/// `sla/q/‖deadline ms‖entity` → entity: open deadlines by time.
pub fn sla_queue(deadline_ms: u64, entity: &str) -> Vec<u8> {
    k(&[SLA_QUEUE, &deadline_ms.to_be_bytes(), entity.as_bytes()])
}
/// Prefix of breaches.
pub const BREACHES: &[u8] = b"sla/b/";
/// `sla/b/‖seq` → breach.
pub fn breach(seq: u64) -> Vec<u8> {
    k(&[BREACHES, &seq.to_be_bytes()])
}
/// Next breach sequence number.
pub const BREACH_NEXT: &[u8] = b"sla/bn";
