//! JSON shapes of RPC parameters and results. Hashes, keys and signatures are lowercase hex;
//! times are ms since the Unix epoch; sizes are bytes.

use std::collections::BTreeMap;

use auditchain_primitives::tx::WireTx;
use auditchain_primitives::vote::{CommitCertificate, Equivocation};
use auditchain_primitives::{Hash, Header, PublicKey, Signature, TxBody};
use serde::{Deserialize, Serialize};

/// Largest `limit` of [`TrailQuery`].
pub const MAX_TRAIL_LIMIT: u32 = 1000;
/// Default `limit` of [`TrailQuery`].
pub const DEFAULT_TRAIL_LIMIT: u32 = 100;
/// Most blocks one `chain_getBlocks` call returns.
pub const MAX_BLOCK_RANGE: u64 = 100;
/// Most transactions in one `audit_submitBatch` call.
pub const MAX_SUBMIT_BATCH: usize = 10_000;

/// A transaction as an RPC parameter: `{ "body": <canonical JSON text>, "signature": <hex> }`.
/// Kept as raw JSON text until the server parses it, so that one malformed transaction in a
/// batch gets its own error (naming the offending field) and the rest are still admitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TxParam(pub Box<serde_json::value::RawValue>);

/// Equal when the JSON texts are.
impl PartialEq for TxParam {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl TxParam {
    fn encode<T: Serialize>(t: &T) -> Self {
        // Serialising a string and a hex signature cannot fail.
        TxParam(serde_json::value::to_raw_value(t).expect("a transaction serialises"))
    }

    /// Parses into the wire form. Errors: [`crate::RpcError::InvalidParams`] naming the field
    /// under `name()` (e.g. `tx.signature`); `name` is only called on failure.
    pub fn parse(&self, name: impl FnOnce() -> String) -> Result<WireTx, crate::RpcError> {
        // The plain parser on the happy path; on failure, parse again to name the field.
        serde_json::from_str(self.0.get()).map_err(|_| {
            let de = &mut serde_json::Deserializer::from_str(self.0.get());
            let (path, reason) = match serde_path_to_error::deserialize::<_, WireTx>(de) {
                Err(e) => (e.path().to_string(), e.into_inner().to_string()),
                Ok(_) => (".".into(), "rejected by the parser".into()),
            };
            let name = name();
            let field = if path == "." {
                name
            } else {
                format!("{name}.{path}")
            };
            crate::RpcError::params(field, reason)
        })
    }
}

impl From<WireTx> for TxParam {
    fn from(w: WireTx) -> Self {
        TxParam::encode(&w)
    }
}

impl From<&auditchain_primitives::Transaction> for TxParam {
    fn from(t: &auditchain_primitives::Transaction) -> Self {
        TxParam::encode(t)
    }
}

/// A committed or pending transaction as served to readers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxView {
    /// Transaction id.
    pub id: Hash,
    /// Exactly what was submitted: canonical body text and signature.
    pub tx: WireTx,
    /// The decoded body.
    pub body: TxBody,
}

/// Where a committed transaction sits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Index in the block.
    pub index: u32,
    /// Global sequence number (history-tree leaf index).
    pub seq: u64,
    /// Hash of the including block.
    pub block_hash: Hash,
    /// Block time, ms.
    pub block_time_ms: u64,
}

/// Status of a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// Admitted to the mempool, not yet in a block.
    Pending,
    /// In a committed block.
    Committed,
}

/// Result of `audit_getTransaction`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxStatusView {
    /// `pending` or `committed`.
    pub status: TxStatus,
    /// Position, when committed.
    pub location: Option<TxLocation>,
    /// The transaction.
    pub tx: TxView,
}

/// Filter and page of `audit_getTrail`. All filters are ANDed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailQuery {
    /// Only events about this entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Only events by this signer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<PublicKey>,
    /// Only events of this type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Only events in blocks with time ≥ this, ms (block time: consensus time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<u64>,
    /// Only events in blocks with time < this, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One event of a trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    /// Where it is.
    pub location: TxLocation,
    /// The transaction.
    pub tx: TxView,
}

/// A page of a trail, in chain order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrailPage {
    /// Events, ascending by sequence number.
    pub events: Vec<EventView>,
    /// Pass as `cursor` to continue; `null` when the trail is exhausted (up to the head).
    pub next_cursor: Option<String>,
}

/// Result of `audit_verifyRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRecordView {
    /// The transaction id.
    pub id: Hash,
    /// Whether the canonical SHA-256 of the data equals the recorded `data_hash`.
    pub matches: bool,
    /// `data_hash` on chain.
    pub recorded_data_hash: Hash,
    /// SHA-256 of the canonical JSON of the data given.
    pub computed_data_hash: Hash,
    /// Where the record is.
    pub location: TxLocation,
}

/// One anchoring of an evidence hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceView {
    /// Anchoring transaction.
    pub tx_id: Hash,
    /// Entity.
    pub entity_id: String,
    /// File SHA-256.
    pub sha256: Hash,
    /// File size, bytes.
    pub size_bytes: u64,
    /// Where the file is kept.
    pub uri: Option<String>,
    /// Who anchored it.
    pub signer: PublicKey,
    /// Where.
    pub location: TxLocation,
}

/// Result of `evidence_verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceVerifyView {
    /// The hash asked about.
    pub sha256: Hash,
    /// Whether any anchoring exists.
    pub anchored: bool,
    /// Every anchoring, in chain order.
    pub anchors: Vec<EvidenceView>,
}

/// A head summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadView {
    /// Height.
    pub height: u64,
    /// Block hash.
    pub hash: Hash,
    /// Block time, ms.
    pub timestamp_ms: u64,
    /// Transactions in the block.
    pub tx_count: u32,
    /// History-tree size after the block.
    pub history_size: u64,
    /// History-tree root after the block.
    pub history_root: Hash,
    /// State root after the block.
    pub state_root: Hash,
    /// Proposer.
    pub proposer: PublicKey,
}

impl HeadView {
    /// Summarises a header.
    pub fn of(h: &Header) -> Self {
        HeadView {
            height: h.height,
            hash: h.hash(),
            timestamp_ms: h.timestamp_ms,
            tx_count: h.tx_count,
            history_size: h.history_size,
            history_root: h.history_root,
            state_root: h.state_root,
            proposer: h.proposer,
        }
    }
}

/// A block as served to explorers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockView {
    /// Block hash.
    pub hash: Hash,
    /// Header.
    pub header: Header,
    /// Proposer's seal.
    pub seal: Signature,
    /// The commit certificate that made the block final (`null` for genesis).
    pub certificate: Option<CommitCertificate>,
    /// Transaction ids in block order.
    pub tx_ids: Vec<Hash>,
    /// Full transactions, when asked for (`full = true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txs: Option<Vec<TxView>>,
}

/// Result of `chain_getStats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsView {
    /// Blocks including genesis.
    pub blocks: u64,
    /// Committed events (transactions).
    pub events: u64,
    /// Committed events per event type.
    pub events_per_type: BTreeMap<String, u64>,
    /// Mean time between the last (up to 100) blocks, ms; `null` with fewer than 2 blocks.
    pub average_block_time_ms: Option<f64>,
    /// Transactions waiting in this node's mempool.
    pub mempool_txs: u64,
}

/// Result of `node_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Genesis hash.
    pub chain_id: Hash,
    /// Chain name from genesis.
    pub chain_name: String,
    /// Node software version.
    pub version: String,
    /// Current head.
    pub head: HeadView,
    /// This node's validator key, if it validates.
    pub validator: Option<PublicKey>,
    /// Mempool transactions.
    pub mempool_txs: u64,
    /// Mempool bytes.
    pub mempool_bytes: u64,
    /// Time since start, ms.
    pub uptime_ms: u64,
}

/// Result of `node_health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthView {
    /// Whether the node considers itself healthy.
    pub healthy: bool,
    /// Head height.
    pub head_height: u64,
    /// Age of the head block, ms.
    pub head_age_ms: u64,
    /// Why unhealthy, when not.
    pub reason: Option<String>,
}

/// An error inside a batch result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorView {
    /// JSON-RPC error code (see docs/rpc.md).
    pub code: i32,
    /// Message naming the field and the reason.
    pub message: String,
}

/// The outcome of one transaction of `audit_submitBatch`: exactly one of `id` / `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitOutcome {
    /// Transaction id, if admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Hash>,
    /// Why rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorView>,
}

/// A connected peer (`node_peers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// libp2p peer id.
    pub peer_id: String,
    /// Remote address of its first connection (multiaddress).
    pub address: String,
    /// Whether this node dialed it.
    pub outbound: bool,
    /// Its messages this node rejected (gossip and sync); a peer is banned for 60 s at 10.
    pub rejected_messages: u32,
    /// Its client version, once identified.
    pub agent: Option<String>,
}

/// A member of the validator set (`chain_getValidators`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorView {
    /// Position in proposer order: validator `i` proposes height `h` round `r` when
    /// `(h + r) mod n = i`.
    pub index: u32,
    /// Its public key (also its network identity).
    pub public_key: PublicKey,
    /// Its libp2p peer id.
    pub peer_id: String,
}

/// The finalized head and its proof (`chain_getFinalized`). Every committed block is final
/// (BFT), so this is the head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalizedView {
    /// The finalized head.
    pub head: HeadView,
    /// Its commit certificate (`null` at genesis).
    pub certificate: Option<CommitCertificate>,
}

/// One validator's activity as seen by this node since it started
/// (`consensus_getSignerMetrics`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerMetricsView {
    /// The validator.
    pub validator: PublicKey,
    /// Final blocks it proposed (sealed).
    pub proposed: u64,
    /// Rounds it was the proposer of a height decided in a later round.
    pub missed_turns: u64,
    /// Valid votes received from it (its own, for this node).
    pub votes: u64,
    /// When this node last received a valid vote or proposal from it, ms since the epoch.
    pub last_seen_ms: Option<u64>,
}

/// Stored equivocation evidence (`chain_getEvidence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquivocationView {
    /// Sequence number of the evidence (a cursor: pass `seq + 1` as `from`).
    pub seq: u64,
    /// The two conflicting votes.
    pub evidence: Equivocation,
}

/// A read of native contract state (served by [`crate::Backend::contract_query`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ContractQuery {
    /// `token_getBalance`.
    Balance(PublicKey),
    /// `token_getSupply`.
    Supply,
    /// `token_getHistory`: account, cursor, limit.
    History(PublicKey, u64, usize),
    /// `gov_getProposal`.
    Proposal(u64),
    /// `gov_listProposals`: status, cursor, limit.
    Proposals(Option<String>, u64, usize),
    /// `gov_getVotes`.
    Votes(u64),
    /// `qa_listRules`.
    Rules,
    /// `qa_getAlerts`: filter, cursor, limit.
    Alerts(serde_json::Value, u64, usize),
    /// `sla_getStatus`.
    SlaStatus(String),
    /// `sla_listBreaches`: cursor, limit.
    Breaches(u64, usize),
    /// `chain_getContractEvents`.
    Events(u64),
}
