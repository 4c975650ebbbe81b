//! The ingest sidecar: one JSON object per line (JSONL), appended as lines are processed, kept
//! by the application beside its logs. A record names the input line (file, line number,
//! original text) and what became of it: `submitted` (with the transaction id, nonce, event
//! type, entity, the data and its SHA-256 over the RFC 8785 canonical JSON — in hash-only mode
//! the data exists only here), `unparseable` or `rejected` (with the reason).
//!
//! `auditchain reconcile` re-checks every `submitted` record against the chain.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use auditchain_primitives::Hash;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What became of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Admitted by the node as transaction `tx_id`.
    Submitted,
    /// Not an event of the input format.
    Unparseable,
    /// Refused by a local check or by the node.
    Rejected,
}

/// One sidecar line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Input file as given on the command line.
    pub file: String,
    /// 1-based line number in `file`.
    pub line_no: u64,
    /// The original line (lossy UTF-8 if it was not UTF-8).
    pub line: String,
    /// What became of it.
    pub status: Status,
    /// Transaction id (submitted, or rejected by the node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<Hash>,
    /// Nonce of the transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u64>,
    /// Event type recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Entity recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Whether only the hash went on chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_only: Option<bool>,
    /// SHA-256 of the canonical (RFC 8785) `data`, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_hash: Option<Hash>,
    /// The event data (its `line` field is the original line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Why the line is not on chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Record {
    /// A record of a line that is not on chain.
    pub fn failed(file: &str, line_no: u64, line: &str, status: Status, error: String) -> Self {
        Record {
            file: file.to_string(),
            line_no,
            line: line.to_string(),
            status,
            tx_id: None,
            nonce: None,
            event_type: None,
            entity: None,
            hash_only: None,
            data_hash: None,
            data: None,
            error: Some(error),
        }
    }
}

/// An open sidecar, appended to.
pub struct Sidecar {
    out: BufWriter<std::fs::File>,
}

impl Sidecar {
    /// Opens (creating) `path` for appending. Errors: I/O.
    pub fn append(path: &Path) -> anyhow::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening sidecar {}", path.display()))?;
        Ok(Sidecar {
            out: BufWriter::new(f),
        })
    }

    /// Appends one record (buffered; see [`Sidecar::flush`]).
    pub fn write(&mut self, r: &Record) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, r)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Writes buffered records to the file.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush().context("writing the sidecar")
    }
}
