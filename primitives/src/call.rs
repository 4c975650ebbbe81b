//! The argument types of native contract calls (the `token_*`, `gov_*` and `qa_*` payload
//! kinds of [`crate::tx::Payload`]) and their stateless validation. What the calls do is the
//! `auditchain-contracts` crate's business; this module only fixes their wire format (JSON,
//! inside the signed body) and the rules that need no chain state.
//!
//! Enums are tagged with `type` in snake_case, like the payload itself. Amounts are whole
//! tokens (u64, at most 2^53 − 1 like every integer in a body). Basis points (`bps`) are
//! 1/10,000.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bytes::PublicKey;
use crate::tx::TxError;

/// Longest rule name, proposal title or alert message, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest proposal description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;
/// Most field conditions or actions in one rule.
pub const MAX_RULE_ITEMS: usize = 16;

/// A role an account holds: part of the chain state (set in genesis, changed by governance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May administer the chain: mint tokens, add and change QA rules.
    Admin,
    /// May submit audit events, evidence and contract calls.
    Writer,
    /// Is in, or may join, the validator set.
    Validator,
}

impl Role {
    /// The role's bit in a stored role set.
    pub fn bit(self) -> u8 {
        match self {
            Role::Admin => 1,
            Role::Writer => 2,
            Role::Validator => 4,
        }
    }
}

/// A governance vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// For the proposal.
    Yes,
    /// Against the proposal.
    No,
    /// Counts towards quorum only.
    Abstain,
}

/// What a passed proposal does, executed automatically when its voting period ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum GovAction {
    /// Appends a validator to the round-robin validator set (effective from the height given
    /// in docs/contracts.md: resolution height + `governance.validator_change_delay_blocks`).
    AddValidator {
        /// The validator's key (also its network identity).
        validator: PublicKey,
    },
    /// Removes a validator from the validator set (same effective height rule).
    RemoveValidator {
        /// The validator's key.
        validator: PublicKey,
    },
    /// Grants a role.
    GrantRole {
        /// The account.
        account: PublicKey,
        /// The role.
        role: Role,
    },
    /// Revokes a role.
    RevokeRole {
        /// The account.
        account: PublicKey,
        /// The role.
        role: Role,
    },
    /// Sets a numeric module parameter, named `module.name` (docs/contracts.md lists them).
    SetParam {
        /// The parameter, e.g. `rewards.block_reward`.
        name: String,
        /// Its new value.
        value: u64,
    },
    /// Mints tokens.
    Mint {
        /// Receiver.
        to: PublicKey,
        /// Tokens.
        amount: u64,
    },
    /// Adds or replaces (by name) a QA rule.
    SetRule {
        /// The rule.
        rule: Rule,
    },
    /// Activates or deactivates a QA rule.
    SetRuleActive {
        /// Rule name.
        name: String,
        /// New state.
        active: bool,
    },
}

/// A comparison operator of a rule condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// JSON equality.
    Eq,
    /// JSON inequality (also true when the field is missing).
    Ne,
    /// Numeric `<`.
    Lt,
    /// Numeric `≤`.
    Le,
    /// Numeric `>`.
    Gt,
    /// Numeric `≥`.
    Ge,
    /// Substring of a string, or element of an array.
    Contains,
}

/// A comparison on one field of an event's `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    /// RFC 6901 JSON pointer into `data`, e.g. `/success_rate`.
    pub pointer: String,
    /// The operator.
    pub op: Op,
    /// The operand: a number for `lt le gt ge`, a string for `contains` on strings.
    pub value: Value,
}

/// "At least `count` matching events within `window_ms`", counted per group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Events needed (≥ 1).
    pub count: u32,
    /// Window length, ms (≥ 1).
    pub window_ms: u64,
    /// Pointer to the field events are grouped by (e.g. `/ip`); one group when absent.
    /// Events without the field do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    /// Pointer to the event's own time in ms (e.g. `/time_ms`); the block timestamp when
    /// absent. Events without a numeric time there do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_pointer: Option<String>,
}

/// When a rule fires. Every given condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// The event type, if restricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The signer, if restricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<PublicKey>,
    /// A prefix the entity id must start with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_prefix: Option<String>,
    /// Comparisons on data fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldCondition>,
    /// A threshold within a window, evaluated after the other conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
}

/// Alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// Needs attention.
    Warning,
    /// Needs action now.
    Critical,
}

/// A proposal a rule creates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalTemplate {
    /// Title (the rule name and entity are appended).
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Voting period, blocks.
    pub voting_period_blocks: u64,
}

/// What a rule does when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Emits an alert (stored, queryable, pushed to subscribers).
    Alert {
        /// Severity.
        severity: Severity,
        /// Message.
        message: String,
    },
    /// Mints tokens to the event's signer (counted against the reward cap).
    Mint {
        /// Tokens.
        amount: u64,
    },
    /// Opens a governance proposal (without an action) in the signer's name.
    CreateProposal {
        /// The proposal.
        template: ProposalTemplate,
    },
}

/// A QA monitor rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name, 1–128 bytes, no control characters.
    pub name: String,
    /// Whether the rule is evaluated.
    pub active: bool,
    /// When it fires.
    pub conditions: Conditions,
    /// What it does (1–16 actions).
    pub actions: Vec<Action>,
}

fn invalid(field: &str, reason: impl Into<String>) -> TxError {
    TxError::InvalidField {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks a text field: 1–`max` bytes (or 0–`max` if `may_be_empty`), no control characters.
pub fn check_text(field: &str, s: &str, max: usize, may_be_empty: bool) -> Result<(), TxError> {
    if (!may_be_empty && s.is_empty()) || s.len() > max {
        return Err(invalid(field, format!("must be 1–{max} bytes")));
    }
    if s.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Checks RFC 6901 syntax: empty, or `/`-separated tokens where `~` is followed by `0` or `1`.
pub fn check_pointer(field: &str, p: &str) -> Result<(), TxError> {
    if !p.is_empty() && !p.starts_with('/') {
        return Err(invalid(
            field,
            format!("{p:?} is not an RFC 6901 JSON pointer (must start with `/`)"),
        ));
    }
    let b = p.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'~' && !matches!(b.get(i + 1), Some(b'0' | b'1')) {
            return Err(invalid(
                field,
                format!("{p:?}: `~` must be followed by 0 or 1 (RFC 6901)"),
            ));
        }
    }
    Ok(())
}

fn check_amount(field: &str, v: u64) -> Result<(), TxError> {
    if v == 0 || v > crate::tx::MAX_SAFE_INTEGER {
        return Err(invalid(field, "must be 1–2^53−1 tokens"));
    }
    Ok(())
}

impl Rule {
    /// Checks the rule's shape: name, pointers (RFC 6901), operand types, threshold and
    /// actions. `field` prefixes error paths. Errors: [`TxError::InvalidField`].
    pub fn validate(&self, field: &str) -> Result<(), TxError> {
        check_text(&format!("{field}.name"), &self.name, MAX_NAME_BYTES, false)?;
        let c = &self.conditions;
        if let Some(p) = &c.entity_prefix {
            check_text(
                &format!("{field}.conditions.entity_prefix"),
                p,
                crate::tx::MAX_ENTITY_ID_BYTES,
                false,
            )?;
        }
        if c.fields.len() > MAX_RULE_ITEMS {
            return Err(invalid(
                &format!("{field}.conditions.fields"),
                format!("at most {MAX_RULE_ITEMS} conditions"),
            ));
        }
        for (i, f) in c.fields.iter().enumerate() {
            let path = format!("{field}.conditions.fields[{i}]");
            check_pointer(&format!("{path}.pointer"), &f.pointer)?;
            let ok = match f.op {
                Op::Lt | Op::Le | Op::Gt | Op::Ge => f.value.is_number(),
                Op::Contains => !f.value.is_null(),
                Op::Eq | Op::Ne => true,
            };
            if !ok {
                return Err(invalid(
                    &format!("{path}.value"),
                    format!(
                        "operator {:?} needs a number (lt le gt ge) or a non-null value (contains)",
                        f.op
                    ),
                ));
            }
        }
        if let Some(t) = &c.threshold {
            let path = format!("{field}.conditions.threshold");
            if t.count == 0 || t.window_ms == 0 || t.window_ms > crate::tx::MAX_SAFE_INTEGER {
                return Err(invalid(&path, "count and window_ms must be at least 1"));
            }
            for (name, p) in [("group_by", &t.group_by), ("time_pointer", &t.time_pointer)] {
                if let Some(p) = p {
                    check_pointer(&format!("{path}.{name}"), p)?;
                }
            }
        }
        if self.actions.is_empty() || self.actions.len() > MAX_RULE_ITEMS {
            return Err(invalid(
                &format!("{field}.actions"),
                format!("1–{MAX_RULE_ITEMS} actions"),
            ));
        }
        for (i, a) in self.actions.iter().enumerate() {
            let path = format!("{field}.actions[{i}]");
            match a {
                Action::Alert { message, .. } => {
                    check_text(&format!("{path}.message"), message, MAX_NAME_BYTES, false)?
                }
                Action::Mint { amount } => check_amount(&format!("{path}.amount"), *amount)?,
                Action::CreateProposal { template } => {
                    check_text(
                        &format!("{path}.template.title"),
                        &template.title,
                        MAX_NAME_BYTES,
                        false,
                    )?;
                    check_text(
                        &format!("{path}.template.description"),
                        &template.description,
                        MAX_DESCRIPTION_BYTES,
                        true,
                    )?;
                }
            }
        }
        Ok(())
    }
}

impl GovAction {
    /// Checks the action's shape (amounts, parameter name syntax, the embedded rule).
    /// Whether it can be executed (a known parameter, a validator not yet in the set) is
    /// checked against state by the governance module. Errors: [`TxError::InvalidField`].
    pub fn validate(&self, field: &str) -> Result<(), TxError> {
        match self {
            GovAction::SetParam { name, value } => {
                check_text(&format!("{field}.name"), name, MAX_NAME_BYTES, false)?;
                if *value > crate::tx::MAX_SAFE_INTEGER {
                    return Err(invalid(&format!("{field}.value"), "must be at most 2^53−1"));
                }
                Ok(())
            }
            GovAction::Mint { amount, .. } => check_amount(&format!("{field}.amount"), *amount),
            GovAction::SetRule { rule } => rule.validate(&format!("{field}.rule")),
            GovAction::SetRuleActive { name, .. } => {
                check_text(&format!("{field}.name"), name, MAX_NAME_BYTES, false)
            }
            GovAction::AddValidator { .. }
            | GovAction::RemoveValidator { .. }
            | GovAction::GrantRole { .. }
            | GovAction::RevokeRole { .. } => Ok(()),
        }
    }
}

/// Checks a token amount (1–2^53−1). Errors: [`TxError::InvalidField`] naming `field`.
pub fn validate_amount(field: &str, v: u64) -> Result<(), TxError> {
    check_amount(field, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> Result<Rule, String> {
        let r: Rule = serde_json::from_str(json).map_err(|e| e.to_string())?;
        r.validate("rule").map_err(|e| e.to_string())?;
        Ok(r)
    }

    #[test]
    fn rules_are_checked() {
        let ok = r#"{"name":"brute force","active":true,
            "conditions":{"event_type":"ssh_auth_failure",
              "threshold":{"count":5,"window_ms":60000,"group_by":"/ip","time_pointer":"/time_ms"}},
            "actions":[{"type":"alert","severity":"critical","message":"brute force"}]}"#;
        assert!(rule(ok).is_ok());
        let bad_ptr = ok.replace("\"/ip\"", "\"ip\"");
        assert!(rule(&bad_ptr).unwrap_err().contains("JSON pointer"));
        let bad_tilde = ok.replace("\"/ip\"", "\"/a~2\"");
        assert!(rule(&bad_tilde).unwrap_err().contains("~"));
        let bad_op = r#"{"name":"x","active":true,"conditions":{"fields":[{"pointer":"/a","op":"between","value":1}]},
            "actions":[{"type":"mint","amount":1}]}"#;
        assert!(
            rule(bad_op)
                .unwrap_err()
                .contains("unknown variant `between`")
        );
        let bad_operand = bad_op
            .replace("between", "lt")
            .replace("\"value\":1", "\"value\":\"x\"");
        assert!(rule(&bad_operand).unwrap_err().contains("needs a number"));
        let no_actions = ok.replace(
            r#"[{"type":"alert","severity":"critical","message":"brute force"}]"#,
            "[]",
        );
        assert!(rule(&no_actions).unwrap_err().contains("actions"));
        let zero = ok.replace("\"count\":5", "\"count\":0");
        assert!(rule(&zero).is_err());
    }

    #[test]
    fn pointers_follow_rfc6901() {
        for p in ["", "/", "/a/b", "/a~0b", "/a~1b", "/0"] {
            assert!(check_pointer("p", p).is_ok(), "{p}");
        }
        for p in ["a", "/a~", "/a~x"] {
            assert!(check_pointer("p", p).is_err(), "{p}");
        }
    }

    #[test]
    fn actions_are_checked() {
        assert!(
            GovAction::Mint {
                to: PublicKey([1; 32]),
                amount: 0
            }
            .validate("a")
            .is_err()
        );
        assert!(
            GovAction::SetParam {
                name: "x".into(),
                value: 1 << 60
            }
            .validate("a")
            .is_err()
        );
    }
}
