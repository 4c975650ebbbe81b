//! `auditchain ingest` and `reconcile` on real logs (loghub, ../shared/data/loghub) into
//! in-process clusters: every line accounted for, reconcile clean, identical trails on every
//! node, hash-only mode keeping lines off chain, and each kind of bad input reported exactly.

use std::path::{Path, PathBuf};

use auditchain_node::ingest::parse::{Parsed, Parser};
use auditchain_node::ingest::sidecar::{Record, Status};
use auditchain_node::ingest::{Format, IngestOptions, ingest};
use auditchain_node::reconcile::reconcile;
use auditchain_rpc::AuditChainApiClient;
use auditchain_rpc::types::TrailQuery;
use auditchain_tests::{TestChain, Testnet, loghub};

/// Three validators with the default consensus timeouts and blocks of at most 1,000 events:
/// unoptimised test builds verify a proposal of several thousand events more slowly than the
/// harness's short test timeouts allow.
async fn cluster() -> Testnet {
    let mut net = Testnet::new(3, 1, |g| {
        g.limits.max_block_txs = 1_000;
        let rr = g.round_robin_mut().expect("round robin");
        rr.proposal_timeout_ms = 1_000;
        rr.vote_timeout_ms = 500;
    });
    for i in 0..3 {
        net.start_node(i).await;
    }
    net.wait_connected().await;
    net
}

fn read_sidecar(p: &Path) -> Vec<Record> {
    std::fs::read_to_string(p)
        .expect("sidecar")
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect()
}

async fn trail(
    c: &auditchain_rpc::HttpClient,
    entity: &str,
) -> Vec<auditchain_rpc::types::EventView> {
    let q = TrailQuery {
        entity: Some(entity.into()),
        ..TrailQuery::default()
    };
    auditchain_rpc::full_trail(c, q).await.expect("trail")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_loghub_samples_into_3_validators_all_accounted_and_reconciled() {
    let mut net = cluster().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let sidecar = tmp.path().join("sidecar.jsonl");
    let files: Vec<PathBuf> = ["OpenSSH", "HDFS", "HealthApp", "Zookeeper"]
        .iter()
        .map(|d| loghub(&format!("{d}_2k.log_structured.csv")))
        .collect();
    let s = ingest(IngestOptions {
        sidecar: sidecar.clone(),
        ..IngestOptions::new(
            &net.node(0).rpc_url(),
            net.writers[0].clone(),
            Format::LoghubCsv,
            files,
        )
    })
    .await
    .expect("ingest");
    // 4 headers + 8,000 records
    assert_eq!(s.lines, 8_004, "{s:?}");
    assert_eq!(s.skipped, 4);
    assert_eq!(s.submitted, 8_000);
    assert_eq!(s.finalized, 8_000);
    assert_eq!(s.unaccounted(), 0);
    assert!(s.is_clean(), "{s:?}");
    assert_eq!(s.event_types["ssh_auth_failure"], 524);

    let r = reconcile(&net.node(2).rpc_url(), &sidecar)
        .await
        .expect("reconcile");
    assert!(r.discrepancies.is_empty(), "{:?}", r.discrepancies);
    assert_eq!(r.matched, 8_000);

    for entity in ["LabSZ", "blk_-8775602795571523802"] {
        let reference = trail(&net.client(0), entity).await;
        assert!(!reference.is_empty(), "{entity} has events");
        for i in 1..3 {
            assert_eq!(
                trail(&net.client(i), entity).await,
                reference,
                "node {i} {entity}"
            );
        }
    }
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hash_only_keeps_every_line_off_chain_and_verify_record_checks_it() {
    let mut net = cluster().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let sidecar = tmp.path().join("sidecar.jsonl");
    let log = loghub("OpenSSH_2k.log");
    let s = ingest(IngestOptions {
        sidecar: sidecar.clone(),
        hash_only: true,
        ..IngestOptions::new(
            &net.node(0).rpc_url(),
            net.writers[0].clone(),
            Format::Syslog,
            vec![log.clone()],
        )
    })
    .await
    .expect("ingest");
    assert_eq!(s.finalized, 2_000, "{s:?}");
    assert!(s.is_clean());

    // no block holds data or any part of a raw line (every line names `sshd[`)
    let c = net.client(1);
    let head = c.get_finalized().await.expect("finalized").head.height;
    let mut txs = 0;
    for h in 1..=head {
        let b = c
            .get_block_by_height(h, Some(true))
            .await
            .expect("block")
            .expect("exists");
        let text = serde_json::to_string(&b).expect("json");
        assert!(!text.contains("sshd["), "block {h} holds a raw line");
        for t in b.txs.expect("full") {
            txs += 1;
            match t.body.payload {
                auditchain_primitives::tx::Payload::RecordEvent { data, .. } => {
                    assert!(data.is_none(), "hash-only event with data")
                }
                other => panic!("unexpected payload {other:?}"),
            }
        }
    }
    assert_eq!(txs, 2_000);

    // verify_record: the original line (parsed as at ingest) matches; one changed byte fails
    let records = read_sidecar(&sidecar);
    let mut parser = Parser::new(Format::Syslog, "openssh");
    for rec in records.iter().step_by(97) {
        let id = rec.tx_id.expect("id");
        let Ok(Parsed::Event(e)) = parser.parse(&rec.line) else {
            panic!("line parses")
        };
        assert!(c.verify_record(id, e.data).await.expect("verify").matches);
        let changed = rec.line.replacen("LabSZ", "LabSX", 1);
        let Ok(Parsed::Event(e)) = parser.parse(&changed) else {
            panic!("line parses")
        };
        assert!(!c.verify_record(id, e.data).await.expect("verify").matches);
    }
    let r = reconcile(&net.node(0).rpc_url(), &sidecar)
        .await
        .expect("reconcile");
    assert!(r.discrepancies.is_empty(), "{:?}", r.discrepancies);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_lines_unreachable_node_and_tampered_sidecar_are_reported() {
    let chain = TestChain::start(1, |_| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("mixed.log");
    let good = std::fs::read_to_string(loghub("OpenSSH_2k.log")).expect("log");
    let good: Vec<&str> = good.lines().take(50).collect();
    let mut text = Vec::new();
    let mut garbage_lines = Vec::new();
    for (i, l) in good.iter().enumerate() {
        text.extend_from_slice(l.as_bytes());
        text.push(b'\n');
        if i % 10 == 3 {
            text.extend_from_slice(b"\xff\xfe not utf-8 at all\n");
            text.extend_from_slice(b"random words without a timestamp\n");
            text.extend_from_slice(b"\n");
        }
    }
    // line numbers of the garbage (1-based): after good line i come 3 extra lines
    let mut n = 0;
    for i in 0..good.len() {
        n += 1;
        if i % 10 == 3 {
            garbage_lines.extend([n + 1, n + 2]);
            n += 3;
        }
    }
    std::fs::write(&input, &text).expect("write");
    let sidecar = tmp.path().join("sidecar.jsonl");
    let opts = IngestOptions {
        sidecar: sidecar.clone(),
        ..IngestOptions::new(
            &chain.node().rpc_url(),
            chain.writers[0].clone(),
            Format::Syslog,
            vec![input.clone()],
        )
    };

    // an unreachable node: a clear error, and no sidecar at all
    let err = ingest(IngestOptions {
        rpc: "http://127.0.0.1:1".into(),
        ..opts.clone()
    })
    .await
    .expect_err("unreachable");
    assert!(
        format!("{err:#}").contains("cannot reach the node"),
        "{err:#}"
    );
    assert!(!sidecar.exists(), "no sidecar for a run that never started");
    // a missing input file, a key without the writer role, a zero batch: refused up front
    let cases = [
        (
            IngestOptions {
                files: vec![tmp.path().join("absent.log")],
                ..opts.clone()
            },
            "opening",
        ),
        (
            IngestOptions {
                key: auditchain_primitives::SecretKey::generate(),
                ..opts.clone()
            },
            "writer role",
        ),
        (
            IngestOptions {
                batch: 0,
                ..opts.clone()
            },
            "--batch",
        ),
    ];
    for (o, want) in cases {
        let err = ingest(o).await.expect_err(want);
        assert!(format!("{err:#}").contains(want), "{err:#}");
    }
    assert!(!sidecar.exists(), "refused runs write no sidecar");
    // reconcile: no sidecar file, and an unreachable node
    let missing = tmp.path().join("none.jsonl");
    let err = reconcile(&chain.node().rpc_url(), &missing)
        .await
        .expect_err("no file");
    assert!(format!("{err:#}").contains("reading"), "{err:#}");
    std::fs::write(&missing, "").expect("write");
    let err = reconcile("http://127.0.0.1:1", &missing)
        .await
        .expect_err("unreachable");
    assert!(format!("{err:#}").contains("cannot reach"), "{err:#}");

    let s = ingest(opts).await.expect("ingest");
    assert_eq!(s.finalized, 50, "{s:?}");
    assert_eq!(s.skipped, 5, "blank lines");
    assert_eq!(s.unparseable.values().sum::<u64>(), 10);
    assert_eq!(s.unparseable["not UTF-8"], 5);
    assert_eq!(s.unaccounted(), 0);
    let records = read_sidecar(&sidecar);
    let mut bad: Vec<u64> = records
        .iter()
        .filter(|r| r.status == Status::Unparseable)
        .map(|r| r.line_no)
        .collect();
    bad.sort_unstable();
    assert_eq!(bad, garbage_lines);

    // tamper one record consistently (line, data.line and data_hash): only the chain can tell
    let rpc = chain.node().rpc_url();
    assert!(
        reconcile(&rpc, &sidecar)
            .await
            .expect("rc")
            .discrepancies
            .is_empty()
    );
    let mut lines: Vec<String> = std::fs::read_to_string(&sidecar)
        .expect("read")
        .lines()
        .map(String::from)
        .collect();
    let k = records
        .iter()
        .position(|r| r.status == Status::Submitted && r.line_no >= 20)
        .expect("a submitted line after line 20");
    let mut rec = records[k].clone();
    rec.line = rec.line.replace("LabSZ", "Lab5Z");
    let data = rec.data.as_mut().expect("data");
    data["line"] = serde_json::Value::String(rec.line.clone());
    rec.data_hash = Some(auditchain_primitives::tx::data_hash(data).expect("hash"));
    lines[k] = serde_json::to_string(&rec).expect("json");
    // and garble another line so it is not a record at all
    let j = k + 5;
    lines[j] = "{\"file\": broken".into();
    std::fs::write(&sidecar, lines.join("\n") + "\n").expect("write");
    let r = reconcile(&rpc, &sidecar).await.expect("reconcile");
    let named: Vec<u64> = r.discrepancies.iter().map(|d| d.sidecar_line).collect();
    assert_eq!(
        named,
        vec![k as u64 + 1, j as u64 + 1],
        "{:?}",
        r.discrepancies
    );
    assert!(
        r.discrepancies[0].reason.contains("data hash differs"),
        "{}",
        r.discrepancies[0]
    );
    let source = format!("mixed.log:{}", records[k].line_no);
    assert!(
        r.discrepancies[0].to_string().contains(&source),
        "{}",
        r.discrepancies[0]
    );
}

fn submitted_in(sidecar: &Path) -> usize {
    std::fs::read_to_string(sidecar)
        .map(|t| t.lines().filter(|l| l.contains("\"submitted\"")).count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follow_reads_appended_lines_waits_for_partial_ones_and_survives_rotation() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let chain = TestChain::start(1, |_| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("auth.log");
    let sidecar = tmp.path().join("sidecar.jsonl");
    let text = std::fs::read_to_string(loghub("OpenSSH_2k.log")).expect("log");
    let lines: Vec<&str> = text.lines().take(20).collect();
    let append = |s: &str| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open");
        f.write_all(s.as_bytes()).expect("append");
    };
    append(&(lines[..10].join("\n") + "\n"));
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(ingest(IngestOptions {
        sidecar: sidecar.clone(),
        follow: true,
        stop: Arc::clone(&stop),
        ..IngestOptions::new(
            &chain.node().rpc_url(),
            chain.writers[0].clone(),
            Format::Syslog,
            vec![log.clone()],
        )
    }));
    let sc = sidecar.clone();
    let until = |n: usize| {
        let sc = sc.clone();
        async move {
            auditchain_tests::wait_until(&format!("{n} lines submitted"), 30, async || {
                submitted_in(&sc) >= n
            })
            .await
        }
    };
    until(10).await;
    // appended lines, then half a line: the half waits for its end
    append(&(lines[10..15].join("\n") + "\n"));
    let (head, tail) = lines[15].split_at(20);
    append(head);
    until(15).await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(submitted_in(&sidecar), 15, "a partial line is not read");
    append(&format!("{tail}\n"));
    until(16).await;
    // rotation: the file is renamed away and a new one appears
    std::fs::rename(&log, tmp.path().join("auth.log.1")).expect("rotate");
    append(&(lines[16..].join("\n") + "\n"));
    until(20).await;
    stop.store(true, Ordering::Relaxed);
    let s = tokio::time::timeout(std::time::Duration::from_secs(60), task)
        .await
        .expect("ingest stops")
        .expect("task")
        .expect("ingest");
    assert_eq!(s.finalized, 20, "{s:?}");
    assert!(s.is_clean(), "{s:?}");
    let recs = read_sidecar(&sidecar);
    assert_eq!(recs[15].line, lines[15], "the partial line was read whole");
    assert_eq!(
        recs[16].line_no, 1,
        "the new file is read from its first line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_mempool_is_waited_out_not_reported_as_rejection() {
    auditchain_tests::init_logs();
    // a mempool of 150 transactions against batches of 500: most of every batch is refused
    // with 1010 at first and must be retried until blocks make room
    let chain = TestChain::start(1, |g| {
        g.limits.mempool_max_txs = 150;
        g.limits.max_block_txs = 100;
    })
    .await;
    let s = chain.ingest_openssh().await;
    assert_eq!(s.finalized, 2_000, "{s:?}");
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    assert!(s.is_clean());
    let head = chain.client.get_head().await.expect("head");
    assert!(
        head.height >= 20,
        "at most 100 events per block: {}",
        head.height
    );
}
