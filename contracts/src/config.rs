//! Module parameters: the genesis `contracts` section ([`ContractsConfig`]) and the part of it
//! kept in state and changeable by governance ([`Params`], by dotted name with
//! [`Params::set`]). Defaults follow the seed system: the reward table, the three built-in
//! QA rules, and a complaint SLA.

use std::collections::BTreeMap;

use auditchain_primitives::call::{
    Action, Conditions, FieldCondition, Op, ProposalTemplate, Rule, Severity,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::ContractError;

/// Rewards: paid in newly minted tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardParams {
    /// Tokens paid to the signer of a committed event, by event type.
    pub table: BTreeMap<String, u64>,
    /// Tokens paid to the proposer of each block (not capped).
    pub block_reward: u64,
    /// Length of a reward window, blocks (≥ 1): windows are `[k·w, (k+1)·w)`.
    pub window_blocks: u64,
    /// Most tokens one account receives from event rewards and rule mints per window.
    pub cap_per_window: u64,
}

impl Default for RewardParams {
    fn default() -> Self {
        let table = [
            ("prompt_created", 10),
            ("test_execution_success", 5),
            ("bug_report", 15),
            ("quality_improvement", 20),
            ("peer_review", 8),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self {
            table,
            block_reward: 1,
            window_blocks: 100,
            cap_per_window: 200,
        }
    }
}

/// Governance: quorum, threshold and bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GovParams {
    /// Participation needed (yes + no + abstain voting power) as basis points of the voting
    /// power snapshotted at creation.
    pub quorum_bps: u64,
    /// A proposal passes when yes-weight × 10,000 > `pass_threshold_bps` × (yes + no weight).
    pub pass_threshold_bps: u64,
    /// Shortest voting period, blocks (≥ 1).
    pub min_voting_period_blocks: u64,
    /// Longest voting period, blocks.
    pub max_voting_period_blocks: u64,
    /// A validator-set change decided at height h applies from height h + this (≥ 2).
    pub validator_change_delay_blocks: u64,
}

impl Default for GovParams {
    fn default() -> Self {
        Self {
            quorum_bps: 2_000,
            pass_threshold_bps: 5_000,
            min_voting_period_blocks: 1,
            max_voting_period_blocks: 100_000,
            validator_change_delay_blocks: 2,
        }
    }
}

/// An SLA: an event type that opens a deadline for its entity and one that closes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaRule {
    /// Event type that opens a deadline, e.g. `complaint_created`.
    pub open_type: String,
    /// Event type that closes it for the same entity, e.g. `complaint_resolved`.
    pub close_type: String,
    /// JSON pointer to the allowed time in hours in the opening event's data (a number ≥ 0).
    #[serde(default = "default_hours_pointer")]
    pub hours_pointer: String,
    /// Hours allowed when the opening event has no number there.
    pub default_hours: u64,
}

fn default_hours_pointer() -> String {
    "/sla_hours".into()
}

/// Everything of the contracts section except the QA rules, which are stored one by one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Rewards.
    pub rewards: RewardParams,
    /// Governance.
    pub governance: GovParams,
    /// SLAs, by opening event type (at most one per type).
    pub sla: Vec<SlaRule>,
}

/// The genesis `contracts` section. Every field has a default (the seed's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContractsConfig {
    /// Rewards.
    pub rewards: RewardParams,
    /// Governance.
    pub governance: GovParams,
    /// SLAs.
    pub sla: Vec<SlaRule>,
    /// QA monitor rules in force at genesis (names unique).
    pub qa_rules: Vec<Rule>,
}

impl Default for ContractsConfig {
    fn default() -> Self {
        Self {
            rewards: RewardParams::default(),
            governance: GovParams::default(),
            sla: vec![SlaRule {
                open_type: "complaint_created".into(),
                close_type: "complaint_resolved".into(),
                hours_pointer: default_hours_pointer(),
                default_hours: 72,
            }],
            qa_rules: builtin_rules(),
        }
    }
}

/// The seed system's three monitor rules.
pub fn builtin_rules() -> Vec<Rule> {
    vec![
        Rule {
            name: "Quality Assurance Monitor".into(),
            active: true,
            conditions: Conditions {
                event_type: Some("batch_execution".into()),
                fields: vec![FieldCondition {
                    pointer: "/success_rate".into(),
                    op: Op::Lt,
                    value: json!(0.8),
                }],
                ..Conditions::default()
            },
            actions: vec![
                Action::Alert {
                    severity: Severity::Warning,
                    message: "test success rate below 0.8".into(),
                },
                Action::CreateProposal {
                    template: ProposalTemplate {
                        title: "Quality review".into(),
                        description: "A batch execution fell below a success rate of 0.8.".into(),
                        voting_period_blocks: 100,
                    },
                },
            ],
        },
        Rule {
            name: "Contribution Rewards".into(),
            active: true,
            conditions: Conditions {
                event_type: Some("quality_improvement".into()),
                fields: vec![FieldCondition {
                    pointer: "/improvement".into(),
                    op: Op::Ge,
                    value: json!(0.1),
                }],
                ..Conditions::default()
            },
            actions: vec![Action::Mint { amount: 10 }],
        },
        Rule {
            name: "Governance Automation".into(),
            active: true,
            conditions: Conditions {
                fields: vec![FieldCondition {
                    pointer: "/severity".into(),
                    op: Op::Eq,
                    value: json!("critical"),
                }],
                ..Conditions::default()
            },
            actions: vec![
                Action::Alert {
                    severity: Severity::Critical,
                    message: "critical event".into(),
                },
                Action::CreateProposal {
                    template: ProposalTemplate {
                        title: "Critical event review".into(),
                        description: "A critical event was recorded.".into(),
                        voting_period_blocks: 100,
                    },
                },
            ],
        },
    ]
}

impl ContractsConfig {
    /// The parameters kept in state.
    pub fn params(&self) -> Params {
        Params {
            rewards: self.rewards.clone(),
            governance: self.governance.clone(),
            sla: self.sla.clone(),
        }
    }

    /// Checks the section: parameter ranges, SLA types unique, rules valid and uniquely named.
    /// Errors: a message naming the field (`contracts.…`).
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.params()
            .validate()
            .map_err(|(f, r)| (format!("contracts.{f}"), r))?;
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.qa_rules.iter().enumerate() {
            let f = format!("contracts.qa_rules[{i}]");
            r.validate(&f).map_err(|e| (f.clone(), e.to_string()))?;
            if !names.insert(&r.name) {
                return Err((f, format!("duplicate rule name {:?}", r.name)));
            }
        }
        Ok(())
    }
}

impl Params {
    /// Checks parameter ranges. Errors: `(field, reason)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |f: &str, r: &str| Err((f.to_string(), r.to_string()));
        let g = &self.governance;
        if self.rewards.window_blocks == 0 {
            return err("rewards.window_blocks", "must be at least 1");
        }
        if g.quorum_bps > 10_000 || g.pass_threshold_bps > 10_000 {
            return err(
                "governance",
                "quorum_bps and pass_threshold_bps are at most 10000",
            );
        }
        if g.min_voting_period_blocks == 0
            || g.min_voting_period_blocks > g.max_voting_period_blocks
        {
            return err(
                "governance.min_voting_period_blocks",
                "must be 1–max_voting_period_blocks",
            );
        }
        // ≥ 2: a node learns of a change when the deciding block commits, before it starts
        // the height after next
        if g.validator_change_delay_blocks < 2 {
            return err(
                "governance.validator_change_delay_blocks",
                "must be at least 2",
            );
        }
        let mut types = std::collections::BTreeSet::new();
        for (i, s) in self.sla.iter().enumerate() {
            if !types.insert(&s.open_type) || s.open_type == s.close_type {
                return err(
                    &format!("sla[{i}]"),
                    "open_type must be unique and differ from close_type",
                );
            }
            if auditchain_primitives::call::check_pointer("hours_pointer", &s.hours_pointer)
                .is_err()
            {
                return err(
                    &format!("sla[{i}].hours_pointer"),
                    "not an RFC 6901 pointer",
                );
            }
        }
        Ok(())
    }

    /// Sets parameter `name` (docs/contracts.md lists the names) to `value`, checking the
    /// result. Errors: [`ContractError::Param`] for an unknown name or a value out of range
    /// (`self` is unchanged then).
    pub fn set(&mut self, name: &str, value: u64) -> Result<(), ContractError> {
        let mut next = self.clone();
        let unknown = || ContractError::Param {
            name: name.to_string(),
            reason: "no such parameter".into(),
        };
        let (module, rest) = name.split_once('.').ok_or_else(unknown)?;
        match (module, rest) {
            ("rewards", "block_reward") => next.rewards.block_reward = value,
            ("rewards", "window_blocks") => next.rewards.window_blocks = value,
            ("rewards", "cap_per_window") => next.rewards.cap_per_window = value,
            ("rewards", t) if t.starts_with("table.") => {
                let ty = &t["table.".len()..];
                if ty.is_empty() {
                    return Err(unknown());
                }
                if value == 0 {
                    next.rewards.table.remove(ty);
                } else {
                    next.rewards.table.insert(ty.to_string(), value);
                }
            }
            ("governance", "quorum_bps") => next.governance.quorum_bps = value,
            ("governance", "pass_threshold_bps") => next.governance.pass_threshold_bps = value,
            ("governance", "min_voting_period_blocks") => {
                next.governance.min_voting_period_blocks = value
            }
            ("governance", "max_voting_period_blocks") => {
                next.governance.max_voting_period_blocks = value
            }
            ("governance", "validator_change_delay_blocks") => {
                next.governance.validator_change_delay_blocks = value
            }
            ("sla", t) => {
                let (ty, field) = t.rsplit_once('.').ok_or_else(unknown)?;
                let rule = next
                    .sla
                    .iter_mut()
                    .find(|s| s.open_type == ty && field == "default_hours")
                    .ok_or_else(unknown)?;
                rule.default_hours = value;
            }
            _ => return Err(unknown()),
        }
        next.validate()
            .map_err(|(_, reason)| ContractError::Param {
                name: name.to_string(),
                reason,
            })?;
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_params_are_set_by_name() {
        let c = ContractsConfig::default();
        assert!(c.validate().is_ok());
        let mut p = c.params();
        p.set("rewards.block_reward", 7).unwrap();
        assert_eq!(p.rewards.block_reward, 7);
        p.set("rewards.table.bug_report", 0).unwrap();
        assert!(!p.rewards.table.contains_key("bug_report"));
        p.set("sla.complaint_created.default_hours", 5).unwrap();
        assert_eq!(p.sla[0].default_hours, 5);
        let before = p.clone();
        assert!(p.set("rewards.nope", 1).is_err());
        assert!(p.set("governance.quorum_bps", 10_001).is_err());
        assert!(p.set("rewards.window_blocks", 0).is_err());
        assert!(
            p.set("governance.validator_change_delay_blocks", 1)
                .is_err()
        );
        assert_eq!(p, before, "a failed set changes nothing");
    }
}
