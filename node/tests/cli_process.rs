//! Real processes on loopback: `auditchain dev`, `event submit`, `kill -9` right after the
//! submit reports committed, restart on the same data dir, the event is there and its receipt
//! verifies offline; plus CLI bad input. Every child is killed when its guard drops.

mod common;

use common::{fails, ok, start_dev};

#[test]
fn dev_submit_kill9_restart_and_verify() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("chain");
    let dirs = dir.to_str().expect("utf8");
    let key = format!("{dirs}/writer.key");
    let genesis = format!("{dirs}/genesis.json");

    let (mut node, rpc) = start_dev(&dir, "127.0.0.1:0");
    let out = ok(&[
        "event",
        "submit",
        "--rpc",
        &rpc,
        "--key",
        &key,
        "--type",
        "ssh_accepted",
        "--entity",
        "LabSZ",
        "--data",
        r#"{"user":"fztu","ip":"119.137.62.142","port":49116}"#,
    ]);
    // kill -9 right after the submit reported committed
    node.0.kill().expect("kill -9");
    node.0.wait().expect("reaped");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("submit prints JSON");
    assert_eq!(v["status"], "committed");
    let id = v["id"].as_str().expect("id").to_string();
    let height = v["height"].as_u64().expect("height");
    assert!(height >= 1);

    // restart on the same data dir: the event is there
    let (_node, rpc) = start_dev(&dir, "127.0.0.1:0");
    let got = ok(&["event", "get", "--rpc", &rpc, &id]);
    let got: serde_json::Value = serde_json::from_str(&got).expect("json");
    assert_eq!(got["status"], "committed");
    assert_eq!(got["location"]["height"].as_u64(), Some(height));
    assert_eq!(got["tx"]["body"]["payload"]["data"]["user"], "fztu");

    // hash-only submission and the trail
    let digest = "aa".repeat(32);
    ok(&[
        "event",
        "submit",
        "--rpc",
        &rpc,
        "--key",
        &key,
        "--type",
        "phi_access",
        "--entity",
        "LabSZ",
        "--data-hash",
        &digest,
    ]);
    let trail = ok(&["trail", "--rpc", &rpc, "--entity", "LabSZ", "--page", "1"]);
    assert_eq!(trail.lines().count(), 2, "{trail}");

    // receipt fetched, then verified offline against the genesis file alone
    let receipt = tmp.path().join("receipt.json");
    let rs = receipt.to_str().expect("utf8");
    ok(&["proof", "--rpc", &rpc, &id, "--out", rs]);
    let verdict = ok(&["verify-receipt", rs, "--genesis", &genesis]);
    assert!(verdict.starts_with("OK"), "{verdict}");

    // a tampered receipt fails with a non-zero exit
    let text = std::fs::read_to_string(&receipt).expect("read");
    let mut r: serde_json::Value = serde_json::from_str(&text).expect("json");
    r["history_index"] = serde_json::json!(r["history_index"].as_u64().unwrap_or(0) + 1);
    std::fs::write(&receipt, r.to_string()).expect("write");
    let err = fails(&["verify-receipt", rs, "--genesis", &genesis]);
    assert!(err.contains("does NOT verify"), "{err}");
    // a valid receipt checked against another chain's genesis fails
    let ok_receipt = tmp.path().join("ok.json");
    let ors = ok_receipt.to_str().expect("utf8");
    ok(&["proof", "--rpc", &rpc, &id, "--out", ors]);
    let other_key = tmp.path().join("other.key");
    let other_genesis = tmp.path().join("other.json");
    ok(&[
        "keys",
        "generate",
        "--out",
        other_key.to_str().expect("utf8"),
    ]);
    ok(&[
        "genesis",
        "new",
        "--validator",
        other_key.to_str().expect("utf8"),
        "--out",
        other_genesis.to_str().expect("utf8"),
    ]);
    let err = fails(&[
        "verify-receipt",
        ors,
        "--genesis",
        other_genesis.to_str().expect("utf8"),
    ]);
    assert!(err.contains("receipt is for chain"), "{err}");
    // --validators: the set in force (here the genesis set) verifies; another set does not;
    // a file that is not a list of keys is refused clearly
    let set_of = |g: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(g).expect("genesis")).expect("json");
        v["consensus"]["round_robin"]["validators"].to_string()
    };
    let set_file = tmp.path().join("set.json");
    let sf = set_file.to_str().expect("utf8");
    let with_set = [
        "verify-receipt",
        ors,
        "--genesis",
        &genesis,
        "--validators",
        sf,
    ];
    std::fs::write(&set_file, set_of(&genesis)).expect("write");
    let verdict = ok(&with_set);
    assert!(verdict.starts_with("OK"), "{verdict}");
    std::fs::write(&set_file, set_of(other_genesis.to_str().expect("utf8"))).expect("write");
    let err = fails(&with_set);
    assert!(err.contains("does NOT verify"), "{err}");
    std::fs::write(&set_file, "[\"not a key\"]").expect("write");
    let err = fails(&with_set);
    assert!(err.contains("not a JSON array of public keys"), "{err}");
    drop(_node);

    // verify-chain on the stopped node's data
    let report = ok(&["verify-chain", "--data-dir", &format!("{dirs}/data")]);
    assert!(report.starts_with("OK"), "{report}");
}

#[test]
fn cli_bad_input_is_reported_clearly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = |name: &str| tmp.path().join(name).to_str().expect("utf8").to_string();
    let v = t("v.key");
    ok(&["keys", "generate", "--out", &v]);
    // refuses to overwrite a key
    assert!(fails(&["keys", "generate", "--out", &v]).contains("exists"));
    let g = t("g.json");
    ok(&["genesis", "new", "--validator", &v, "--out", &g]);

    // a genesis with a missing field names it
    let text = std::fs::read_to_string(&g).expect("read");
    let mut j: serde_json::Value = serde_json::from_str(&text).expect("json");
    j.as_object_mut().expect("object").remove("chain_name");
    let bad = t("bad.json");
    std::fs::write(&bad, j.to_string()).expect("write");
    let err = fails(&[
        "run",
        "--genesis",
        &bad,
        "--data-dir",
        &t("d"),
        "--rpc-addr",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("missing field `chain_name`"), "{err}");
    // an invalid value names its path
    j["chain_name"] = "ok".into();
    j["accounts"][0]["roles"][0] = "king".into();
    std::fs::write(&bad, j.to_string()).expect("write");
    let err = fails(&[
        "run",
        "--genesis",
        &bad,
        "--data-dir",
        &t("d"),
        "--rpc-addr",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("accounts[0].roles[0]"), "{err}");
    // a config file with an unknown key
    let cfg = t("node.toml");
    std::fs::write(&cfg, "genesys = \"g.json\"\n").expect("write");
    let err = fails(&["run", "--config", &cfg]);
    assert!(err.contains("genesys"), "{err}");
    // a malformed key file
    std::fs::write(t("broken.key"), "{}").expect("write");
    let err = fails(&[
        "run",
        "--genesis",
        &g,
        "--data-dir",
        &t("d"),
        "--key",
        &t("broken.key"),
    ]);
    assert!(err.contains("broken.key"), "{err}");
    // an unreachable node: clear error, non-zero exit
    let err = fails(&[
        "event",
        "submit",
        "--rpc",
        "http://127.0.0.1:9",
        "--key",
        &v,
        "--type",
        "x",
        "--entity",
        "y",
        "--data",
        "{}",
    ]);
    assert!(err.contains("127.0.0.1:9"), "{err}");
    // data that is not JSON
    let err = fails(&[
        "event",
        "submit",
        "--rpc",
        "http://127.0.0.1:9",
        "--key",
        &v,
        "--type",
        "x",
        "--entity",
        "y",
        "--data",
        "{not json",
    ]);
    assert!(err.contains("--data is not valid JSON"), "{err}");
    // verify-chain on an empty dir
    let err = fails(&["verify-chain", "--data-dir", &t("empty"), "--genesis", &g]);
    assert!(err.contains("FAILED at height 0"), "{err}");
}

#[test]
fn contract_commands_and_their_bad_input() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("chain");
    let key = dir.join("writer.key").to_str().expect("utf8").to_string();
    let (_node, rpc) = start_dev(&dir, "127.0.0.1:0");
    let file = tmp.path().join("report.txt");
    std::fs::write(&file, b"evidence bytes").expect("write");
    let f = file.to_str().expect("utf8");
    let call = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend(["--rpc".into(), rpc.clone(), "--key".into(), key.clone()]);
        v
    };
    let args = call(&["evidence", "anchor", f, "--entity", "case-1"]);
    let out = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["status"], "ok", "{out}");
    assert_eq!(v["events"][0]["type"], "evidence_anchored", "{out}");
    // re-anchoring the same file for the same entity is refused by the node
    let err = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("already anchored"), "{err}");
    let verified = ok(&["evidence", "verify", f, "--rpc", &rpc]);
    assert!(verified.contains("case-1"), "{verified}");
    let other = tmp.path().join("other.txt");
    std::fs::write(&other, b"never anchored").expect("write");
    let err = fails(&[
        "evidence",
        "verify",
        other.to_str().expect("utf8"),
        "--rpc",
        &rpc,
    ]);
    assert!(err.contains("is not anchored"), "{err}");
    // a rule file with a pointer that is not RFC 6901
    let rule = tmp.path().join("rule.json");
    std::fs::write(
        &rule,
        r#"{"name":"r","active":true,"conditions":{"fields":[{"pointer":"ip","op":"eq","value":1}]},
            "actions":[{"type":"alert","severity":"info","message":"m"}]}"#,
    )
    .expect("write");
    let args = call(&["qa", "add-rule", rule.to_str().expect("utf8")]);
    let err = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("JSON pointer"), "{err}");
    let args = call(&[
        "gov",
        "propose",
        "--title",
        "t",
        "--period",
        "5",
        "--action",
        r#"{"type":"nope"}"#,
    ]);
    let err = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("--action is not a valid action"), "{err}");
    let err = fails(&["sla", "status", "nobody", "--rpc", &rpc]);
    assert!(err.contains("no SLA deadline"), "{err}");
}

/// An interrupted benchmark removes its temporary data directory: a `bench cluster` run leaves
/// hundreds of MB behind otherwise, and repeated interrupted runs filled a disk.
#[test]
fn an_interrupted_bench_removes_its_temporary_data() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let tmp = tempfile::tempdir().expect("tmp");
    let bench_dirs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(tmp.path())
            .expect("read tmp")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("auditchain-bench-"))
            })
            .collect()
    };
    let mut child = Command::new(common::BIN)
        .args(["bench", "ingest", "--events", "200000", "--repeat", "1"])
        .env("TMPDIR", tmp.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bench");
    let lines = common::stdout_lines(&mut child);
    let mut child = common::Guard(child);
    // the node is up and its data directory exists once submission starts
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("bench reached submission within 120 s");
        if line.starts_with("submitting over JSON-RPC") {
            break;
        }
    }
    assert_eq!(bench_dirs().len(), 1, "the bench's data directory exists");
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let status = common::wait_exit(&mut child.0, Duration::from_secs(60))
        .expect("bench stopped within 60 s of SIGTERM");
    assert!(!status.success(), "an interrupted bench reports failure");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(bench_dirs(), Vec::<std::path::PathBuf>::new());
}
