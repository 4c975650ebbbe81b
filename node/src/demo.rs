//! `auditchain demo`: the main job on an embedded default. Starts a local chain in a temporary
//! directory, submits sample audit events in batches over JSON-RPC, waits for them to commit,
//! prints a summary, fetches one receipt and verifies it offline against the genesis, and stops.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use auditchain_rpc::types::TxParam;
use auditchain_rpc::{AuditChainApiClient, RpcConfig};
use serde_json::json;

use crate::cli::{dev_chain, sign_record};
use crate::node::{Node, NodeOptions};
use crate::verify::verify_receipt;

/// Sample events: (event type, entity, data) in the shape sshd audit events take.
fn sample(i: usize) -> (&'static str, String, serde_json::Value) {
    let users = ["root", "admin", "oracle", "test", "git"];
    let ips = [
        "173.234.31.186",
        "112.95.230.3",
        "187.141.143.180",
        "5.36.59.76",
    ];
    let host = format!("host-{}", i % 3);
    match i % 4 {
        0 => (
            "ssh_auth_failure",
            host,
            json!({"ip": ips[i % 4], "user": users[i % 5], "port": 22_000 + i}),
        ),
        1 => (
            "ssh_invalid_user",
            host,
            json!({"ip": ips[(i + 1) % 4], "user": users[(i + 2) % 5]}),
        ),
        2 => (
            "ssh_accepted",
            host,
            json!({"ip": "10.0.0.8", "user": "deploy", "method": "publickey"}),
        ),
        _ => (
            "ssh_disconnect",
            host,
            json!({"ip": ips[i % 4], "reason": "Bye Bye"}),
        ),
    }
}

/// Runs the demo with `events` sample events. Errors: any step failing.
pub async fn run(events: usize) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("auditchain-demo-")
        .tempdir()?;
    let dc = dev_chain(dir.path(), 100)?;
    let node = Node::start(NodeOptions {
        genesis: dc.genesis.clone(),
        data_dir: Some(dc.data_dir.clone()),
        key: Some(dc.validator.clone()),
        rpc: RpcConfig {
            addr: ([127, 0, 0, 1], 0).into(),
            ..RpcConfig::default()
        },
        p2p: None,
        admin_addr: None,
    })
    .await?;
    println!(
        "started a 1-validator chain {} (RPC {})",
        node.chain_id,
        node.rpc_url()
    );
    let result = drive(&node, &dc, events).await;
    node.stop().await;
    result?;
    println!("demo finished in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

async fn drive(node: &Node, dc: &crate::cli::DevChain, events: usize) -> anyhow::Result<()> {
    let c = auditchain_rpc::http_client(&node.rpc_url(), Duration::from_secs(30))?;
    let mut txs = Vec::with_capacity(events);
    for i in 0..events {
        let (ty, entity, data) = sample(i);
        txs.push(TxParam::from(&sign_record(
            node.chain_id,
            &dc.writer,
            i as u64,
            ty,
            &entity,
            Some(data),
            None,
        )?));
    }
    let started = Instant::now();
    let mut ids = Vec::new();
    for batch in txs.chunks(100) {
        for (i, out) in c
            .submit_batch(batch.to_vec())
            .await?
            .into_iter()
            .enumerate()
        {
            match (out.id, out.error) {
                (Some(id), _) => ids.push(id),
                (None, e) => bail!("event {i} rejected: {e:?}"),
            }
        }
    }
    let last = *ids.last().context("no events")?;
    let receipt_last = loop {
        match c.get_proof(last).await {
            Ok(r) => break r,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => return Err(e).context("waiting for the events to commit"),
        }
    };
    let elapsed = started.elapsed();
    let stats = c.get_stats().await?;
    println!(
        "{} events committed in {} blocks in {:.2} s ({:.0} events/s); head at height {}",
        ids.len(),
        stats.blocks - 1,
        elapsed.as_secs_f64(),
        ids.len() as f64 / elapsed.as_secs_f64(),
        receipt_last.header.height
    );
    for (ty, n) in &stats.events_per_type {
        println!("  {ty:<20} {n}");
    }
    let trail = c
        .get_trail(auditchain_rpc::types::TrailQuery {
            entity: Some("host-0".into()),
            limit: Some(1000),
            ..Default::default()
        })
        .await?;
    println!("trail of entity host-0: {} events", trail.events.len());
    let receipt = c.get_proof(ids[0]).await?;
    let path = std::env::temp_dir().join(format!(
        "auditchain-demo-receipt-{}.json",
        std::process::id()
    ));
    std::fs::write(&path, serde_json::to_string_pretty(&receipt)?)?;
    verify_receipt(&receipt, &dc.genesis).context("receipt failed offline verification")?;
    println!(
        "receipt for {} written to {} and verified offline against the genesis (height {}, history leaf {} of {})",
        receipt.tx_id,
        path.display(),
        receipt.header.height,
        receipt.history_index,
        receipt.header.history_size
    );
    let mut forged = receipt.clone();
    forged.history_index += 1;
    if verify_receipt(&forged, &dc.genesis).is_ok() {
        bail!("a forged receipt verified");
    }
    println!("a receipt with a forged position is rejected, as it must be");
    Ok(())
}
