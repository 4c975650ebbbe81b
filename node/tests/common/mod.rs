//! Helpers shared by the real-process tests: running the `auditchain` binary and reading a
//! child's output line by line.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output};
use std::sync::mpsc;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_auditchain");

/// Runs `auditchain ARGS` to completion (logs at warn).
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run auditchain")
}

/// Runs `auditchain ARGS`, which must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "auditchain {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `auditchain ARGS`, which must fail; returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "auditchain {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The lines a child (spawned with piped stdout) prints, read on a thread.
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Kills the child (SIGKILL) on drop so no test leaves a process behind.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `auditchain dev --dir DIR --rpc-addr ADDR` (port 0 picks a free one); returns the
/// guard and the RPC URL it printed. Panics if it does not start within 30 s.
pub fn start_dev(dir: &std::path::Path, addr: &str) -> (Guard, String) {
    let mut child = Command::new(BIN)
        .args(["dev", "--rpc-addr", addr, "--dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn dev");
    let rx = stdout_lines(&mut child);
    let guard = Guard(child);
    let mut rpc = None;
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(30)) {
        if let Some(u) = line.strip_prefix("rpc: ") {
            rpc = Some(u.to_string());
        }
        if line.starts_with("chain id: ") {
            break;
        }
    }
    (guard, rpc.expect("dev printed its RPC URL within 30 s"))
}

/// Waits up to `limit` for `child` to exit; `None` if it is still running.
pub fn wait_exit(
    child: &mut Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return Some(s);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
