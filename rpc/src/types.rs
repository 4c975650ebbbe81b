//! JSON shapes of RPC parameters and results. Hashes, keys and signatures are lowercase hex;
//! times are ms since the Unix epoch; sizes are bytes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use auditchain_primitives::tx::WireTx;
use auditchain_primitives::vote::{CommitCertificate, Equivocation};
use auditchain_primitives::{Hash, Header, PublicKey, Signature, TxBody};
use base64::Engine;
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
///
/// Deserialising never fails on a well-formed JSON value: a transaction of the wrong shape
/// (another type, a missing, unknown or repeated field, a body that is not a string, a bad
/// signature) becomes a parameter holding its error, so that one malformed transaction in a
/// batch gets its own error (naming the offending field) and the rest are still admitted. The
/// batch is read in one pass, with no intermediate copy of each transaction's text.
#[derive(Debug, Clone, PartialEq)]
pub struct TxParam(Result<WireTx, ParamError>);

/// Why a transaction parameter has the wrong shape: the field (`.` for the whole object) and
/// the reason.
#[derive(Debug, Clone, PartialEq)]
struct ParamError {
    field: &'static str,
    reason: String,
}

impl TxParam {
    /// The wire form. Errors: [`crate::RpcError::InvalidParams`] naming the field under
    /// `name()` (e.g. `tx.signature`); `name` is only called on failure.
    pub fn parse(self, name: impl FnOnce() -> String) -> Result<WireTx, crate::RpcError> {
        self.0.map_err(|e| {
            let name = name();
            let field = match e.field {
                "." => name,
                f => format!("{name}.{f}"),
            };
            crate::RpcError::params(field, e.reason)
        })
    }
}

impl From<WireTx> for TxParam {
    fn from(w: WireTx) -> Self {
        TxParam(Ok(w))
    }
}

impl From<&auditchain_primitives::Transaction> for TxParam {
    fn from(t: &auditchain_primitives::Transaction) -> Self {
        TxParam(Ok(WireTx::from(t.clone())))
    }
}

/// As [`WireTx`]. Errors: a parameter that did not parse (only a server holds one).
impl Serialize for TxParam {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Ok(w) => w.serialize(s),
            Err(e) => Err(serde::ser::Error::custom(format!(
                "{}: {}",
                e.field, e.reason
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for TxParam {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Lenient::<WireTx>::deserialize(d).map(|l| TxParam(l.0))
    }
}

impl ParamError {
    fn whole(reason: String) -> Self {
        ParamError { field: ".", reason }
    }
}

/// A value of a transaction parameter ([`WireTx`], or one of its fields), or why the JSON
/// value there is not one. Any well-formed JSON value deserialises; only broken JSON is an
/// error.
struct Lenient<T>(Result<T, ParamError>);

/// What [`Lenient`] reads: `from_text` for a JSON string, `from_map` for an object; any other
/// value is the wrong type.
trait ParamShape: Sized {
    /// What the value should be, for messages.
    const EXPECTED: &'static str;

    /// Reads a JSON string (borrowed from the request when it had no escapes, else owned).
    fn from_text(s: Cow<'_, str>) -> Result<Self, ParamError> {
        Err(wrong_type(serde::de::Unexpected::Str(&s), Self::EXPECTED))
    }

    fn from_map<'de, A: serde::de::MapAccess<'de>>(
        mut map: A,
    ) -> Result<Result<Self, ParamError>, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Err(wrong_type(serde::de::Unexpected::Map, Self::EXPECTED)))
    }
}

/// The message serde gives for a value of the wrong type.
fn wrong_type(found: serde::de::Unexpected<'_>, expected: &str) -> ParamError {
    ParamError::whole(format!("invalid type: {found}, expected {expected}"))
}

impl ParamShape for String {
    const EXPECTED: &'static str = "a string";
    fn from_text(s: Cow<'_, str>) -> Result<Self, ParamError> {
        Ok(s.into_owned())
    }
}

impl ParamShape for Signature {
    const EXPECTED: &'static str = "64 bytes as 128 hex characters";
    fn from_text(s: Cow<'_, str>) -> Result<Self, ParamError> {
        Signature::from_hex(&s).map_err(|e| ParamError::whole(e.to_string()))
    }
}

impl TxParam {
    /// The raw form of a transaction: base64 (RFC 4648 §4, standard alphabet, padded) of the
    /// body's UTF-8 bytes followed by the 64 signature bytes (docs/rpc.md). The RPC accepts it
    /// wherever it takes a transaction object; it carries the same bytes without JSON string
    /// escapes, which the server would otherwise undo for every quote of the body (about a
    /// third of what reading a submitted batch costs).
    pub fn raw(t: &auditchain_primitives::Transaction) -> String {
        let mut bytes = Vec::with_capacity(t.body_text().len() + Signature::LEN);
        bytes.extend_from_slice(t.body_text().as_bytes());
        bytes.extend_from_slice(&t.signature().0);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

impl ParamShape for WireTx {
    const EXPECTED: &'static str =
        "a transaction object {body, signature} or a raw transaction (base64 string)";
    fn from_text(s: Cow<'_, str>) -> Result<Self, ParamError> {
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(|e| ParamError::whole(format!("raw transaction: not base64: {e}")))?;
        let Some(split) = bytes.len().checked_sub(Signature::LEN) else {
            return Err(ParamError::whole(format!(
                "raw transaction: {} bytes, shorter than its {}-byte signature",
                bytes.len(),
                Signature::LEN
            )));
        };
        let mut signature = Signature([0; Signature::LEN]);
        signature.0.copy_from_slice(&bytes[split..]);
        bytes.truncate(split);
        let body = String::from_utf8(bytes)
            .map_err(|e| ParamError::whole(format!("raw transaction: body is not UTF-8: {e}")))?;
        Ok(WireTx { body, signature })
    }
    fn from_map<'de, A: serde::de::MapAccess<'de>>(
        mut map: A,
    ) -> Result<Result<Self, ParamError>, A::Error> {
        /// Takes a field's value, or notes why not (the first problem is the one reported).
        fn take<T>(
            slot: &mut Option<T>,
            problem: &mut Option<ParamError>,
            field: &'static str,
            v: Result<T, ParamError>,
        ) {
            let p = match (v, slot.is_some()) {
                (_, true) => ParamError::whole(format!("duplicate field `{field}`")),
                (Ok(v), false) => return *slot = Some(v),
                (Err(e), false) => ParamError { field, ..e },
            };
            problem.get_or_insert(p);
        }
        let (mut body, mut signature, mut problem) = (None, None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "body" => {
                    let v = map.next_value::<Lenient<String>>()?.0;
                    take(&mut body, &mut problem, "body", v);
                }
                "signature" => {
                    let v = map.next_value::<Lenient<Signature>>()?.0;
                    take(&mut signature, &mut problem, "signature", v);
                }
                other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    problem.get_or_insert(ParamError::whole(format!(
                        "unknown field `{other}`, expected `body` or `signature`"
                    )));
                }
            }
        }
        Ok(match (problem, body, signature) {
            (Some(p), _, _) => Err(p),
            (None, Some(body), Some(signature)) => Ok(WireTx { body, signature }),
            (None, None, _) => Err(ParamError::whole("missing field `body`".into())),
            (None, _, None) => Err(ParamError::whole("missing field `signature`".into())),
        })
    }
}

impl<'de, T: ParamShape> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        fn wrong<T: ParamShape, E>(found: serde::de::Unexpected<'_>) -> Result<Lenient<T>, E> {
            Ok(Lenient(Err(wrong_type(found, T::EXPECTED))))
        }
        impl<'de, T: ParamShape> serde::de::Visitor<'de> for V<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(T::EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Lenient(T::from_text(Cow::Borrowed(v))))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Lenient(T::from_text(Cow::Owned(v))))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::from_map(map).map(Lenient)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                wrong(serde::de::Unexpected::Seq)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                wrong(serde::de::Unexpected::Unsigned(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                wrong(serde::de::Unexpected::Signed(v))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                wrong(serde::de::Unexpected::Float(v))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                wrong(serde::de::Unexpected::Bool(v))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                wrong(serde::de::Unexpected::Unit)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
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
    /// Whether this node searches proof-of-work nonces now: false on other chains, for keys
    /// that are not miners, and while paused (`admin_setMining`).
    pub mining: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn field_and_reason(p: TxParam) -> (String, String) {
        match p.parse(|| "txs[0]".into()) {
            Err(crate::RpcError::InvalidParams { field, reason }) => (field, reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_batch_of_any_shapes_parses_and_each_bad_item_names_its_field() {
        let sig = "ab".repeat(64);
        let good = format!(r#"{{"body":"{{\"a\":1}}","signature":"{sig}"}}"#);
        let batch = format!(
            r#"[{good}, 5, "text", [1, {{"x": 2}}], null,
               {{"body": 1, "signature": "{sig}"}},
               {{"body": "{{}}"}},
               {{"signature": "{sig}"}},
               {{"body": "{{}}", "signature": "zz"}},
               {{"body": "{{}}", "signature": {{"nested": [1]}}}},
               {{"body": "{{}}", "signature": "{sig}", "extra": {{"deep": [true]}}}},
               {{"body": "{{}}", "body": "{{}}", "signature": "{sig}"}},
               {good}]"#
        );
        let params: Vec<TxParam> = serde_json::from_str(&batch).unwrap();
        assert_eq!(params.len(), 13);
        let mut it = params.into_iter();
        let first = it.next().unwrap().parse(String::new).unwrap();
        assert_eq!(first.body, r#"{"a":1}"#);
        assert_eq!(first.signature.to_hex(), sig);
        let expected = [
            ("txs[0]", "invalid type: integer `5`"),
            ("txs[0]", "raw transaction: 3 bytes, shorter than"),
            ("txs[0]", "invalid type: sequence"),
            ("txs[0]", "invalid type: unit value"),
            (
                "txs[0].body",
                "invalid type: integer `1`, expected a string",
            ),
            ("txs[0]", "missing field `signature`"),
            ("txs[0]", "missing field `body`"),
            ("txs[0].signature", "not valid hex"),
            ("txs[0].signature", "invalid type: map"),
            ("txs[0]", "unknown field `extra`"),
            ("txs[0]", "duplicate field `body`"),
        ];
        for (field, needle) in expected {
            let (f, reason) = field_and_reason(it.next().unwrap());
            assert_eq!(f, field, "{reason}");
            assert!(reason.contains(needle), "{field}: {reason} lacks {needle}");
        }
        assert!(it.next().unwrap().parse(String::new).is_ok());
        // Broken JSON is still an error for the whole request.
        assert!(serde_json::from_str::<Vec<TxParam>>(&format!("[{good},")).is_err());
    }

    #[test]
    fn a_raw_transaction_reads_as_its_object_form_and_bad_ones_say_why() {
        let key = auditchain_primitives::SecretKey::from_seed(&[4; 32]);
        let body = auditchain_primitives::tx::TxBody {
            chain_id: Hash([1; 32]),
            signer: key.public_key(),
            nonce: 3,
            timestamp_ms: 9,
            payload: auditchain_primitives::tx::Payload::RecordEvent {
                event_type: "login".into(),
                entity_id: "h \"q\" é".into(),
                data: None,
                data_hash: auditchain_primitives::sha256(b"x"),
            },
        };
        let t = auditchain_primitives::Transaction::sign(body, &key).unwrap();
        let raw = TxParam::raw(&t);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&raw)
            .unwrap();
        assert_eq!(bytes, [t.body_text().as_bytes(), &t.signature().0].concat());
        let p: TxParam = serde_json::from_str(&serde_json::to_string(&raw).unwrap()).unwrap();
        assert_eq!(p.parse(String::new).unwrap(), WireTx::from(t.clone()));
        let b64 =
            |b: &[u8]| serde_json::to_string(&base64::engine::general_purpose::STANDARD.encode(b));
        let cases = [
            ("\"@@@@\"".to_string(), "not base64"),
            (format!("\"{}\"", &raw[..raw.len() - 1]), "not base64"),
            (
                b64(&[0; 63]).unwrap(),
                "63 bytes, shorter than its 64-byte signature",
            ),
            (
                b64(&[[0xff].as_slice(), &[0; 64]].concat()).unwrap(),
                "body is not UTF-8",
            ),
        ];
        for (json, needle) in cases {
            let p: TxParam = serde_json::from_str(&json).unwrap();
            let (f, reason) = field_and_reason(p);
            assert_eq!(f, "txs[0]");
            assert!(reason.contains(needle), "{json}: {reason} lacks {needle}");
        }
        // 64 bytes exactly: an empty body, which admission then rejects as a body
        let p: TxParam = serde_json::from_str(&b64(&[5; 64]).unwrap()).unwrap();
        assert_eq!(p.parse(String::new).unwrap().body, "");
    }

    #[test]
    fn a_parameter_serialises_as_the_wire_form() {
        let w = WireTx {
            body: "{\"k\":\"v\\\"\"}".into(),
            signature: Signature([3; 64]),
        };
        let text = serde_json::to_string(&TxParam::from(w.clone())).unwrap();
        assert_eq!(text, serde_json::to_string(&w).unwrap());
        let back: TxParam = serde_json::from_str(&text).unwrap();
        assert_eq!(back.parse(String::new).unwrap(), w);
    }
}
