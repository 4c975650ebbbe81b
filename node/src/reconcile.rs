//! `auditchain reconcile`: checks every record of an ingest sidecar against the chain.
//!
//! For each `submitted` record it checks, in order: the record is self-consistent (its
//! `data.line` is its `line`, and its `data_hash` is the SHA-256 of the RFC 8785 canonical
//! `data`); the transaction exists, is committed and final (at or below `chain_getFinalized`);
//! its event type, entity and `data_hash` equal the record's; and, unless hash-only, its
//! on-chain data equals the record's. Each failure is a discrepancy naming the sidecar line
//! and the input line. `unparseable` and `rejected` records are counted, not checked: they
//! never went on chain and were reported at ingest.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use auditchain_primitives::tx::{Payload, data_hash};
use auditchain_rpc::types::TxStatus;
use auditchain_rpc::{AuditChainApiClient, HttpClient};
use futures::StreamExt;

use crate::ingest::sidecar::{Record, Status};

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    /// 1-based line of the sidecar.
    pub sidecar_line: u64,
    /// `file:line` of the input, when the record names it.
    pub source: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Discrepancy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sidecar line {}", self.sidecar_line)?;
        if let Some(s) = &self.source {
            write!(f, " ({s})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// What reconcile found.
#[derive(Debug, Clone, Default)]
pub struct ReconcileReport {
    /// Submitted records that are final and match.
    pub matched: u64,
    /// Records of lines never put on chain (unparseable or rejected at ingest).
    pub not_on_chain: u64,
    /// Every problem, in sidecar order.
    pub discrepancies: Vec<Discrepancy>,
}

/// Reconciles the sidecar at `path` against the node at `rpc`. Errors: an unreadable sidecar,
/// an unreachable node. Discrepancies are not errors: they are in the report.
pub async fn reconcile(rpc: &str, path: &Path) -> anyhow::Result<ReconcileReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let c = auditchain_rpc::http_client(rpc, Duration::from_secs(30))
        .with_context(|| format!("RPC URL {rpc}"))?;
    let finalized = c
        .get_finalized()
        .await
        .with_context(|| format!("cannot reach the node at {rpc}"))?
        .head
        .height;
    let mut report = ReconcileReport::default();
    let mut to_check = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let rec: Record = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(e) => {
                report.discrepancies.push(Discrepancy {
                    sidecar_line: n,
                    source: None,
                    reason: format!("not a sidecar record: {e}"),
                });
                continue;
            }
        };
        if rec.status == Status::Submitted {
            to_check.push((n, rec));
        } else {
            report.not_on_chain += 1;
        }
    }
    let results: Vec<_> = futures::stream::iter(to_check)
        .map(|(n, rec)| {
            let c = c.clone();
            async move {
                let source = format!("{}:{}", rec.file, rec.line_no);
                let r = check(&c, &rec, finalized).await;
                (n, source, r)
            }
        })
        .buffered(16)
        .collect()
        .await;
    for (n, source, r) in results {
        match r? {
            None => report.matched += 1,
            Some(reason) => report.discrepancies.push(Discrepancy {
                sidecar_line: n,
                source: Some(source),
                reason,
            }),
        }
    }
    report.discrepancies.sort_by_key(|d| d.sidecar_line);
    Ok(report)
}

/// `None` when `rec` is final and matches; otherwise why not. Errors: transport failures.
async fn check(c: &HttpClient, rec: &Record, finalized: u64) -> anyhow::Result<Option<String>> {
    let (Some(id), Some(hash), Some(data)) = (rec.tx_id, rec.data_hash, &rec.data) else {
        return Ok(Some(
            "a submitted record needs tx_id, data_hash and data".into(),
        ));
    };
    if data.get("line").and_then(|l| l.as_str()) != Some(rec.line.as_str()) {
        return Ok(Some("the record's line differs from its data.line".into()));
    }
    match data_hash(data) {
        Ok(h) if h == hash => {}
        Ok(h) => {
            return Ok(Some(format!(
                "the record's data hashes to {h}, the record says {hash}"
            )));
        }
        Err(e) => {
            return Ok(Some(format!(
                "the record's data is not canonical JSON: {e}"
            )));
        }
    }
    let view = match c.get_transaction(id).await {
        Ok(v) => v,
        Err(auditchain_rpc::ClientError::Call(e)) if e.code() == 1011 => {
            return Ok(Some(format!("transaction {id} is not on the chain")));
        }
        Err(e) => return Err(e).context("audit_getTransaction"),
    };
    let height = match (view.status, &view.location) {
        (TxStatus::Committed, Some(l)) => l.height,
        _ => return Ok(Some(format!("transaction {id} is pending, not committed"))),
    };
    if height > finalized {
        return Ok(Some(format!(
            "transaction {id} at height {height} is not final yet (finalized height {finalized})"
        )));
    }
    let Payload::RecordEvent {
        event_type,
        entity_id,
        data: on_chain,
        data_hash: chain_hash,
    } = &view.tx.body.payload
    else {
        return Ok(Some(format!("transaction {id} is not a record_event")));
    };
    if *chain_hash != hash {
        return Ok(Some(format!(
            "data hash differs: chain has {chain_hash}, the record has {hash}"
        )));
    }
    if rec.event_type.as_deref() != Some(event_type.as_str())
        || rec.entity.as_deref() != Some(entity_id.as_str())
    {
        return Ok(Some(format!(
            "event differs: chain has {event_type} on {entity_id}"
        )));
    }
    if let Some(d) = on_chain
        && d.value() != data
    {
        return Ok(Some("on-chain data differs from the record's".into()));
    }
    Ok(None)
}
