//! Real processes: `auditchain testnet init` (3 validators, free loopback ports) and `testnet
//! run`; an event submitted through node 0 is final and its receipt, fetched from node 1,
//! verifies offline; SIGTERM stops the testnet and every node process is gone.

use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{BIN, ok, stdout_lines, wait_exit};

fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn testnet_init_run_submit_read_elsewhere_and_stop_cleanly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("tn");
    let d = dir.to_str().expect("utf-8 path");
    ok(&[
        "testnet",
        "init",
        "--nodes",
        "3",
        "--out",
        d,
        "--rpc-port",
        "0",
        "--p2p-port",
        "0",
    ]);
    // init refuses to overwrite
    let again = Command::new(BIN)
        .args(["testnet", "init", "--nodes", "3", "--out", d])
        .output()
        .expect("run");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let mut child = Command::new(BIN)
        .args(["testnet", "run", "--dir", d])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn testnet run");
    let rx = stdout_lines(&mut child);
    let mut urls = Vec::new();
    let mut pids = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        // "nodeN: RPC http://… (pid P, log …)"
        if let Some(rest) = line.split_once(": RPC ").map(|(_, r)| r) {
            let (url, tail) = rest.split_once(" (pid ").expect("pid");
            urls.push(url.to_string());
            pids.push(
                tail.split(',')
                    .next()
                    .expect("pid")
                    .parse::<u32>()
                    .expect("pid"),
            );
        }
        if line.contains("running; Ctrl-C stops it") {
            break;
        }
    }
    if urls.len() != 3 {
        let _ = child.kill();
        panic!("testnet run printed {} RPC URLs", urls.len());
    }

    let writer = dir.join("writer.key");
    let out = ok(&[
        "event",
        "submit",
        "--rpc",
        &urls[0],
        "--key",
        writer.to_str().expect("utf-8"),
        "--type",
        "ssh_accepted",
        "--entity",
        "LabSZ",
        "--data",
        r#"{"user":"fztu"}"#,
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["status"], "committed");
    let id = v["id"].as_str().expect("id").to_string();
    let receipt = tmp.path().join("receipt.json");
    ok(&[
        "proof",
        &id,
        "--rpc",
        &urls[1],
        "--out",
        receipt.to_str().expect("utf-8"),
    ]);
    let verified = ok(&[
        "verify-receipt",
        receipt.to_str().expect("utf-8"),
        "--genesis",
        dir.join("genesis.json").to_str().expect("utf-8"),
    ]);
    assert!(verified.starts_with("OK"), "{verified}");

    // SIGTERM: the testnet stops every node and exits
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let Some(status) = wait_exit(&mut child, Duration::from_secs(30)) else {
        let _ = child.kill();
        for p in &pids {
            let _ = Command::new("kill")
                .args(["-KILL", &p.to_string()])
                .status();
        }
        panic!("testnet run did not stop within 30 s");
    };
    assert!(status.success(), "testnet run exit status {status}");
    for p in pids {
        assert!(!alive(p), "node process {p} left behind");
    }
}
