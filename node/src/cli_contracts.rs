//! The contract subcommands: `token`, `gov`, `qa`, `evidence`, `sla`. Calls are signed with
//! the key file given, submitted, and waited for; the output is JSON with the transaction id,
//! height, and the contract events the call produced (a `call_failed` event if it failed in
//! its block). Calls that would fail on the current state are refused by the node at once
//! (error 1014) and exit non-zero.

use std::path::PathBuf;

use anyhow::{Context, bail};
use auditchain_primitives::call::{Choice, GovAction, Rule};
use auditchain_primitives::tx::Payload;
use auditchain_primitives::{Hash, PublicKey, Transaction, TxBody};
use auditchain_rpc::AuditChainApiClient;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::chain::now_ms;
use crate::cli::{RpcArg, client, print_json, sign_and_wait};
use crate::keyfile;

/// How a call is signed and sent.
#[derive(Debug, Args)]
pub struct CallArgs {
    #[command(flatten)]
    rpc: RpcArg,
    /// Signer's key file.
    #[arg(long)]
    key: PathBuf,
    /// How long to wait for the commit, ms.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
}

/// `auditchain token …`
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Move tokens to another account.
    Transfer {
        #[command(flatten)]
        call: CallArgs,
        /// Receiver's public key (hex).
        #[arg(long)]
        to: PublicKey,
        /// Tokens.
        #[arg(long)]
        amount: u64,
    },
    /// Create tokens (admin role).
    Mint {
        #[command(flatten)]
        call: CallArgs,
        /// Receiver's public key (hex).
        #[arg(long)]
        to: PublicKey,
        /// Tokens.
        #[arg(long)]
        amount: u64,
        /// Why, kept in the token history.
        #[arg(long)]
        reason: String,
    },
    /// Balance, voting power and roles of an account.
    Balance {
        #[command(flatten)]
        rpc: RpcArg,
        /// The account's public key (hex).
        account: PublicKey,
    },
}

/// A vote on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VoteArg {
    /// For.
    Yes,
    /// Against.
    No,
    /// Counts towards quorum only.
    Abstain,
}

/// `auditchain gov …`
#[derive(Debug, Subcommand)]
pub enum GovCmd {
    /// Open a proposal.
    Propose {
        #[command(flatten)]
        call: CallArgs,
        /// Title.
        #[arg(long)]
        title: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// Voting period, blocks.
        #[arg(long)]
        period: u64,
        /// The action as JSON, e.g. `{"type":"add_validator","validator":"<hex>"}`
        /// (docs/contracts.md lists them).
        #[arg(long)]
        action: Option<String>,
        /// Weigh votes by the square root of voting power.
        #[arg(long)]
        quadratic: bool,
    },
    /// Vote on a proposal.
    Vote {
        #[command(flatten)]
        call: CallArgs,
        /// Proposal id.
        proposal: u64,
        /// The vote.
        #[arg(value_enum)]
        choice: VoteArg,
    },
    /// List proposals.
    List {
        #[command(flatten)]
        rpc: RpcArg,
        /// Only this status (active, passed, rejected, no_quorum, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
    },
    /// Show a proposal and its votes.
    Show {
        #[command(flatten)]
        rpc: RpcArg,
        /// Proposal id.
        proposal: u64,
    },
}

/// `auditchain qa …`
#[derive(Debug, Subcommand)]
pub enum QaCmd {
    /// List the monitor rules.
    Rules {
        #[command(flatten)]
        rpc: RpcArg,
    },
    /// Add or replace a rule from a JSON file (admin role).
    AddRule {
        #[command(flatten)]
        call: CallArgs,
        /// The rule (docs/contracts.md).
        file: PathBuf,
    },
    /// List alerts.
    Alerts {
        #[command(flatten)]
        rpc: RpcArg,
        /// Only this rule's alerts.
        #[arg(long)]
        rule: Option<String>,
        /// Start at this alert sequence number.
        #[arg(long, default_value_t = 0)]
        cursor: u64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// `auditchain evidence …`
#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// Hash a file locally and anchor its SHA-256 for an entity.
    Anchor {
        #[command(flatten)]
        call: CallArgs,
        /// The file (only its hash and size leave this machine).
        file: PathBuf,
        /// Entity the evidence belongs to.
        #[arg(long)]
        entity: String,
        /// Where the file is kept.
        #[arg(long)]
        uri: Option<String>,
    },
    /// Hash a file locally and list every anchoring of it.
    Verify {
        #[command(flatten)]
        rpc: RpcArg,
        /// The file.
        file: PathBuf,
    },
}

/// `auditchain sla …`
#[derive(Debug, Subcommand)]
pub enum SlaCmd {
    /// The SLA deadline of an entity.
    Status {
        #[command(flatten)]
        rpc: RpcArg,
        /// Entity id.
        entity: String,
    },
}

/// Signs `payload` with the key, submits it, waits for the commit, and prints the outcome.
/// Errors: the node refused it (with the node's message) or the wait failed.
async fn send(a: &CallArgs, payload: Payload) -> anyhow::Result<()> {
    let key = keyfile::read(&a.key)?;
    let (c, r) = sign_and_wait(&a.rpc.rpc, &key, a.timeout_ms, |chain_id, nonce| {
        let body = TxBody {
            chain_id,
            signer: key.public_key(),
            nonce,
            timestamp_ms: now_ms(),
            payload,
        };
        Ok(Transaction::sign(body, &key)?)
    })
    .await?;
    let events = c.chain_get_contract_events(r.header.height).await?;
    let mine: Vec<Value> = events
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|e| e.get("tx").and_then(Value::as_u64) == Some(u64::from(r.tx_index)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let failed = mine
        .iter()
        .find(|e| e["type"] == "call_failed")
        .map(|e| e["error"].clone());
    print_json(&json!({
        "id": r.tx_id, "height": r.header.height, "index": r.tx_index,
        "status": if failed.is_some() { "failed" } else { "ok" }, "events": mine,
    }))?;
    if let Some(e) = failed {
        bail!("the call failed in its block: {e}");
    }
    Ok(())
}

fn hash_file(path: &PathBuf) -> anyhow::Result<(Hash, u64)> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&h.finalize());
    Ok((Hash(out), size))
}

/// Runs `auditchain token …`.
pub async fn token(cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Transfer { call, to, amount } => {
            send(&call, Payload::TokenTransfer { to, amount }).await
        }
        TokenCmd::Mint {
            call,
            to,
            amount,
            reason,
        } => send(&call, Payload::TokenMint { to, amount, reason }).await,
        TokenCmd::Balance { rpc, account } => {
            print_json(&client(&rpc.rpc)?.token_get_balance(account).await?)
        }
    }
}

/// Runs `auditchain gov …`.
pub async fn gov(cmd: GovCmd) -> anyhow::Result<()> {
    match cmd {
        GovCmd::Propose {
            call,
            title,
            description,
            period,
            action,
            quadratic,
        } => {
            let action = action
                .map(|a| serde_json::from_str::<GovAction>(&a))
                .transpose()
                .context("--action is not a valid action (docs/contracts.md)")?;
            send(
                &call,
                Payload::GovPropose {
                    title,
                    description,
                    voting_period_blocks: period,
                    action,
                    quadratic,
                },
            )
            .await
        }
        GovCmd::Vote {
            call,
            proposal,
            choice,
        } => {
            let choice = match choice {
                VoteArg::Yes => Choice::Yes,
                VoteArg::No => Choice::No,
                VoteArg::Abstain => Choice::Abstain,
            };
            send(&call, Payload::GovVote { proposal, choice }).await
        }
        GovCmd::List { rpc, status } => print_json(
            &client(&rpc.rpc)?
                .gov_list_proposals(status, None, Some(1000))
                .await?,
        ),
        GovCmd::Show { rpc, proposal } => {
            let c = client(&rpc.rpc)?;
            let p = c.gov_get_proposal(proposal).await?;
            let votes = c.gov_get_votes(proposal).await?;
            print_json(&json!({ "proposal": p, "votes": votes }))
        }
    }
}

/// Runs `auditchain qa …`.
pub async fn qa(cmd: QaCmd) -> anyhow::Result<()> {
    match cmd {
        QaCmd::Rules { rpc } => print_json(&client(&rpc.rpc)?.qa_list_rules().await?),
        QaCmd::AddRule { call, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let rule: Rule = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a rule (docs/contracts.md)", file.display()))?;
            send(&call, Payload::QaSetRule { rule }).await
        }
        QaCmd::Alerts {
            rpc,
            rule,
            cursor,
            limit,
        } => {
            let filter = rule.map(|r| json!({ "rule": r }));
            print_json(
                &client(&rpc.rpc)?
                    .qa_get_alerts(filter, Some(cursor), Some(limit))
                    .await?,
            )
        }
    }
}

/// Runs `auditchain evidence …`.
pub async fn evidence(cmd: EvidenceCmd) -> anyhow::Result<()> {
    match cmd {
        EvidenceCmd::Anchor {
            call,
            file,
            entity,
            uri,
        } => {
            let (sha256, size_bytes) = hash_file(&file)?;
            send(
                &call,
                Payload::AnchorEvidence {
                    entity_id: entity,
                    sha256,
                    size_bytes,
                    uri,
                },
            )
            .await
        }
        EvidenceCmd::Verify { rpc, file } => {
            let (sha256, _) = hash_file(&file)?;
            let v = client(&rpc.rpc)?.evidence_verify(sha256).await?;
            print_json(&v)?;
            if !v.anchored {
                bail!("{} ({sha256}) is not anchored", file.display());
            }
            Ok(())
        }
    }
}

/// Runs `auditchain sla …`.
pub async fn sla(cmd: SlaCmd) -> anyhow::Result<()> {
    match cmd {
        SlaCmd::Status { rpc, entity } => {
            print_json(&client(&rpc.rpc)?.sla_get_status(entity).await?)
        }
    }
}
