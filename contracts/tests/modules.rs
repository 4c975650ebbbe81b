//! Every call of every module: its success, and each failure leaving the state unchanged.

mod common;

use auditchain_contracts::{
    ContractEvent, ContractsConfig, evidence, governance, qa, sla, system, tokens,
};
use auditchain_primitives::call::{Choice, GovAction, Role, Rule};
use auditchain_primitives::tx::{MAX_SAFE_INTEGER, Payload};
use auditchain_primitives::{Hash, sha256};
use common::*;
use serde_json::json;

fn bal(c: &Chain, seed: u8) -> u64 {
    tokens::balance(&c.state, &pk(seed)).unwrap()
}

/// Asserts that `payload` from `seed` fails with a message containing `needle` and changes
/// no state at all.
fn fails(c: &mut Chain, seed: u8, payload: Payload, needle: &str) {
    let before = snapshot(c);
    let err = c.call(seed, payload).expect("the call fails");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    assert!(c.state == before, "a failed call changed state: {err}");
}

#[test]
fn tokens_transfer_mint_burn_delegate() {
    let mut c = Chain::bare();
    assert_eq!(tokens::supply(&c.state).unwrap(), 1_400);
    assert_eq!(
        c.call(
            2,
            Payload::TokenTransfer {
                to: pk(3),
                amount: 50
            }
        ),
        None
    );
    assert_eq!((bal(&c, 2), bal(&c, 3)), (250, 150));
    fails(
        &mut c,
        2,
        Payload::TokenTransfer {
            to: pk(3),
            amount: 251,
        },
        "below 251",
    );
    fails(
        &mut c,
        2,
        Payload::TokenTransfer {
            to: pk(2),
            amount: 1,
        },
        "oneself",
    );
    assert_eq!(
        c.call(
            1,
            Payload::TokenMint {
                to: pk(3),
                amount: 10,
                reason: "qa".into()
            }
        ),
        None
    );
    assert_eq!(tokens::supply(&c.state).unwrap(), 1_410);
    fails(
        &mut c,
        2,
        Payload::TokenMint {
            to: pk(2),
            amount: 10,
            reason: "me".into(),
        },
        "admin role",
    );
    fails(
        &mut c,
        1,
        Payload::TokenMint {
            to: pk(2),
            amount: MAX_SAFE_INTEGER,
            reason: "x".into(),
        },
        "supply cap",
    );
    assert_eq!(c.call(3, Payload::TokenBurn { amount: 60 }), None);
    assert_eq!(
        (bal(&c, 3), tokens::supply(&c.state).unwrap()),
        (100, 1_350)
    );
    fails(&mut c, 3, Payload::TokenBurn { amount: 101 }, "below 101");

    // delegation moves voting power, not balances
    assert_eq!(tokens::voting_power(&c.state, &pk(2)).unwrap(), 250);
    assert_eq!(c.call(2, Payload::TokenDelegate { to: Some(pk(3)) }), None);
    assert_eq!(tokens::voting_power(&c.state, &pk(2)).unwrap(), 0);
    assert_eq!(tokens::voting_power(&c.state, &pk(3)).unwrap(), 350);
    // a transfer out of a delegating account lowers its delegate's power
    assert_eq!(
        c.call(
            2,
            Payload::TokenTransfer {
                to: pk(1),
                amount: 50
            }
        ),
        None
    );
    assert_eq!(tokens::voting_power(&c.state, &pk(3)).unwrap(), 300);
    fails(
        &mut c,
        2,
        Payload::TokenDelegate { to: Some(pk(3)) },
        "already",
    );
    fails(
        &mut c,
        2,
        Payload::TokenDelegate { to: Some(pk(2)) },
        "oneself",
    );
    assert_eq!(c.call(2, Payload::TokenDelegate { to: None }), None);
    assert_eq!(tokens::voting_power(&c.state, &pk(2)).unwrap(), 200);

    let h = tokens::history(&c.overlay(), &pk(2), 0, 100).unwrap();
    let kinds: Vec<&str> = h.iter().map(|(_, e)| e.kind.as_str()).collect();
    assert_eq!(kinds, ["mint", "transfer_out", "transfer_out"]);
    assert_eq!(h[2].1.balance, 200);
}

fn propose(
    c: &mut Chain,
    seed: u8,
    period: u64,
    action: Option<GovAction>,
    quadratic: bool,
) -> Option<String> {
    c.call(
        seed,
        Payload::GovPropose {
            title: "t".into(),
            description: String::new(),
            voting_period_blocks: period,
            action,
            quadratic,
        },
    )
}

fn vote(id: u64, choice: Choice) -> Payload {
    Payload::GovVote {
        proposal: id,
        choice,
    }
}

#[test]
fn governance_passes_and_executes_with_snapshotted_weights() {
    let mut c = Chain::bare();
    let mint = GovAction::Mint {
        to: pk(3),
        amount: 5,
    };
    assert_eq!(propose(&mut c, 2, 6, Some(mint), false), None);
    let p = governance::get(&c.overlay(), 0).unwrap();
    assert_eq!(
        (p.total_power, p.end_height, p.status.as_str()),
        (1_400, 7, "active")
    );
    // moving tokens after creation changes no weight
    assert_eq!(
        c.call(
            1,
            Payload::TokenTransfer {
                to: pk(2),
                amount: 900
            }
        ),
        None
    );
    assert_eq!(c.call(2, vote(0, Choice::Yes)), None);
    let v = governance::votes(&c.overlay(), 0, 10).unwrap();
    assert_eq!(v[0].weight, 300, "the snapshot, not the 1,200 held now");
    fails(&mut c, 2, vote(0, Choice::No), "already voted");
    fails(&mut c, 5, vote(0, Choice::No), "no voting power");
    fails(&mut c, 2, vote(7, Choice::No), "unknown proposal 7");
    assert_eq!(c.height, 6);
    // height 7 is the end height: the block resolves it
    let ev = c.block(&[]);
    assert!(ev.iter().any(
        |e| matches!(&e.event, ContractEvent::ProposalResolved { status, .. } if status == "passed")
    ));
    assert_eq!(bal(&c, 3), 105, "the mint action ran");
    fails(&mut c, 1, vote(0, Choice::Yes), "not open for votes");
}

#[test]
fn governance_quorum_threshold_quadratic_and_cancel() {
    let mut c = Chain::bare();
    // 100 of 1,400 is below the 20 % quorum: nothing happens
    assert_eq!(
        propose(
            &mut c,
            3,
            1,
            Some(GovAction::Mint {
                to: pk(3),
                amount: 5
            }),
            false
        ),
        None
    );
    assert_eq!(c.call(3, vote(0, Choice::Yes)), None);
    assert_eq!(
        governance::get(&c.overlay(), 0).unwrap().status,
        "no_quorum"
    );
    assert_eq!(bal(&c, 3), 100);
    // linear: 1,000 no beats 400 yes; quadratic: √1000 = 31 no vs √300 + √100 = 17 + 10 = 27 yes
    for quadratic in [false, true] {
        assert_eq!(propose(&mut c, 2, 2, None, quadratic), None);
        let id = if quadratic { 2 } else { 1 };
        let ts = [
            c.tx(1, vote(id, Choice::No)),
            c.tx(2, vote(id, Choice::Yes)),
            c.tx(3, vote(id, Choice::Yes)),
        ];
        c.block(&ts);
        c.block(&[]);
        let p = governance::get(&c.overlay(), id).unwrap();
        assert_eq!(p.status, "rejected", "quadratic {quadratic}");
        assert_eq!(p.tally.yes, if quadratic { 27 } else { 400 });
    }
    assert_eq!(propose(&mut c, 2, 5, None, false), None);
    fails(
        &mut c,
        3,
        Payload::GovCancel { proposal: 3 },
        "only the proposer",
    );
    assert_eq!(c.call(2, Payload::GovCancel { proposal: 3 }), None);
    assert_eq!(
        governance::get(&c.overlay(), 3).unwrap().status,
        "cancelled"
    );
    fails(
        &mut c,
        2,
        Payload::GovCancel { proposal: 3 },
        "no longer active",
    );
    assert_eq!(propose(&mut c, 2, 5, None, false), None);
    assert_eq!(c.call(1, vote(4, Choice::Abstain)), None);
    fails(
        &mut c,
        2,
        Payload::GovCancel { proposal: 4 },
        "votes have been cast",
    );
}

#[test]
fn governance_rejects_invalid_actions_and_periods() {
    let mut c = Chain::bare();
    let bad = [
        (
            GovAction::SetParam {
                name: "rewards.nope".into(),
                value: 1,
            },
            "no such parameter",
        ),
        (
            GovAction::SetParam {
                name: "governance.quorum_bps".into(),
                value: 20_000,
            },
            "at most 10000",
        ),
        (
            GovAction::AddValidator { validator: pk(9) },
            "already a validator",
        ),
        (
            GovAction::RemoveValidator { validator: pk(2) },
            "not a validator",
        ),
        (
            GovAction::RemoveValidator { validator: pk(9) },
            "last validator",
        ),
        (
            GovAction::GrantRole {
                account: pk(2),
                role: Role::Writer,
            },
            "already holds",
        ),
        (
            GovAction::SetRuleActive {
                name: "nope".into(),
                active: true,
            },
            "unknown rule",
        ),
        (
            GovAction::Mint {
                to: pk(2),
                amount: MAX_SAFE_INTEGER,
            },
            "supply cap",
        ),
    ];
    for (a, needle) in bad {
        let before = snapshot(&c);
        let err = propose(&mut c, 2, 2, Some(a), false).expect("fails");
        assert!(err.contains(needle), "{err}");
        assert!(c.state == before, "{err}");
    }
    let before = snapshot(&c);
    assert!(
        propose(&mut c, 2, 0, None, false)
            .unwrap()
            .contains("outside 1–100000")
    );
    assert!(c.state == before);
}

#[test]
fn governance_changes_validators_roles_and_params() {
    let mut c = Chain::bare();
    let actions = [
        GovAction::AddValidator { validator: pk(2) },
        GovAction::GrantRole {
            account: pk(5),
            role: Role::Writer,
        },
        GovAction::SetParam {
            name: "rewards.block_reward".into(),
            value: 3,
        },
    ];
    for (id, a) in actions.into_iter().enumerate() {
        let id = id as u64;
        assert_eq!(propose(&mut c, 1, 1, Some(a), false), None);
        let resolved_at = c.height + 1;
        assert_eq!(c.call(1, vote(id, Choice::Yes)), None);
        assert_eq!(governance::get(&c.overlay(), id).unwrap().status, "passed");
        if id == 0 {
            // decided at `resolved_at`; the new set proposes from resolved_at + 2 (delay 2),
            // so it is the stored set after block resolved_at + 1
            assert_eq!(c.validators, vec![pk(9)]);
            c.block(&[]);
            assert_eq!(c.height, resolved_at + 1);
            assert_eq!(c.validators, vec![pk(9), pk(2)]);
            assert_eq!(system::validators(&c.state).unwrap(), vec![pk(9), pk(2)]);
            // the history keeps the old set for the heights it certified
            let from = resolved_at + 2;
            assert_eq!(system::validators_at(&c.state, 1).unwrap(), vec![pk(9)]);
            assert_eq!(
                system::validators_at(&c.state, from - 1).unwrap(),
                vec![pk(9)]
            );
            assert_eq!(
                system::validators_at(&c.state, from).unwrap(),
                vec![pk(9), pk(2)]
            );
            assert_eq!(system::pending_validators(&c.state).unwrap(), None);
            assert!(system::has_role(&c.state, &pk(2), Role::Validator).unwrap());
        }
    }
    assert!(system::has_role(&c.state, &pk(5), Role::Writer).unwrap());
    let p = system::params(&c.overlay()).unwrap();
    assert_eq!(p.rewards.block_reward, 3);
    let before = bal(&c, 9);
    c.block(&[]);
    assert_eq!(
        bal(&c, 9),
        before + 3,
        "the proposer gets the new block reward"
    );
}

fn brute_force(count: u32, window_ms: u64) -> Rule {
    serde_json::from_value(json!({
        "name": "brute force", "active": true,
        "conditions": {"event_type": "ssh_auth_failure",
            "threshold": {"count": count, "window_ms": window_ms, "group_by": "/ip", "time_pointer": "/time_ms"}},
        "actions": [{"type": "alert", "severity": "critical", "message": "brute force"}]
    }))
    .unwrap()
}

#[test]
fn qa_thresholds_count_per_group_within_the_window() {
    let mut c = Chain::bare();
    assert_eq!(
        c.call(
            1,
            Payload::QaSetRule {
                rule: brute_force(3, 60_000)
            }
        ),
        None
    );
    fails(
        &mut c,
        2,
        Payload::QaSetRule {
            rule: brute_force(3, 60_000),
        },
        "admin role",
    );
    fails(
        &mut c,
        1,
        Payload::QaSetRuleActive {
            name: "nope".into(),
            active: false,
        },
        "unknown rule",
    );
    let fail =
        |ip: &str, t: u64| record("ssh_auth_failure", "host", json!({"ip": ip, "time_ms": t}));
    // ip a: 3 within 60 s → 1 alert; 6 more within 60 s → 2 more; ip b: 3 spread over 3 minutes → none
    let mut txs = Vec::new();
    for t in [
        0, 10_000, 20_000, 100_000, 100_001, 100_002, 100_003, 100_004, 100_005,
    ] {
        txs.push(c.tx(2, fail("a", t)));
    }
    for t in [0, 61_000, 122_000] {
        txs.push(c.tx(2, fail("b", t)));
    }
    txs.push(c.tx(2, record("ssh_auth_failure", "host", json!({"time_ms": 1})))); // no ip: not counted
    c.block(&txs);
    let (alerts, _) = qa::alerts(&c.overlay(), &Default::default(), 0, 100).unwrap();
    let groups: Vec<_> = alerts.iter().map(|a| a.group.clone().unwrap()).collect();
    assert_eq!(groups, ["a", "a", "a"]);
    // deactivated: no more alerts
    assert_eq!(
        c.call(
            1,
            Payload::QaSetRuleActive {
                name: "brute force".into(),
                active: false
            }
        ),
        None
    );
    let more: Vec<_> = (0..3).map(|t| c.tx(2, fail("z", t))).collect();
    c.block(&more);
    assert_eq!(
        qa::alerts(&c.overlay(), &Default::default(), 0, 100)
            .unwrap()
            .0
            .len(),
        3
    );
}

#[test]
fn builtin_rules_alert_mint_and_propose() {
    let mut cfg = ContractsConfig::default();
    cfg.rewards.block_reward = 0;
    let mut c = Chain::new(cfg);
    let before = bal(&c, 2);
    let ts = [
        c.tx(
            2,
            record("batch_execution", "suite-1", json!({"success_rate": 0.75})),
        ),
        c.tx(
            2,
            record("batch_execution", "suite-2", json!({"success_rate": 0.95})),
        ),
        c.tx(
            2,
            record(
                "quality_improvement",
                "prompt-9",
                json!({"improvement": 0.2}),
            ),
        ),
        c.tx(
            3,
            record("incident", "db-1", json!({"severity": "critical"})),
        ),
    ];
    c.block(&ts);
    let (alerts, _) = qa::alerts(&c.overlay(), &Default::default(), 0, 100).unwrap();
    let rules: Vec<_> = alerts
        .iter()
        .map(|a| (a.rule.as_str(), a.entity.as_str()))
        .collect();
    assert_eq!(
        rules,
        [
            ("Quality Assurance Monitor", "suite-1"),
            ("Governance Automation", "db-1")
        ]
    );
    let props = governance::list(&c.overlay(), Some("active"), 0, 10).unwrap();
    assert_eq!(props.len(), 2);
    // 20 (reward table) + 10 (Contribution Rewards rule)
    assert_eq!(bal(&c, 2), before + 30);
}

#[test]
fn rewards_are_capped_per_window_and_proposers_paid() {
    let mut cfg = ContractsConfig::default();
    cfg.qa_rules.clear();
    cfg.rewards.cap_per_window = 40;
    cfg.rewards.window_blocks = 10;
    cfg.rewards.block_reward = 2;
    let mut c = Chain::new(cfg);
    let ts: Vec<_> = (0..5)
        .map(|i| c.tx(3, record("bug_report", &format!("b{i}"), json!({}))))
        .collect();
    c.block(&ts);
    assert_eq!(bal(&c, 3), 100 + 40, "5 × 15 capped at 40");
    assert_eq!(bal(&c, 9), 2);
    for _ in 0..9 {
        c.block(&[]);
    }
    assert_eq!(c.height, 10, "a new window");
    let t = c.tx(3, record("bug_report", "b9", json!({})));
    c.block(&[t]);
    assert_eq!(bal(&c, 3), 155);
}

#[test]
fn evidence_anchors_once_per_entity() {
    let mut c = Chain::bare();
    let file = sha256(b"report.pdf");
    let anchor = |e: &str| Payload::AnchorEvidence {
        entity_id: e.into(),
        sha256: file,
        size_bytes: 10,
        uri: None,
    };
    assert_eq!(c.call(2, anchor("case-1")), None);
    fails(&mut c, 3, anchor("case-1"), "already anchored");
    assert_eq!(c.call(3, anchor("case-2")), None);
    let all = evidence::verify(&c.overlay(), &file, 10).unwrap();
    assert_eq!(
        all.iter().map(|a| a.entity.as_str()).collect::<Vec<_>>(),
        ["case-1", "case-2"]
    );
    assert_eq!(all[0].signer, pk(2));
    assert!(
        evidence::verify(&c.overlay(), &Hash([0; 32]), 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn sla_escalates_exactly_once_and_never_when_resolved() {
    let mut c = Chain::bare();
    let hour = 3_600_000;
    let ts = [
        c.tx(
            2,
            record("complaint_created", "c-1", json!({"sla_hours": 1})),
        ),
        c.tx(
            2,
            record("complaint_created", "c-2", json!({"sla_hours": 1})),
        ),
        c.tx(
            2,
            record("complaint_created", "c-3", json!({"sla_hours": 2})),
        ),
    ];
    c.block(&ts);
    let t = c.tx(2, record("complaint_resolved", "c-2", json!({})));
    c.block_at(hour / 2, &[t]);
    let mut escalated = Vec::new();
    for _ in 0..8 {
        for e in c.block_at(hour / 2, &[]) {
            if let ContractEvent::SlaEscalated { entity, .. } = e.event {
                escalated.push((c.height, entity));
            }
        }
    }
    // c-1 due at +1 h (block 3 is at +1 h 1 s), c-3 at +2 h (block 5)
    assert_eq!(escalated, [(3, "c-1".to_string()), (5, "c-3".to_string())]);
    let o = c.overlay();
    assert_eq!(sla::status(&o, "c-2").unwrap().unwrap().status, "closed");
    assert_eq!(sla::status(&o, "c-1").unwrap().unwrap().status, "escalated");
    assert_eq!(sla::breaches(&o, 0, 10).unwrap().len(), 2);
    drop(o);
    let t = c.tx(2, record("complaint_resolved", "c-1", json!({})));
    let ev = c.block(&[t]);
    assert!(
        ev.iter()
            .any(|e| matches!(e.event, ContractEvent::SlaClosed { on_time: false, .. }))
    );
    assert_eq!(
        sla::status(&c.overlay(), "c-1").unwrap().unwrap().status,
        "closed_late"
    );
}
