//! Real processes: `auditchain demo` end to end, and `auditchain ingest` surviving its node
//! being killed (SIGKILL) and restarted mid-run: every line ends finalized, `reconcile` then
//! finds nothing wrong, and `verify-chain` passes on the data dir. Every child is killed when
//! its guard drops.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, ok, start_dev, wait_exit};

fn loghub(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/loghub")
        .join(name)
}

#[test]
fn demo_runs_end_to_end_on_the_bundled_sample() {
    let out = ok(&["demo"]);
    for expected in [
        "started 3 validators",
        "read 2000 lines: 2000 submitted, 2000 finalized, 0 unparseable, 0 rejected",
        "all 2000 sidecar records final and matching",
        "identical on all 3 nodes",
        "verified offline against the genesis",
        "forged position is rejected",
        "demo finished",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

fn submitted_in(sidecar: &Path) -> usize {
    std::fs::read_to_string(sidecar)
        .map(|t| t.lines().filter(|l| l.contains("\"submitted\"")).count())
        .unwrap_or(0)
}

#[test]
fn ingest_survives_its_node_killed_and_restarted_mid_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("chain");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let rpc = format!("http://{addr}");
    let (node, _) = start_dev(&dir, &addr);
    let sidecar = tmp.path().join("sidecar.jsonl");
    let key = dir.join("writer.key");
    let mut ingest = Command::new(BIN)
        .args(["ingest", "--rpc", &rpc, "--format", "loghub-csv", "--json"])
        .args(["--batch", "200", "--inflight", "1", "--retry-secs", "60"])
        .arg("--key")
        .arg(&key)
        .arg("--sidecar")
        .arg(&sidecar)
        .args(
            ["OpenSSH", "HDFS", "HealthApp", "Zookeeper"]
                .map(|d| loghub(&format!("{d}_2k.log_structured.csv"))),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ingest");
    // kill -9 the node once part of the input is in, then bring it back on the same port
    let deadline = Instant::now() + Duration::from_secs(60);
    while submitted_in(&sidecar) < 1_000 {
        assert!(Instant::now() < deadline, "ingest made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(node);
    let at_kill = submitted_in(&sidecar);
    assert!(at_kill < 8_000, "the kill came after the whole input");
    std::thread::sleep(Duration::from_millis(1_500));
    let (_node, _) = start_dev(&dir, &addr);

    let Some(status) = wait_exit(&mut ingest, Duration::from_secs(240)) else {
        let _ = ingest.kill();
        panic!("ingest did not finish within 240 s");
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut ingest.stdout.take().expect("stdout"), &mut out)
        .expect("read");
    assert!(status.success(), "ingest failed: {out}");
    let s: serde_json::Value = serde_json::from_str(&out).expect("JSON summary");
    assert_eq!(s["lines"], 8_004, "{s}");
    assert_eq!(s["finalized"], 8_000, "{s}");
    assert_eq!(s["not_finalized"], 0, "{s}");
    assert_eq!(s["not_submitted"], 0, "{s}");
    let out = ok(&["reconcile", "--rpc", &rpc, sidecar.to_str().expect("utf8")]);
    assert!(
        out.contains("8000 records final and matching, 0 discrepancies"),
        "{out}"
    );
    // the data dir that went through the kill re-verifies block by block (transaction log
    // included)
    drop(_node);
    let data = dir.join("data");
    let report = ok(&["verify-chain", "--data-dir", data.to_str().expect("utf8")]);
    assert!(report.starts_with("OK"), "{report}");
}
