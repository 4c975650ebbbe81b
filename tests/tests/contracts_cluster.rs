//! Native contracts through real nodes: the QA brute-force rule on loghub's OpenSSH sample
//! against an independent count from the structured CSV, identical contract state on 4
//! validators after a mixed workload, governance end to end on 3 validators, and RPC
//! refusals of calls that would fail (error 1014, nothing changed).

use std::collections::BTreeMap;

use auditchain_primitives::call::{Choice, GovAction, Role, Rule};
use auditchain_primitives::tx::Payload;
use auditchain_primitives::{Hash, PublicKey, SecretKey, Transaction, TxBody};
use auditchain_rpc::AuditChainApiClient;
use auditchain_tests::{TestChain, Testnet, loghub, rpc_error, wait_until, wire};
use serde_json::{Value, json};

fn call(key: &SecretKey, chain: Hash, nonce: u64, payload: Payload) -> Transaction {
    Transaction::sign(
        TxBody {
            chain_id: chain,
            signer: key.public_key(),
            nonce,
            timestamp_ms: 1_700_000_000_000,
            payload,
        },
        key,
    )
    .expect("valid call")
}

fn brute_force() -> Rule {
    serde_json::from_value(json!({
        "name": "ssh brute force", "active": true,
        "conditions": {"event_type": "ssh_auth_failure",
            "threshold": {"count": 5, "window_ms": 60_000, "group_by": "/ip", "time_pointer": "/time_ms"}},
        "actions": [{"type": "alert", "severity": "critical", "message": "5 failed logins within 60 s"}]
    }))
    .expect("rule")
}

/// Alerts per IP computed from `OpenSSH_2k.log_structured.csv` alone: failed-password
/// templates (E8, E9, E10 and the "message repeated" E14), the IP from the content, the time
/// from the Date/Day/Time columns, and a sliding 60 s window that fires at 5 and restarts.
fn expected_alerts() -> BTreeMap<String, usize> {
    let mut r = csv::Reader::from_path(loghub("OpenSSH_2k.log_structured.csv")).expect("csv");
    let ip = regex::Regex::new(r"from (\d+\.\d+\.\d+\.\d+) port").expect("regex");
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut windows: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut alerts = BTreeMap::new();
    for rec in r.records() {
        let rec = rec.expect("record");
        if !["E8", "E9", "E10", "E14"].contains(&&rec[7]) {
            continue;
        }
        let addr = ip.captures(&rec[6]).expect("an IP")[1].to_string();
        // month index and day only order times within the sample (December 10–11 here)
        let m = months.iter().position(|x| *x == &rec[1]).expect("month") as u64;
        let d: u64 = rec[2].parse().expect("day");
        let hms: Vec<u64> = rec[3]
            .split(':')
            .map(|x| x.parse().expect("time"))
            .collect();
        let t = (((m * 31 + d) * 24 + hms[0]) * 60 + hms[1]) * 60_000 + hms[2] * 1000;
        let w = windows.entry(addr.clone()).or_default();
        w.retain(|x| *x + 60_000 >= t);
        w.push(t);
        if w.len() >= 5 {
            w.clear();
            *alerts.entry(addr).or_default() += 1;
        }
    }
    alerts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn brute_force_alerts_on_openssh_match_an_independent_count() {
    let chain = TestChain::start(1, |g| {
        g.contracts.qa_rules.push(brute_force());
        g.limits.max_block_txs = 1_000;
    })
    .await;
    let s = chain.ingest_openssh().await;
    assert_eq!(s.submitted, 2_000, "{s:?}");
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    let mut cursor = Some(0);
    while let Some(c) = cursor {
        let page = chain
            .client
            .qa_get_alerts(
                Some(json!({"rule": "ssh brute force"})),
                Some(c),
                Some(1000),
            )
            .await
            .expect("alerts");
        for a in page["alerts"].as_array().expect("alerts") {
            *got.entry(a["group"].as_str().expect("ip").to_string())
                .or_default() += 1;
        }
        cursor = page["next_cursor"].as_u64();
    }
    let want = expected_alerts();
    assert!(
        want.values().sum::<usize>() >= 10,
        "the sample has brute-force bursts: {want:?}"
    );
    assert_eq!(got, want, "alerts per IP (chain vs. the CSV)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_validators_hold_identical_contract_state_after_a_mixed_workload() {
    let mut net = Testnet::new(4, 2, |g| {
        let admin = g.accounts[g.accounts.len() - 2].public_key;
        for a in &mut g.accounts {
            if a.public_key == admin {
                a.roles.push(Role::Admin);
                a.balance = 1_000;
            }
        }
        g.contracts.qa_rules.push(brute_force());
    });
    for i in 0..4 {
        net.start_node(i).await;
    }
    net.wait_connected().await;
    let chain = net.genesis.hash();
    let (w0, w1) = (net.writers[0].clone(), net.writers[1].clone());
    assert!(net.genesis.has_role(&w0.public_key(), Role::Admin));
    let file = auditchain_primitives::sha256(b"evidence");
    let mut txs = vec![
        call(
            &w0,
            chain,
            0,
            Payload::TokenMint {
                to: w1.public_key(),
                amount: 500,
                reason: "seed".into(),
            },
        ),
        call(
            &w0,
            chain,
            1,
            Payload::TokenTransfer {
                to: w1.public_key(),
                amount: 100,
            },
        ),
        call(
            &w0,
            chain,
            2,
            Payload::GovPropose {
                title: "t".into(),
                description: String::new(),
                voting_period_blocks: 1_000,
                action: None,
                quadratic: false,
            },
        ),
        call(
            &w0,
            chain,
            3,
            Payload::AnchorEvidence {
                entity_id: "case".into(),
                sha256: file,
                size_bytes: 8,
                uri: None,
            },
        ),
    ];
    for n in 0..30u64 {
        let (ty, data) = match n % 3 {
            0 => ("bug_report", json!({})),
            1 => (
                "ssh_auth_failure",
                json!({"ip": "10.0.0.1", "time_ms": n * 1000}),
            ),
            _ => ("complaint_created", json!({"sla_hours": 0})),
        };
        txs.push(net.record(1, n, ty, &format!("e{n}"), data));
    }
    let c = net.client(0);
    for t in &txs {
        c.submit(wire(t)).await.expect("admitted");
    }
    let h = net.wait_all(txs.len() as u64, 0, 60).await;
    let vote = call(
        &w1,
        chain,
        30,
        Payload::GovVote {
            proposal: 0,
            choice: Choice::Yes,
        },
    );
    net.client(2)
        .submit(wire(&vote))
        .await
        .expect("vote admitted");
    let h = net.wait_all(txs.len() as u64 + 1, h + 3, 60).await;
    // every node executed every block itself (a proposal whose state_root differs from the
    // re-execution is rejected): equal headers mean equal state roots; the stored state
    // answers must agree as well
    let mut answers = Vec::new();
    for i in 0..4 {
        let c = net.client(i);
        let mut roots = Vec::new();
        for height in 1..=h {
            let b = c
                .get_block_by_height(height, Some(false))
                .await
                .expect("block")
                .expect("exists");
            roots.push(b.header.state_root);
        }
        let ans = json!({
            "roots": roots,
            "supply": c.token_get_supply().await.expect("supply"),
            "w1": c.token_get_balance(w1.public_key()).await.expect("balance"),
            "proposal": c.gov_get_proposal(0).await.expect("proposal"),
            "alerts": c.qa_get_alerts(None, None, None).await.expect("alerts"),
            "breaches": c.sla_list_breaches(None, None).await.expect("breaches"),
        });
        answers.push(ans);
    }
    for a in &answers[1..] {
        assert_eq!(a, &answers[0]);
    }
    let a = &answers[0];
    assert_eq!(a["proposal"]["tally"]["votes"], 1, "{a}");
    assert_eq!(
        a["alerts"]["alerts"].as_array().map(Vec::len),
        Some(2),
        "10 failures from one IP"
    );
    assert_eq!(
        a["breaches"]["breaches"].as_array().map(Vec::len),
        Some(10),
        "0-hour SLAs breach"
    );
    // 500 minted + 100 received + 10 bug reports × 15 (capped at 200 per window)
    let b = a["w1"]["balance"].as_u64().expect("balance");
    assert!((600 + 150..=600 + 200).contains(&b), "{b}");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn governance_grants_a_role_on_3_validators_and_a_missed_quorum_changes_nothing() {
    let mut net = Testnet::new(3, 2, |g| {
        let n = g.accounts.len();
        g.accounts[n - 2].balance = 800; // writer 0
        g.accounts[n - 1].balance = 100; // writer 1: 11 % alone, below the 20 % quorum
    });
    for i in 0..3 {
        net.start_node(i).await;
    }
    net.wait_connected().await;
    let chain = net.genesis.hash();
    let (w0, w1) = (net.writers[0].clone(), net.writers[1].clone());
    let newcomer = SecretKey::generate();
    let grant = |who: &SecretKey| GovAction::GrantRole {
        account: who.public_key(),
        role: Role::Writer,
    };
    let other = SecretKey::generate();
    let c = net.client(0);
    for (n, t) in [
        call(
            &w0,
            chain,
            0,
            Payload::GovPropose {
                title: "grant".into(),
                description: String::new(),
                voting_period_blocks: 40,
                action: Some(grant(&newcomer)),
                quadratic: false,
            },
        ),
        call(
            &w1,
            chain,
            0,
            Payload::GovPropose {
                title: "grant".into(),
                description: String::new(),
                voting_period_blocks: 40,
                action: Some(grant(&other)),
                quadratic: false,
            },
        ),
    ]
    .iter()
    .enumerate()
    {
        c.submit(wire(t))
            .await
            .unwrap_or_else(|e| panic!("proposal {n}: {e}"));
    }
    net.wait_all(2, 0, 30).await;
    let list = c
        .gov_list_proposals(Some("active".into()), None, None)
        .await
        .expect("list");
    let ids: Vec<(u64, PublicKey)> = list["proposals"]
        .as_array()
        .expect("proposals")
        .iter()
        .map(|p| {
            (
                p["id"].as_u64().expect("id"),
                serde_json::from_value(p["proposer"].clone()).expect("key"),
            )
        })
        .collect();
    assert_eq!(ids.len(), 2);
    let id_of = |k: &SecretKey| {
        ids.iter()
            .find(|(_, p)| *p == k.public_key())
            .expect("proposal")
            .0
    };
    for w in [&w0, &w1] {
        c.submit_and_wait(
            wire(&call(
                w,
                chain,
                1,
                Payload::GovVote {
                    proposal: id_of(w),
                    choice: Choice::Yes,
                },
            )),
            None,
        )
        .await
        .expect("vote");
    }
    // a second vote (after the first committed) is refused at once and changes nothing
    let twice = call(
        &w0,
        chain,
        2,
        Payload::GovVote {
            proposal: id_of(&w0),
            choice: Choice::No,
        },
    );
    let e = c.submit(wire(&twice)).await.expect_err("second vote");
    assert_eq!(rpc_error(&e).0, 1014, "{e}");
    wait_until("both proposals resolved on every node", 60, async || {
        for i in 0..3 {
            let l = net
                .client(i)
                .gov_list_proposals(Some("active".into()), None, None)
                .await
                .expect("list");
            if !l["proposals"].as_array().is_some_and(Vec::is_empty) {
                return false;
            }
        }
        true
    })
    .await;
    for i in 0..3 {
        let c = net.client(i);
        assert_eq!(
            c.gov_get_proposal(id_of(&w0)).await.expect("p")["status"],
            "passed"
        );
        assert_eq!(
            c.gov_get_proposal(id_of(&w1)).await.expect("p")["status"],
            "no_quorum"
        );
        let roles = |v: Value| v["roles"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            roles(c.token_get_balance(newcomer.public_key()).await.expect("b")),
            vec![json!("writer")]
        );
        assert!(roles(c.token_get_balance(other.public_key()).await.expect("b")).is_empty());
    }
    // the granted writer is now accepted by every node; the other is refused
    let ok = auditchain_tests::sign_record(&newcomer, chain, 0, "joined", "e", json!({}));
    net.client(1)
        .submit(wire(&ok))
        .await
        .expect("newcomer may write");
    let refused = auditchain_tests::sign_record(&other, chain, 0, "joined", "e", json!({}));
    assert_eq!(
        rpc_error(
            &net.client(2)
                .submit(wire(&refused))
                .await
                .expect_err("not a writer")
        )
        .0,
        1007
    );
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_would_fail_are_refused_with_1014_and_change_nothing() {
    let chain = TestChain::start(2, |g| {
        let n = g.accounts.len();
        g.accounts[n - 1].balance = 50;
        g.contracts.rewards.block_reward = 0;
    })
    .await;
    let id = chain.genesis.hash();
    let (w0, w1) = (&chain.writers[0], &chain.writers[1]);
    let c = &chain.client;
    let supply = c.token_get_supply().await.expect("supply");
    let cases = [
        (
            call(
                w0,
                id,
                0,
                Payload::TokenMint {
                    to: w0.public_key(),
                    amount: 5,
                    reason: "x".into(),
                },
            ),
            "admin role",
        ),
        (
            call(
                w1,
                id,
                0,
                Payload::TokenTransfer {
                    to: w0.public_key(),
                    amount: 51,
                },
            ),
            "below 51",
        ),
        (
            call(
                w1,
                id,
                0,
                Payload::GovVote {
                    proposal: 9,
                    choice: Choice::Yes,
                },
            ),
            "unknown proposal 9",
        ),
        (
            call(
                w1,
                id,
                0,
                Payload::GovPropose {
                    title: "t".into(),
                    description: String::new(),
                    voting_period_blocks: 3,
                    action: Some(GovAction::SetParam {
                        name: "nope.x".into(),
                        value: 1,
                    }),
                    quadratic: false,
                },
            ),
            "no such parameter",
        ),
        (
            call(
                w1,
                id,
                0,
                Payload::QaSetRule {
                    rule: brute_force(),
                },
            ),
            "admin role",
        ),
    ];
    for (t, needle) in &cases {
        let e = c.submit(wire(t)).await.expect_err("refused");
        let (code, msg) = rpc_error(&e);
        assert_eq!(code, 1014, "{msg}");
        assert!(msg.contains(needle), "{msg}");
    }
    let file = auditchain_primitives::sha256(b"f");
    let anchor = |n| {
        call(
            w1,
            id,
            n,
            Payload::AnchorEvidence {
                entity_id: "case".into(),
                sha256: file,
                size_bytes: 1,
                uri: None,
            },
        )
    };
    c.submit_and_wait(wire(&anchor(0)), None)
        .await
        .expect("first anchoring");
    let (code, msg) = rpc_error(&c.submit(wire(&anchor(1))).await.expect_err("re-anchoring"));
    assert_eq!(code, 1014);
    assert!(msg.contains("already anchored"), "{msg}");
    assert_eq!(c.token_get_supply().await.expect("supply"), supply);
    assert_eq!(
        c.token_get_balance(w1.public_key()).await.expect("b")["balance"],
        50
    );
    assert_eq!(
        c.evidence_verify(file).await.expect("verify").anchors.len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_queries_refuse_bad_parameters_and_report_what_is_missing() {
    let chain = TestChain::start(1, |_| {}).await;
    let c = &chain.client;
    let code = |r: Result<Value, auditchain_rpc::ClientError>| rpc_error(&r.expect_err("refused"));
    let (n, msg) = code(c.gov_list_proposals(Some("bogus".into()), None, None).await);
    assert_eq!(n, -32602);
    assert!(msg.contains("status"), "{msg}");
    let (n, msg) = code(c.qa_get_alerts(None, None, Some(0)).await);
    assert_eq!(n, -32602);
    assert!(msg.contains("limit"), "{msg}");
    assert_eq!(code(c.sla_list_breaches(None, Some(1001)).await).0, -32602);
    let (n, msg) = code(c.qa_get_alerts(Some(json!({"nope": 1})), None, None).await);
    assert_eq!(n, -32602);
    assert!(msg.contains("nope"), "{msg}");
    assert_eq!(code(c.gov_get_proposal(99).await).0, 1011);
    assert_eq!(code(c.gov_get_votes(99).await).0, 1011);
    assert_eq!(code(c.sla_get_status("nobody".into()).await).0, 1011);
    assert_eq!(code(c.chain_get_contract_events(1 << 40).await).0, 1011);
    for height in [0, 1 << 40] {
        let e = c
            .get_validators(Some(height))
            .await
            .expect_err("bad height");
        let (n, msg) = rpc_error(&e);
        assert_eq!(n, -32602);
        assert!(msg.contains("height"), "{msg}");
    }
    assert_eq!(
        c.get_validators(Some(1)).await.expect("height 1"),
        c.get_validators(None).await.expect("next block")
    );
    // and the genesis state answers
    let rules = c.qa_list_rules().await.expect("rules");
    assert_eq!(
        rules.as_array().map(Vec::len),
        Some(3),
        "the built-in rules"
    );
    assert_eq!(
        c.chain_get_contract_events(0).await.expect("genesis"),
        json!([])
    );
}

/// The issue's governance test: on a running 3-validator cluster a proposal adds a fourth
/// validator; its node, refused by the allowlist until then, joins, syncs, votes and
/// proposes; a receipt of a block the new set certified verifies against that set; a
/// restarted node re-verifies its head under the new set; the chain re-verifies from genesis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_adds_a_validator_to_a_running_3_node_cluster_and_it_proposes() {
    let mut net = Testnet::new(3, 1, |g| {
        let n = g.accounts.len();
        g.accounts[n - 1].balance = 800; // writer 0 alone meets the 20 % quorum
    });
    let cand = net.add_candidate();
    for i in 0..3 {
        net.start_node(i).await;
    }
    net.wait_connected().await;
    let chain = net.genesis.hash();
    let w0 = net.writers[0].clone();
    let new_key = net.validators[cand].public_key();
    // the candidate starts first: not a validator, so the others refuse its connections
    net.start_node(cand).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let peers = net.node(cand).net.as_ref().expect("net").peers().await;
    assert!(peers.expect("peers").is_empty(), "an unlisted node got in");
    let c = net.client(0);
    let voted_at = change_validators(
        &c,
        &w0,
        chain,
        GovAction::AddValidator { validator: new_key },
    )
    .await;
    wait_until("the new validator set is in force", 30, async || {
        c.get_validators(None).await.expect("validators").len() == 4
    })
    .await;
    assert_eq!(
        c.gov_get_proposal(0).await.expect("proposal")["status"],
        "passed"
    );
    // the block that made the change says from which height the new set certifies
    let head = c.get_head().await.expect("head").height;
    let mut from_height = None;
    for h in voted_at..=head {
        let events = c.chain_get_contract_events(h).await.expect("events");
        for e in events.as_array().expect("array") {
            if e["type"] == "validator_set_changed" {
                from_height = e["from_height"].as_u64();
            }
        }
    }
    let from_height = from_height.expect("a validator_set_changed event");
    let set: Vec<PublicKey> = c
        .get_validators(Some(from_height))
        .await
        .expect("validators")
        .iter()
        .map(|v| v.public_key)
        .collect();
    assert_eq!(set.last(), Some(&new_key), "appended in proposer order");
    assert_eq!(
        c.get_validators(Some(from_height - 1))
            .await
            .expect("old set")
            .len(),
        3
    );
    // the newcomer connects, catches up, and seals blocks that the cluster finalizes
    wait_until("the new validator proposed a final block", 90, async || {
        let head = c.get_head().await.expect("head").height;
        let from = head.saturating_sub(99).max(from_height);
        if from > head {
            return false;
        }
        let blocks = c.get_blocks(from, head).await.expect("blocks");
        blocks.iter().any(|b| b.header.proposer == new_key)
    })
    .await;
    let before = c
        .get_blocks(from_height.saturating_sub(100).max(1), from_height - 1)
        .await
        .expect("blocks");
    assert!(before.iter().all(|b| b.header.proposer != new_key));
    // certificates hold the first quorum (3 of 4) of precommits: the newcomer's appear in some
    wait_until(
        "a certificate holds the new validator's precommit",
        60,
        async || {
            let head = c.get_head().await.expect("head").height;
            let blocks = c
                .get_blocks(from_height.max(head.saturating_sub(99)), head)
                .await
                .expect("blocks");
            blocks.iter().any(|b| {
                b.certificate
                    .as_ref()
                    .is_some_and(|cert| cert.signatures.iter().any(|(k, _)| *k == new_key))
            })
        },
    )
    .await;
    // a record certified by the new set: its receipt verifies against the set at its height
    let rec = net.record(0, 2, "after_change", "e-1", json!({"n": 1}));
    let receipt = net
        .client(cand)
        .submit_and_wait(wire(&rec), None)
        .await
        .expect("recorded via the new validator");
    let at: Vec<PublicKey> = c
        .get_validators(Some(receipt.header.height))
        .await
        .expect("set")
        .iter()
        .map(|v| v.public_key)
        .collect();
    auditchain_node::verify::verify_receipt_with(&receipt, &net.genesis, &at)
        .expect("receipt verifies against the set in force");
    // the receipt carries the change, certified by the genesis set: the genesis alone suffices
    assert_eq!(receipt.validator_set_changes.len(), 1);
    assert_eq!(receipt.validator_set_changes[0].from_height(), from_height);
    assert_eq!(
        auditchain_node::verify::receipt_validators(&receipt, &net.genesis).expect("followed"),
        at
    );
    auditchain_node::verify::verify_receipt(&receipt, &net.genesis)
        .expect("receipt verifies from the genesis alone");
    let json = serde_json::to_string(&receipt).expect("json");
    let back: auditchain_primitives::Receipt = serde_json::from_str(&json).expect("parses");
    auditchain_node::verify::verify_receipt(&back, &net.genesis).expect("after a JSON round trip");
    // a forged change is refused: another set, a changed write, a certificate short of quorum
    let refused = |r: &auditchain_primitives::Receipt, what: &str| {
        let e = auditchain_node::verify::verify_receipt(r, &net.genesis)
            .expect_err("a forged change must not verify");
        assert!(e.to_string().contains(what), "{e}");
    };
    let mut forged = receipt.clone();
    let outsider = SecretKey::generate().public_key();
    forged.validator_set_changes[0].witness.validators_json =
        serde_json::to_string(&[outsider]).expect("json");
    refused(&forged, "not the value written");
    let mut forged = receipt.clone();
    forged.validator_set_changes[0].witness.writes[0].value_hash = Hash([0; 32]);
    refused(&forged, "state root");
    let mut forged = receipt.clone();
    forged.validator_set_changes[0]
        .certificate
        .signatures
        .truncate(1);
    refused(&forged, "certificate");
    let mut forged = receipt.clone();
    forged
        .validator_set_changes
        .push(forged.validator_set_changes[0].clone());
    refused(&forged, "out of order");
    // a restart re-verifies the head under the new set and rejoins
    net.stop_node(1).await;
    net.start_node(1).await;
    let target = c.get_head().await.expect("head").height + 3;
    net.wait_all(0, target, 60).await;
    net.stop_all().await;
    let store = auditchain_storage::Store::new(
        auditchain_storage::SledKv::open(&net.dirs[0].path().join("data")).expect("sled"),
    );
    let report =
        auditchain_node::verify::verify_chain(&store, &net.genesis, |_| {}).expect("valid chain");
    assert!(report.blocks > from_height);
    // a tampered witness (another set) makes verify-chain name the block that changed the set
    let (h, mut witness) = store
        .set_change_witnesses(u64::MAX)
        .expect("witnesses")
        .pop()
        .expect("one witness");
    assert_eq!(h, from_height - 1);
    witness.validators_json = serde_json::to_string(&[outsider]).expect("json");
    use auditchain_storage::{ChainStore, Kv};
    store
        .kv()
        .apply(vec![(
            auditchain_storage::keys::set_change_witness(h),
            Some(auditchain_primitives::codec::encode(&witness).expect("encodes")),
        )])
        .expect("tamper");
    let e = auditchain_node::verify::verify_chain(&store, &net.genesis, |_| {})
        .expect_err("a tampered witness is found");
    assert!(e.to_string().contains(&format!("block {h}")), "{e}");
}

/// Governance removes a validator from a running 4-node cluster: the other nodes refuse and
/// disconnect its node (the allowlist follows the validator set), the remaining 3 keep
/// finalizing, and a restarted node does not let the removed one back in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_removes_a_validator_and_its_node_is_refused() {
    let mut net = Testnet::new(4, 1, |g| {
        let n = g.accounts.len();
        g.accounts[n - 1].balance = 800; // writer 0 alone meets the 20 % quorum
    });
    for i in 0..4 {
        net.start_node(i).await;
    }
    net.wait_connected().await;
    let chain = net.genesis.hash();
    let w0 = net.writers[0].clone();
    let gone = 3;
    let gone_key = net.validators[gone].public_key();
    let c = net.client(0);
    change_validators(
        &c,
        &w0,
        chain,
        GovAction::RemoveValidator {
            validator: gone_key,
        },
    )
    .await;
    wait_until("the 3-validator set is in force", 60, async || {
        let set = c.get_validators(None).await.expect("validators");
        set.len() == 3 && set.iter().all(|v| v.public_key != gone_key)
    })
    .await;
    wait_until(
        "the removed validator's node is disconnected",
        30,
        async || peers_of(&net, gone).await.is_empty(),
    )
    .await;
    // it keeps redialling, and is still refused
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(peers_of(&net, gone).await, Vec::new());
    for i in 0..3 {
        assert_eq!(
            peers_of(&net, i).await.len(),
            2,
            "node {i} keeps the other two"
        );
    }
    // the remaining three finalize without it
    let rec = net.record(0, 2, "after_removal", "e-1", json!({"n": 1}));
    let receipt = c
        .submit_and_wait(wire(&rec), None)
        .await
        .expect("final with 3 validators");
    let cert = receipt.certificate.as_ref().expect("certificate");
    assert!(cert.signatures.iter().all(|(k, _)| *k != gone_key));
    // its receipt proves the change, so the genesis alone verifies it
    assert_eq!(receipt.validator_set_changes.len(), 1);
    let set = auditchain_node::verify::receipt_validators(&receipt, &net.genesis).expect("set");
    assert_eq!(set.len(), 3);
    assert!(!set.contains(&gone_key));
    auditchain_node::verify::verify_receipt(&receipt, &net.genesis).expect("verifies");
    // a restart does not let it back in (the start-up allowlist is the set in force)
    net.stop_node(0).await;
    net.start_node(0).await;
    wait_until("node 0 reconnects to nodes 1 and 2", 30, async || {
        peers_of(&net, 0).await.len() == 2
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(peers_of(&net, gone).await, Vec::new());
    net.stop_all().await;
}

/// The peers node `i` is connected to.
async fn peers_of(net: &Testnet, i: usize) -> Vec<auditchain_p2p::PeerInfo> {
    let n = net.node(i).net.as_ref().expect("net");
    n.peers().await.expect("peers")
}

/// Writer `w` (enough voting power alone) proposes `action` as its first transactions
/// (nonces 0 and 1, proposal 0) with a 5-block voting period and votes yes; returns the
/// height of the block holding the vote.
async fn change_validators(
    c: &auditchain_rpc::HttpClient,
    w: &SecretKey,
    chain: Hash,
    action: GovAction,
) -> u64 {
    let propose = call(
        w,
        chain,
        0,
        Payload::GovPropose {
            title: "change the validator set".into(),
            description: String::new(),
            voting_period_blocks: 5,
            action: Some(action),
            quadratic: false,
        },
    );
    c.submit_and_wait(wire(&propose), None)
        .await
        .expect("propose");
    let vote = call(
        w,
        chain,
        1,
        Payload::GovVote {
            proposal: 0,
            choice: Choice::Yes,
        },
    );
    c.submit_and_wait(wire(&vote), None)
        .await
        .expect("vote")
        .header
        .height
}
