//! Transactions: the signed unit an application submits.
//!
//! A transaction is `{ "body": <text>, "signature": <hex> }` where `body` is the RFC 8785 (JCS)
//! canonical JSON of a [`TxBody`]. The signature is ed25519 over the *signing preimage*
//!
//! ```text
//! preimage = "auditchain:tx:v1" ‖ 0x00 ‖ chain_id (32 bytes) ‖ UTF-8 bytes of body
//! ```
//!
//! where `chain_id` is the genesis hash, also carried in the body so that a transaction for
//! another chain is reported as such. The transaction id is SHA-256(preimage), so it does not depend on the signature bytes.
//! Decoding re-canonicalises the body and rejects it unless the bytes are identical, so every
//! transaction has exactly one body text and one id. Integers (nonce, timestamps, sizes, and any
//! integer inside `data`) must lie within ±(2^53 − 1), the I-JSON range JCS requires.
//! Specified byte for byte, with test vectors, in docs/signing.md.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bytes::{Hash, PublicKey, Signature, sha256, sha256_parts};
use crate::call::{self, Choice, GovAction, Rule};
use crate::keys::{SecretKey, SignatureError, verify};

/// Domain tag that starts every transaction signing preimage (followed by one 0x00 byte).
pub const TX_DOMAIN: &[u8] = b"auditchain:tx:v1\x00";

/// Largest integer allowed anywhere in a body: 2^53 − 1 (I-JSON, RFC 7493 §2.2).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Longest `event_type`, in bytes.
pub const MAX_EVENT_TYPE_BYTES: usize = 64;
/// Longest `entity_id`, in bytes.
pub const MAX_ENTITY_ID_BYTES: usize = 256;
/// Longest evidence `uri`, in bytes.
pub const MAX_URI_BYTES: usize = 2048;

/// Why a transaction is malformed. Signature and chain-state problems are reported elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The body is not valid JSON for a [`TxBody`] (syntax, missing or unknown field, unknown
    /// payload `type`, wrong type). `path` names the field.
    #[error("body: {path}: {reason}")]
    BodyJson {
        /// JSON path of the offending field (`.` for the whole body).
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The body is valid but not in RFC 8785 canonical form.
    #[error(
        "body is not RFC 8785 (JCS) canonical JSON: first difference at byte {offset}; expected {expected}"
    )]
    NonCanonical {
        /// Byte offset of the first difference.
        offset: usize,
        /// The canonical text.
        expected: String,
    },
    /// A field has an invalid value.
    #[error("{field}: {reason}")]
    InvalidField {
        /// Field path, e.g. `payload.event_type`.
        field: String,
        /// What was wrong.
        reason: String,
    },
    /// `data` is present but its canonical SHA-256 is not `data_hash`.
    #[error("payload.data_hash: SHA-256 of canonical data is {computed}, body says {claimed}")]
    DataHashMismatch {
        /// SHA-256 of the canonical data.
        computed: Hash,
        /// The `data_hash` in the body.
        claimed: Hash,
    },
    /// The signature does not verify over the preimage.
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),
}

/// What a transaction does. Serialised with a `type` tag in snake_case. New kinds are added as
/// new variants (older ones never change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Payload {
    /// Records one audit event: `signer` did `event_type` to `entity_id`.
    RecordEvent {
        /// Event type, 1–64 bytes of `[A-Za-z0-9_.:-]`.
        event_type: String,
        /// The entity acted on (host, service, record id), 1–256 bytes, no control characters.
        entity_id: String,
        /// The event data, if kept on chain; omitted in hash-only mode (e.g. PHI stays off-chain).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Data>,
        /// SHA-256 of the JCS canonical text of `data`; checked against `data` when present.
        data_hash: Hash,
    },
    /// Anchors the hash of an evidence file kept elsewhere.
    AnchorEvidence {
        /// The entity the evidence belongs to (same rules as `RecordEvent::entity_id`).
        entity_id: String,
        /// SHA-256 of the file's bytes.
        sha256: Hash,
        /// The file's size in bytes.
        size_bytes: u64,
        /// Where the file is kept (≤ 2048 bytes), if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uri: Option<String>,
    },
    /// Moves `amount` tokens from the signer to `to` (contracts: tokens).
    TokenTransfer {
        /// Receiver.
        to: PublicKey,
        /// Tokens, 1–2^53−1.
        amount: u64,
    },
    /// Creates `amount` tokens for `to`; the signer must hold the admin role.
    TokenMint {
        /// Receiver.
        to: PublicKey,
        /// Tokens, 1–2^53−1.
        amount: u64,
        /// Why (1–128 bytes), kept in the token history.
        reason: String,
    },
    /// Destroys `amount` of the signer's tokens.
    TokenBurn {
        /// Tokens, 1–2^53−1.
        amount: u64,
    },
    /// Delegates the signer's voting power to `to`, or takes it back when `to` is absent.
    TokenDelegate {
        /// The delegate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<PublicKey>,
    },
    /// Opens a governance proposal.
    GovPropose {
        /// Title, 1–128 bytes.
        title: String,
        /// Description, up to 4,096 bytes.
        #[serde(default)]
        description: String,
        /// Voting period, blocks (within the governance parameters' bounds).
        voting_period_blocks: u64,
        /// What happens if it passes; a text-only proposal when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<GovAction>,
        /// Weigh votes by the square root of voting power.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        quadratic: bool,
    },
    /// Votes on an open proposal (once per account).
    GovVote {
        /// Proposal id.
        proposal: u64,
        /// The vote.
        choice: Choice,
    },
    /// Withdraws a proposal; only its proposer, only before any vote.
    GovCancel {
        /// Proposal id.
        proposal: u64,
    },
    /// Adds or replaces (by name) a QA monitor rule; the signer must hold the admin role.
    QaSetRule {
        /// The rule.
        rule: Rule,
    },
    /// Activates or deactivates a QA rule; the signer must hold the admin role.
    QaSetRuleActive {
        /// Rule name.
        name: String,
        /// New state.
        active: bool,
    },
}

impl Payload {
    /// The entity the payload concerns.
    pub fn entity_id(&self) -> &str {
        match self {
            Payload::RecordEvent { entity_id, .. } | Payload::AnchorEvidence { entity_id, .. } => {
                entity_id
            }
            Payload::TokenTransfer { .. }
            | Payload::TokenMint { .. }
            | Payload::TokenBurn { .. }
            | Payload::TokenDelegate { .. } => "contract:tokens",
            Payload::GovPropose { .. } | Payload::GovVote { .. } | Payload::GovCancel { .. } => {
                "contract:governance"
            }
            Payload::QaSetRule { .. } | Payload::QaSetRuleActive { .. } => "contract:qa",
        }
    }

    /// The event type used for indexing: the `event_type` of a record, `evidence_anchored` for
    /// an evidence anchor, the payload's `type` tag for a contract call.
    pub fn event_type(&self) -> &str {
        match self {
            Payload::RecordEvent { event_type, .. } => event_type,
            Payload::AnchorEvidence { .. } => "evidence_anchored",
            Payload::TokenTransfer { .. } => "token_transfer",
            Payload::TokenMint { .. } => "token_mint",
            Payload::TokenBurn { .. } => "token_burn",
            Payload::TokenDelegate { .. } => "token_delegate",
            Payload::GovPropose { .. } => "gov_propose",
            Payload::GovVote { .. } => "gov_vote",
            Payload::GovCancel { .. } => "gov_cancel",
            Payload::QaSetRule { .. } => "qa_set_rule",
            Payload::QaSetRuleActive { .. } => "qa_set_rule_active",
        }
    }

    /// Size in bytes of the canonical `data` text (0 if absent).
    pub fn data_bytes(&self) -> usize {
        match self {
            Payload::RecordEvent { data: Some(d), .. } => d.canonical().len(),
            _ => 0,
        }
    }
}

/// A record's `data`: a JSON value kept as its RFC 8785 canonical text (what is signed and
/// hashed), parsed into a [`Value`] only when someone asks for it ([`Data::value`]: contracts
/// whose rules read fields, RPC views). Admission and storage only need the text, so a
/// transaction read from a request, a block or the store costs one scan of it instead of a
/// parse into a tree, a write of the tree and freeing it.
///
/// Serialises and deserialises as the JSON value itself. Equal when the canonical texts are.
#[derive(Clone)]
pub struct Data {
    text: Box<str>,
    value: std::sync::OnceLock<Value>,
    /// Every number is an integer within ±(2^53−1) (known from [`crate::jcs::is_canonical_simple`]).
    safe_ints: bool,
}

/// The data of `value`, canonicalised ([`crate::jcs`]). Errors: [`TxError::InvalidField`]
/// (`payload.data`) if it has no canonical form (a non-finite number, which a parsed `Value`
/// cannot hold).
impl TryFrom<Value> for Data {
    type Error = TxError;
    fn try_from(value: Value) -> Result<Data, TxError> {
        Ok(Data {
            text: canonical_data(&value)?.into_boxed_str(),
            value: value.into(),
            safe_ints: false,
        })
    }
}

impl Data {
    /// The data of a JSON text as it appeared in a body. When the text is already canonical
    /// with only safe integers (nearly always) it is kept as it is, unparsed; otherwise it is
    /// parsed and canonicalised, so a body holding it differs from its canonical form and is
    /// refused as non-canonical, as before. Errors: the text does not parse.
    fn from_text(text: Box<str>) -> Result<Data, serde_json::Error> {
        if crate::jcs::is_canonical_simple(&text) {
            return Ok(Data {
                text,
                value: std::sync::OnceLock::new(),
                safe_ints: true,
            });
        }
        let value: Value = serde_json::from_str(&text)?;
        Data::try_from(value).map_err(serde::de::Error::custom)
    }

    /// The RFC 8785 canonical text; its SHA-256 is the record's `data_hash`.
    pub fn canonical(&self) -> &str {
        &self.text
    }

    /// The parsed value (parsed on first use, then kept).
    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| {
            // The text is canonical JSON, written by this crate or checked by
            // `is_canonical_simple`, so it parses.
            serde_json::from_str(&self.text).unwrap_or(Value::Null)
        })
    }

    /// SHA-256 of the canonical text: the `data_hash` a record carrying this data must have.
    pub fn hash(&self) -> Hash {
        sha256(self.text.as_bytes())
    }

    /// The value at RFC 6901 pointer `pointer` (as [`Value::pointer`] finds it, cloned), read
    /// from the text in one pass that builds only the value found: what contract rules use,
    /// so a rule reading one field of an unparsed record does not parse the rest. Uses the
    /// parsed value instead if there is one. `None` if nothing is there. To read several
    /// pointers of one record, [`Data::reader`] scans the text once for all of them.
    pub fn pointer(&self, pointer: &str) -> Option<Value> {
        if let Some(v) = self.value.get() {
            return v.pointer(pointer).cloned();
        }
        let tokens = pointer_tokens(pointer)?;
        if let Some(found) = pointer_in(&self.text, &tokens) {
            return found;
        }
        let mut de = serde_json::Deserializer::from_str(&self.text);
        serde::de::DeserializeSeed::deserialize(pointer::Seek(&tokens), &mut de)
            .ok()
            .flatten()
    }

    /// A reader of several pointers of this data (see [`DataReader`]).
    pub fn reader(&self) -> DataReader<'_> {
        DataReader {
            data: self,
            members: None,
        }
    }
}

/// The unescaped reference tokens of an RFC 6901 pointer; `None` if it is neither empty nor
/// starts with `/` (then it points at nothing).
fn pointer_tokens(pointer: &str) -> Option<Vec<std::borrow::Cow<'_, str>>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    Some(
        pointer
            .strip_prefix('/')?
            .split('/')
            .map(|t| match t.contains('~') {
                true => t.replace("~1", "/").replace("~0", "~").into(),
                false => t.into(),
            })
            .collect(),
    )
}

/// The value at `tokens` in canonical `text` by [`crate::jcs::find`], parsing only the value
/// found; `None` when the walk cannot tell (the caller then seeks with serde).
fn pointer_in<T: AsRef<str>>(text: &str, tokens: &[T]) -> Option<Option<Value>> {
    match crate::jcs::find(text, tokens)? {
        None => Some(None),
        Some(found) => serde_json::from_str(found).ok().map(Some),
    }
}

/// Reads RFC 6901 pointers of one [`Data`], each with the answer of [`Data::pointer`], while
/// reading the text once: the first read notes where each member of the top-level object
/// starts and ends, and every read then walks only the member it names (a rule engine asks
/// a record for several fields: `/ip`, `/user`, `/time_ms`). Data that is not an object, or
/// that the one-pass reader cannot take, is read by [`Data::pointer`] instead.
pub struct DataReader<'a> {
    data: &'a Data,
    /// `(key, value text)` of each top-level member, once read; `Some(None)` when the
    /// members could not be read this way.
    members: Option<Option<Vec<(&'a str, &'a str)>>>,
}

impl DataReader<'_> {
    /// As [`Data::pointer`].
    pub fn get(&mut self, pointer: &str) -> Option<Value> {
        let data = self.data;
        if data.value.get().is_some() {
            return data.pointer(pointer);
        }
        let members = self
            .members
            .get_or_insert_with(|| crate::jcs::members(&data.text));
        let (Some(members), Some(tokens)) = (members, pointer_tokens(pointer)) else {
            return data.pointer(pointer);
        };
        let Some(first) = tokens.first() else {
            return data.pointer(pointer);
        };
        // no member of that name: nothing is there
        let (_, text) = members.iter().find(|(k, _)| *k == first.as_ref())?;
        match pointer_in(text, &tokens[1..]) {
            Some(found) => found,
            None => data.pointer(pointer),
        }
    }
}

/// The one-pass RFC 6901 lookup of [`Data::pointer`].
mod pointer {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::Value;

    /// Finds the value at `tokens` below the value being read; every other value is skipped.
    pub(super) struct Seek<'t>(pub(super) &'t [std::borrow::Cow<'t, str>]);

    impl<'de> DeserializeSeed<'de> for Seek<'_> {
        type Value = Option<Value>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
            match self.0 {
                [] => serde::Deserialize::deserialize(d).map(Some),
                _ => d.deserialize_any(self),
            }
        }
    }

    /// Whether a key equals the token, without copying the key.
    struct KeyIs<'t>(&'t str);

    impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for KeyIs<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
            Ok(v == self.0)
        }
    }

    impl<'de> Visitor<'de> for Seek<'_> {
        type Value = Option<Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
            let (token, rest) = (&self.0[0], &self.0[1..]);
            let mut found = None;
            while let Some(hit) = map.next_key_seed(KeyIs(token))? {
                if hit && found.is_none() {
                    found = map.next_value_seed(Seek(rest))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
            // as serde_json's `pointer`: no sign, no leading zero
            let token = &self.0[0];
            let plain = !token.starts_with('+') && (token == "0" || !token.starts_with('0'));
            let index = token.parse::<usize>().ok().filter(|_| plain);
            let mut found = None;
            let mut i = 0;
            loop {
                let more = if Some(i) == index {
                    seq.next_element_seed(Seek(&self.0[1..]))?
                        .map(|v| found = v)
                } else {
                    seq.next_element::<IgnoredAny>()?.map(|_| ())
                };
                if more.is_none() {
                    return Ok(found);
                }
                i += 1;
            }
        }
        fn visit_bool<E>(self, _: bool) -> Result<Option<Value>, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Option<Value>, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Option<Value>, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Option<Value>, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Option<Value>, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<Value>, E> {
            Ok(None)
        }
    }
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Data({})", self.text)
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Data::try_from(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `data` of [`RecordPayload`]: the raw text of the value, for [`Data::from_text`].
fn record_data<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Data>, D::Error> {
    let raw: Option<Box<serde_json::value::RawValue>> = Option::deserialize(d)?;
    raw.map(|r| Data::from_text(r.into()).map_err(serde::de::Error::custom))
        .transpose()
}

/// A [`TxBody`] whose payload is a record, with the same fields and rules, for
/// [`TxBody::from_json`]'s one-pass parse.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordBody {
    chain_id: Hash,
    signer: PublicKey,
    nonce: u64,
    timestamp_ms: u64,
    payload: RecordPayload,
}

/// [`Payload::RecordEvent`] with its tag as a field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordPayload {
    #[serde(rename = "type")]
    _kind: RecordTag,
    event_type: String,
    entity_id: String,
    #[serde(default, deserialize_with = "record_data")]
    data: Option<Data>,
    data_hash: Hash,
}

/// The one tag [`RecordPayload`] accepts.
#[derive(Deserialize)]
enum RecordTag {
    #[serde(rename = "record_event")]
    RecordEvent,
}

impl From<RecordBody> for TxBody {
    fn from(r: RecordBody) -> Self {
        let p = r.payload;
        TxBody {
            chain_id: r.chain_id,
            signer: r.signer,
            nonce: r.nonce,
            timestamp_ms: r.timestamp_ms,
            payload: Payload::RecordEvent {
                event_type: p.event_type,
                entity_id: p.entity_id,
                data: p.data,
                data_hash: p.data_hash,
            },
        }
    }
}

/// The signed part of a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxBody {
    /// The chain this transaction is for: its genesis hash. Also part of the preimage prefix.
    pub chain_id: Hash,
    /// The signer's public key; must hold the writer role.
    pub signer: PublicKey,
    /// Per-signer sequence number: the first transaction of a signer has nonce 0, then +1 each.
    pub nonce: u64,
    /// The signer's clock when signing, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// What the transaction does.
    pub payload: Payload,
}

/// RFC 8785 canonical JSON of `v` (see [`crate::jcs`]). Errors: [`TxError::InvalidField`] if
/// it cannot be serialised or holds a non-finite number.
pub fn canonical_json<T: Serialize + ?Sized>(v: &T) -> Result<String, TxError> {
    crate::jcs::to_string(v).map_err(|e| invalid("body", e.to_string()))
}

/// SHA-256 of the canonical JSON text of `data`: the `data_hash` of a record.
pub fn data_hash(data: &Value) -> Result<Hash, TxError> {
    Ok(sha256(canonical_data(data)?.as_bytes()))
}

fn canonical_data(data: &Value) -> Result<String, TxError> {
    crate::jcs::value_to_string(data).map_err(|e| invalid("payload.data", e.to_string()))
}

/// Appends 32 bytes as 64 lowercase hex digits (as `Hash` and `PublicKey` serialise).
fn push_hex(out: &mut Vec<u8>, bytes: &[u8; 32]) {
    let at = out.len();
    out.resize(at + 64, 0);
    // 64 bytes of room for 32 bytes: cannot fail
    let _ = hex::encode_to_slice(bytes, &mut out[at..]);
}

/// Checks that every number in `v` is within the I-JSON range; the error names the path
/// (built only on failure, `payload.data.a[3]`).
fn check_safe_ints(v: &Value, path: &str) -> Result<(), TxError> {
    fn first_bad(v: &Value) -> Option<Vec<String>> {
        match v {
            Value::Number(n) => {
                let ok = if let Some(u) = n.as_u64() {
                    u <= MAX_SAFE_INTEGER
                } else if let Some(i) = n.as_i64() {
                    i.unsigned_abs() <= MAX_SAFE_INTEGER
                } else {
                    n.as_f64().is_some_and(f64::is_finite)
                };
                (!ok).then(Vec::new)
            }
            Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| {
                first_bad(x).map(|mut p| {
                    p.push(format!("[{i}]"));
                    p
                })
            }),
            Value::Object(o) => o.iter().find_map(|(k, x)| {
                first_bad(x).map(|mut p| {
                    p.push(format!(".{k}"));
                    p
                })
            }),
            _ => None,
        }
    }
    match first_bad(v) {
        None => Ok(()),
        Some(rev) => Err(TxError::InvalidField {
            field: rev
                .iter()
                .rev()
                .fold(path.to_string(), |acc, part| acc + part),
            reason: "number outside the I-JSON range ±(2^53−1)".into(),
        }),
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> TxError {
    TxError::InvalidField {
        field: field.into(),
        reason: reason.into(),
    }
}

fn check_entity(field: &str, e: &str) -> Result<(), TxError> {
    if e.is_empty() || e.len() > MAX_ENTITY_ID_BYTES {
        return Err(invalid(
            field,
            format!("must be 1–{MAX_ENTITY_ID_BYTES} bytes, got {}", e.len()),
        ));
    }
    if e.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_int(field: &str, v: u64) -> Result<(), TxError> {
    if v > MAX_SAFE_INTEGER {
        return Err(invalid(field, "must be at most 2^53−1 (I-JSON)"));
    }
    Ok(())
}

impl TxBody {
    /// Checks every rule that needs no chain state: integer ranges, string rules, and that
    /// `data` (when present) hashes to `data_hash`. Errors: [`TxError`] naming the field.
    pub fn validate(&self) -> Result<(), TxError> {
        self.validate_data().map(|_| ())
    }

    /// [`TxBody::validate`], returning the canonical `data` text (if present).
    fn validate_data(&self) -> Result<Option<&str>, TxError> {
        let mut data_text = None;
        check_int("nonce", self.nonce)?;
        check_int("timestamp_ms", self.timestamp_ms)?;
        match &self.payload {
            Payload::RecordEvent {
                event_type,
                entity_id,
                data,
                data_hash: claimed,
            } => {
                if event_type.is_empty()
                    || event_type.len() > MAX_EVENT_TYPE_BYTES
                    || !event_type
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
                {
                    return Err(invalid(
                        "payload.event_type",
                        format!("must be 1–{MAX_EVENT_TYPE_BYTES} characters of [A-Za-z0-9_.:-]"),
                    ));
                }
                check_entity("payload.entity_id", entity_id)?;
                if let Some(d) = data {
                    if !d.safe_ints {
                        check_safe_ints(d.value(), "payload.data")?;
                    }
                    let computed = d.hash();
                    data_text = Some(d.canonical());
                    if computed != *claimed {
                        return Err(TxError::DataHashMismatch {
                            computed,
                            claimed: *claimed,
                        });
                    }
                }
            }
            Payload::AnchorEvidence {
                entity_id,
                size_bytes,
                uri,
                ..
            } => {
                check_entity("payload.entity_id", entity_id)?;
                check_int("payload.size_bytes", *size_bytes)?;
                if let Some(u) = uri
                    && (u.is_empty() || u.len() > MAX_URI_BYTES || u.chars().any(char::is_control))
                {
                    return Err(invalid(
                        "payload.uri",
                        format!("must be 1–{MAX_URI_BYTES} bytes with no control characters"),
                    ));
                }
            }
            Payload::TokenTransfer { amount, .. } | Payload::TokenBurn { amount } => {
                call::validate_amount("payload.amount", *amount)?
            }
            Payload::TokenMint { amount, reason, .. } => {
                call::validate_amount("payload.amount", *amount)?;
                call::check_text("payload.reason", reason, call::MAX_NAME_BYTES, false)?;
            }
            Payload::TokenDelegate { .. } => {}
            Payload::GovPropose {
                title,
                description,
                voting_period_blocks,
                action,
                ..
            } => {
                call::check_text("payload.title", title, call::MAX_NAME_BYTES, false)?;
                call::check_text(
                    "payload.description",
                    description,
                    call::MAX_DESCRIPTION_BYTES,
                    true,
                )?;
                check_int("payload.voting_period_blocks", *voting_period_blocks)?;
                if let Some(a) = action {
                    a.validate("payload.action")?;
                }
            }
            Payload::GovVote { proposal, .. } | Payload::GovCancel { proposal } => {
                check_int("payload.proposal", *proposal)?
            }
            Payload::QaSetRule { rule } => rule.validate("payload.rule")?,
            Payload::QaSetRuleActive { name, .. } => {
                call::check_text("payload.name", name, call::MAX_NAME_BYTES, false)?
            }
        }
        Ok(data_text)
    }

    /// Validates the body and returns its canonical text with the size in bytes of its
    /// canonical `data` (0 if absent), computing the data text once for both.
    fn validated_text(&self) -> Result<(String, usize), TxError> {
        let data_text = self.validate_data()?;
        let text = self.canonical_text()?;
        Ok((text, data_text.map_or(0, str::len)))
    }

    /// The RFC 8785 text of this body. Records, the kind nearly every transaction is, are
    /// written directly (keys in order: `chain_id`, `nonce`, `payload` {`data`, `data_hash`,
    /// `entity_id`, `event_type`, `type`}, `signer`, `timestamp_ms`), with `data` copied from
    /// its canonical text; other kinds, and integers outside the I-JSON range, go through
    /// [`canonical_json`]. Both give the same bytes (tested). Errors: [`TxError::InvalidField`]
    /// if the body has no canonical form.
    pub fn canonical_text(&self) -> Result<String, TxError> {
        let Payload::RecordEvent {
            event_type,
            entity_id,
            data,
            data_hash,
        } = &self.payload
        else {
            return canonical_json(self);
        };
        if self.nonce > MAX_SAFE_INTEGER || self.timestamp_ms > MAX_SAFE_INTEGER {
            return canonical_json(self);
        }
        let data_text = data.as_ref().map(Data::canonical);
        let mut out = Vec::with_capacity(320 + data_text.map_or(0, str::len));
        out.extend_from_slice(b"{\"chain_id\":\"");
        push_hex(&mut out, &self.chain_id.0);
        out.extend_from_slice(b"\",\"nonce\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.nonce).as_bytes());
        out.extend_from_slice(b",\"payload\":{");
        if let Some(t) = data_text {
            out.extend_from_slice(b"\"data\":");
            out.extend_from_slice(t.as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(b"\"data_hash\":\"");
        push_hex(&mut out, &data_hash.0);
        out.extend_from_slice(b"\",\"entity_id\":");
        crate::jcs::write_str(&mut out, entity_id);
        out.extend_from_slice(b",\"event_type\":");
        crate::jcs::write_str(&mut out, event_type);
        out.extend_from_slice(b",\"type\":\"record_event\"},\"signer\":\"");
        push_hex(&mut out, &self.signer.0);
        out.extend_from_slice(b"\",\"timestamp_ms\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.timestamp_ms).as_bytes());
        out.push(b'}');
        String::from_utf8(out).map_err(|e| invalid("body", e.to_string()))
    }

    /// Parses a body text, checks it is canonical and valid. Errors: [`TxError`].
    pub fn parse_canonical(text: &str) -> Result<TxBody, TxError> {
        Self::parse_canonical_sized(text).map(|(body, _)| body)
    }

    /// Parses body JSON (any key order, not checked for canonical form), as the derived
    /// `Deserialize` does and with the same result. Records are parsed through `RecordBody`,
    /// which reads every field in one pass; the derived parser of the `type`-tagged
    /// [`Payload`] must buffer the whole payload first (canonical order puts `type` last), at
    /// about twice the cost. Anything else, and every error, goes through the derived parser,
    /// so errors are the derived parser's. Errors: the parser's error.
    pub fn from_json(text: &str) -> Result<TxBody, serde_json::Error> {
        match serde_json::from_str::<RecordBody>(text) {
            Ok(r) => Ok(r.into()),
            Err(_) => serde_json::from_str(text),
        }
    }

    /// [`TxBody::parse_canonical`], also returning the canonical `data` size in bytes.
    fn parse_canonical_sized(text: &str) -> Result<(TxBody, usize), TxError> {
        match Self::parse_canonical_record(text) {
            Some(parsed) => Ok(parsed),
            None => Self::parse_canonical_general(text),
        }
    }

    /// The fast path of [`TxBody::parse_canonical`]: a valid record body read in one pass over
    /// the only text [`TxBody::canonical_text`] can write for it (fields in canonical order,
    /// lowercase hex, integers in `0..=2^53−1`, `event_type` and `entity_id` without escapes,
    /// `data` absent or a non-null value [`crate::jcs::is_canonical_simple`] accepts), then
    /// checked by the same [`TxBody::validate`] rules. Anything else, including every invalid
    /// body, is `None`: the general path then parses it and gives its result or error, so
    /// this path changes the cost, never the answer (`tests::record_fast_path_agrees`).
    /// A 682-byte Openssh record: 0.72 µs here, 1.34 µs by the general path (this machine).
    fn parse_canonical_record(text: &str) -> Option<(TxBody, usize)> {
        let mut c = crate::jcs::Cursor::new(text);
        let field = |c: &mut crate::jcs::Cursor<'_>, name: &[u8]| c.literal(name).then_some(());
        field(&mut c, b"{\"chain_id\":")?;
        let chain_id = Hash(c.hex32()?);
        field(&mut c, b",\"nonce\":")?;
        let nonce = c.uint()?;
        field(&mut c, b",\"payload\":{")?;
        let data = if c.literal(b"\"data\":") {
            let t = c.simple_value(0).filter(|t| *t != "null")?;
            field(&mut c, b",")?;
            Some(Data {
                text: t.into(),
                value: std::sync::OnceLock::new(),
                safe_ints: true,
            })
        } else {
            None
        };
        field(&mut c, b"\"data_hash\":")?;
        let data_hash = Hash(c.hex32()?);
        field(&mut c, b",\"entity_id\":")?;
        let entity_id = c.plain_string()?.to_owned();
        field(&mut c, b",\"event_type\":")?;
        let event_type = c.plain_string()?.to_owned();
        field(&mut c, b",\"type\":\"record_event\"},\"signer\":")?;
        let signer = PublicKey(c.hex32()?);
        field(&mut c, b",\"timestamp_ms\":")?;
        let timestamp_ms = c.uint()?;
        field(&mut c, b"}")?;
        if !c.at_end() {
            return None;
        }
        let body = TxBody {
            chain_id,
            signer,
            nonce,
            timestamp_ms,
            payload: Payload::RecordEvent {
                event_type,
                entity_id,
                data,
                data_hash,
            },
        };
        let data_bytes = body.validate_data().ok()?.map_or(0, str::len);
        Some((body, data_bytes))
    }

    /// The general path of [`TxBody::parse_canonical_sized`]: any body kind, every error.
    fn parse_canonical_general(text: &str) -> Result<(TxBody, usize), TxError> {
        // The plain parser on the happy path; on failure, parse again to name the field.
        let body = TxBody::from_json(text).map_err(|_| {
            let de = &mut serde_json::Deserializer::from_str(text);
            match serde_path_to_error::deserialize::<_, TxBody>(de) {
                Err(e) => TxError::BodyJson {
                    path: e.path().to_string(),
                    reason: e.into_inner().to_string(),
                },
                Ok(_) => invalid("body", "rejected by the parser"),
            }
        })?;
        let (canon, data_bytes) = body.validated_text()?;
        if canon != text {
            let offset = canon
                .bytes()
                .zip(text.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(canon.len().min(text.len()));
            return Err(TxError::NonCanonical {
                offset,
                expected: canon,
            });
        }
        Ok((body, data_bytes))
    }
}

/// The signing preimage: [`TX_DOMAIN`] ‖ genesis hash ‖ body text.
pub fn signing_preimage(chain_id: &Hash, body_text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(TX_DOMAIN.len() + 32 + body_text.len());
    v.extend_from_slice(TX_DOMAIN);
    v.extend_from_slice(&chain_id.0);
    v.extend_from_slice(body_text.as_bytes());
    v
}

/// A signed transaction whose body is known to be canonical and valid. The signature is *not*
/// checked on construction (it is checked in batches by whoever admits the transaction).
/// Cheap to clone (shared). Serialises exactly as [`WireTx`].
#[derive(Debug, Clone)]
pub struct Transaction(std::sync::Arc<TxInner>);

/// Equal when the signed bytes are: the body is parsed from its text, so comparing the parsed
/// JSON again would only cost time.
impl PartialEq for Transaction {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
            || (self.0.id == other.0.id
                && self.0.signature == other.0.signature
                && self.0.body_text == other.0.body_text)
    }
}

impl Eq for Transaction {}

#[derive(Debug)]
struct TxInner {
    body: TxBody,
    body_text: String,
    signature: Signature,
    data_bytes: usize,
    /// SHA-256 of the preimage, computed once: ids are asked for on every path.
    id: Hash,
}

/// The wire form of a [`Transaction`]: the canonical body text and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireTx {
    /// JCS canonical JSON of the [`TxBody`].
    pub body: String,
    /// ed25519 signature over the signing preimage, 128 hex characters in JSON.
    pub signature: Signature,
}

impl WireTx {
    /// The id this transaction has if its body is for chain `chain_id`: SHA-256 of
    /// [`signing_preimage`]`(chain_id, body)`, without parsing the body. Equal to
    /// [`Transaction::id`] of the parsed transaction when the body's `chain_id` is `chain_id`;
    /// for a body of another chain it is the id of no valid transaction here.
    pub fn id_on(&self, chain_id: &Hash) -> Hash {
        sha256_parts(&[TX_DOMAIN, &chain_id.0, self.body.as_bytes()])
    }
}

impl Serialize for Transaction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("WireTx", 2)?;
        st.serialize_field("body", &self.0.body_text)?;
        st.serialize_field("signature", &self.0.signature)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Transaction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Transaction::try_from(WireTx::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<WireTx> for Transaction {
    type Error = TxError;
    fn try_from(w: WireTx) -> Result<Self, TxError> {
        let (body, data_bytes) = TxBody::parse_canonical_sized(&w.body)?;
        Ok(Transaction::new(body, w.body, w.signature, data_bytes))
    }
}

impl From<Transaction> for WireTx {
    fn from(t: Transaction) -> Self {
        WireTx {
            body: t.0.body_text.clone(),
            signature: t.0.signature,
        }
    }
}

impl Transaction {
    /// Validates `body`, canonicalises it and signs it for chain `body.chain_id`.
    /// Errors: [`TxError`].
    pub fn sign(body: TxBody, key: &SecretKey) -> Result<Self, TxError> {
        let (body_text, data_bytes) = body.validated_text()?;
        let signature = key.sign(&signing_preimage(&body.chain_id, &body_text));
        Ok(Transaction::new(body, body_text, signature, data_bytes))
    }

    /// Rebuilds a transaction this node checked in full before it stored it: parses the body
    /// but skips the canonical-form check, about half the cost of [`TryFrom<WireTx>`]. The
    /// id is still computed from the text, so altered bytes change the id and fail the block's
    /// `tx_root`, and the signature check fails as for any other transaction. Only for the
    /// node's own storage, never for input. Errors: [`TxError::BodyJson`] if the body does not
    /// parse.
    pub fn from_stored(w: WireTx) -> Result<Self, TxError> {
        let body = TxBody::from_json(&w.body).map_err(|e| TxError::BodyJson {
            path: String::new(),
            reason: e.to_string(),
        })?;
        let data_bytes = body.payload.data_bytes();
        Ok(Transaction::new(body, w.body, w.signature, data_bytes))
    }

    /// `data_bytes`: the canonical data size, computed once by validation rather than on every
    /// limit check.
    fn new(body: TxBody, body_text: String, signature: Signature, data_bytes: usize) -> Self {
        let id = sha256_parts(&[TX_DOMAIN, &body.chain_id.0, body_text.as_bytes()]);
        Transaction(std::sync::Arc::new(TxInner {
            body,
            body_text,
            signature,
            data_bytes,
            id,
        }))
    }

    /// Size in bytes of the canonical `data` of a record (0 if absent): what `max_data_bytes`
    /// limits.
    pub fn data_bytes(&self) -> usize {
        self.0.data_bytes
    }

    /// The parsed body.
    pub fn body(&self) -> &TxBody {
        &self.0.body
    }

    /// The canonical body text (what was signed, after the domain tag and chain id).
    pub fn body_text(&self) -> &str {
        &self.0.body_text
    }

    /// The signature.
    pub fn signature(&self) -> &Signature {
        &self.0.signature
    }

    /// The signer.
    pub fn signer(&self) -> &PublicKey {
        &self.0.body.signer
    }

    /// Encoded size in bytes as counted against `max_tx_bytes`: body text plus 64 signature bytes.
    pub fn size_bytes(&self) -> usize {
        self.0.body_text.len() + Signature::LEN
    }

    /// The chain the transaction is for.
    pub fn chain_id(&self) -> &Hash {
        &self.0.body.chain_id
    }

    /// The signing preimage: [`TX_DOMAIN`] ‖ `chain_id` ‖ body text.
    pub fn preimage(&self) -> Vec<u8> {
        signing_preimage(&self.0.body.chain_id, &self.0.body_text)
    }

    /// The transaction id: SHA-256(preimage). Independent of the signature bytes.
    pub fn id(&self) -> Hash {
        self.0.id
    }

    /// Verifies the signature (ZIP-215). Errors: [`TxError::Signature`].
    pub fn verify(&self) -> Result<(), TxError> {
        Ok(verify(
            &self.0.body.signer,
            &self.preimage(),
            &self.0.signature,
        )?)
    }

    /// Replaces the signature (tests and tooling only; the result may not verify).
    pub fn with_signature(&self, signature: Signature) -> Self {
        Transaction::new(
            self.0.body.clone(),
            self.0.body_text.clone(),
            signature,
            self.0.data_bytes,
        )
    }
}

/// Verifies many transactions' signatures in one batch (see [`crate::keys::verify_batch`]),
/// returning one result per transaction in order.
pub fn verify_transactions(txs: &[&Transaction]) -> Vec<Result<(), TxError>> {
    let items: Vec<_> = txs
        .iter()
        .map(|t| (t.0.body.signer, t.preimage(), t.0.signature))
        .collect();
    crate::keys::verify_batch(&items)
        .into_iter()
        .map(|r| r.map_err(TxError::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(data: Option<Value>) -> TxBody {
        let dh = data
            .as_ref()
            .map(|d| data_hash(d).unwrap())
            .unwrap_or(Hash([0xab; 32]));
        TxBody {
            chain_id: Hash([5; 32]),
            signer: SecretKey::from_seed(&[1; 32]).public_key(),
            nonce: 0,
            timestamp_ms: 1_700_000_000_000,
            payload: Payload::RecordEvent {
                event_type: "ssh_auth_failure".into(),
                entity_id: "LabSZ".into(),
                data: data.map(|d| Data::try_from(d).unwrap()),
                data_hash: dh,
            },
        }
    }

    #[test]
    fn canonical_body_has_sorted_keys_and_omits_absent_data() {
        let b = record(Some(json!({"user":"root","ip":"1.2.3.4","port":22})));
        let t = canonical_json(&b).unwrap();
        assert!(t.starts_with(r#"{"chain_id":"0505"#), "{t}");
        assert!(t.contains(r#","nonce":0,"payload":{"data":{"ip":"1.2.3.4","port":22,"user":"root"},"data_hash":""#), "{t}");
        let h = canonical_json(&record(None)).unwrap();
        assert!(!h.contains("\"data\""));
        assert_eq!(TxBody::parse_canonical(&t).unwrap(), b);
    }

    #[test]
    fn non_canonical_bodies_are_rejected_with_offset() {
        let b = record(None);
        let t = canonical_json(&b).unwrap();
        let spaced = t.replacen(':', ": ", 1);
        match TxBody::parse_canonical(&spaced) {
            Err(TxError::NonCanonical { offset, expected }) => {
                assert_eq!(expected, t);
                assert_eq!(offset, t.find(':').unwrap() + 1);
            }
            other => panic!("{other:?}"),
        }
        // explicit null for an absent field is not canonical either
        let nulled = t.replacen("\"data_hash\"", "\"data\":null,\"data_hash\"", 1);
        assert!(matches!(
            TxBody::parse_canonical(&nulled),
            Err(TxError::NonCanonical { .. })
        ));
        // 1.0 is written 1 in JCS
        let d = record(Some(json!({"x": 1.5})));
        let dt = canonical_json(&d).unwrap().replace("1.5", "1.50");
        assert!(TxBody::parse_canonical(&dt).is_err());
    }

    #[test]
    fn malformed_unknown_kind_and_unknown_field_name_the_problem() {
        let e = TxBody::parse_canonical("{\"nonce\":").unwrap_err();
        assert!(matches!(e, TxError::BodyJson { .. }), "{e}");
        let t = canonical_json(&record(None))
            .unwrap()
            .replace("record_event", "mint_gold");
        let e = TxBody::parse_canonical(&t).unwrap_err().to_string();
        assert!(e.contains("unknown variant `mint_gold`"), "{e}");
        let t = canonical_json(&record(None)).unwrap().replacen(
            "{\"chain_id\"",
            "{\"a_extra\":1,\"chain_id\"",
            1,
        );
        let e = TxBody::parse_canonical(&t).unwrap_err().to_string();
        assert!(e.contains("unknown field `a_extra`"), "{e}");
    }

    #[test]
    fn field_rules() {
        let mut b = record(Some(json!({"n": 9007199254740992u64})));
        if let Payload::RecordEvent { data_hash: dh, .. } = &mut b.payload {
            *dh = data_hash(&json!({"n": 9007199254740992u64})).unwrap();
        }
        assert!(
            matches!(b.validate(), Err(TxError::InvalidField { field, .. }) if field == "payload.data.n")
        );
        let mut b = record(Some(json!({"a": 1})));
        if let Payload::RecordEvent { data_hash, .. } = &mut b.payload {
            data_hash.0[0] ^= 1;
        }
        assert!(matches!(
            b.validate(),
            Err(TxError::DataHashMismatch { .. })
        ));
        let mut b = record(None);
        if let Payload::RecordEvent { event_type, .. } = &mut b.payload {
            *event_type = "bad type".into();
        }
        assert!(
            matches!(b.validate(), Err(TxError::InvalidField { field, .. }) if field == "payload.event_type")
        );
        let mut b = record(None);
        b.nonce = MAX_SAFE_INTEGER + 1;
        assert!(
            matches!(b.validate(), Err(TxError::InvalidField { field, .. }) if field == "nonce")
        );
    }

    #[test]
    fn parsed_data_is_kept_as_text_and_checked_like_a_value() {
        // Nearly every record: canonical with small integers, kept unparsed until asked.
        let b = record(Some(json!({"ip": "1.2.3.4", "n": [1, -2], "s": "a\nb"})));
        let parsed = TxBody::parse_canonical(&canonical_json(&b).unwrap()).unwrap();
        let Payload::RecordEvent { data: Some(d), .. } = &parsed.payload else {
            panic!("{parsed:?}")
        };
        assert!(d.safe_ints && d.value.get().is_none(), "{d:?}");
        assert_eq!(
            d.value(),
            &json!({"ip": "1.2.3.4", "n": [1, -2], "s": "a\nb"})
        );
        assert_eq!(parsed, b);
        // Fractions take the full path and are accepted when canonical.
        let b = record(Some(json!({"x": 1.5})));
        assert_eq!(
            TxBody::parse_canonical(&canonical_json(&b).unwrap()).unwrap(),
            b
        );
        // An integer outside the I-JSON range is named, whichever way the data arrived.
        let v = json!({"n": 9007199254740992u64});
        let mut b = record(Some(v.clone()));
        if let Payload::RecordEvent { data_hash: dh, .. } = &mut b.payload {
            *dh = data_hash(&v).unwrap();
        }
        let e = TxBody::parse_canonical(&canonical_json(&b).unwrap()).unwrap_err();
        assert!(
            matches!(&e, TxError::InvalidField { field, .. } if field == "payload.data.n"),
            "{e}"
        );
    }

    /// Every pointer into a value, and some that miss, found alike in the text and the tree.
    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    pointers(
                        x,
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    )
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    pointers(x, format!("{at}/{i}"), out)
                }
            }
            _ => {}
        }
        for miss in ["/nope", "/0", "/01", "/+1", "/-", "/", "/1/a"] {
            out.push(format!("{at}{miss}"));
        }
    }

    proptest::proptest! {
        #[test]
        fn pointer_reads_the_text_as_value_pointer_reads_the_tree(
            v in json_value(),
        ) {
            let text = crate::jcs::value_to_string(&v).unwrap();
            let unparsed = Data { text: text.into(), value: std::sync::OnceLock::new(), safe_ints: false };
            let mut ps = vec!["no-slash".to_string()];
            pointers(&v, String::new(), &mut ps);
            // one reader for all the pointers: its member index is built once, then reused
            let mut reader = unparsed.reader();
            for p in ps {
                proptest::prop_assert_eq!(unparsed.pointer(&p), v.pointer(&p).cloned(), "{}", p);
                proptest::prop_assert_eq!(reader.get(&p), v.pointer(&p).cloned(), "reader {}", p);
            }
            proptest::prop_assert!(unparsed.value.get().is_none());
        }
    }

    /// Byte edits a client could make to a canonical record text: `(kind, position, byte)`.
    fn edit(text: &str, (kind, at, byte): (u8, usize, u8)) -> Option<String> {
        let mut b = text.as_bytes().to_vec();
        let at = at % (b.len() + 1);
        match kind {
            0 => return Some(text.to_string()),
            1 if at < b.len() => b[at] = byte,
            2 => b.insert(at, byte),
            3 if at < b.len() => {
                b.remove(at);
            }
            4 if at < b.len() => b[at] = b[at].to_ascii_uppercase(),
            _ => return None,
        }
        String::from_utf8(b).ok()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// The one-pass record reader returns a body only where the general parser returns
        /// the same body and data size, and it reads every plain canonical record.
        #[test]
        fn record_fast_path_agrees(
            data in proptest::option::of(json_value()),
            entity in proptest::prop_oneof![
                3 => "[a-zA-Z0-9:é ]{1,6}",
                1 => "[a-z\"\\\\\u{1}\u{7f}]{0,3}",
            ],
            event_type in proptest::sample::select(vec!["ssh_auth_failure", "a.b:c-d", "x", "", "bad type"]),
            nonce in proptest::prop_oneof![3 => 0u64..1000, 1 => (1u64 << 53) - 2..(1 << 53) + 2],
            timestamp_ms in proptest::prop_oneof![
                3 => 1_700_000_000_000u64..1_800_000_000_000,
                1 => proptest::prelude::any::<u64>(),
            ],
            right_hash in proptest::bool::weighted(0.8),
            edit_at in (
                proptest::prop_oneof![proptest::strategy::Just(0u8), 1u8..5],
                proptest::prelude::any::<usize>(),
                proptest::sample::select(b"\"\\,:{}[]0129afAF -n.e\x01".to_vec()),
            ),
        ) {
            let data = data.map(|d| Data::try_from(d).unwrap());
            let simple_data = data.as_ref().is_none_or(|d| crate::jcs::is_canonical_simple(d.canonical()));
            let data_hash = match (&data, right_hash) {
                (Some(d), true) => d.hash(),
                _ => Hash([0xab; 32]),
            };
            let body = TxBody {
                chain_id: Hash([5; 32]),
                signer: SecretKey::from_seed(&[1; 32]).public_key(),
                nonce,
                timestamp_ms,
                payload: Payload::RecordEvent {
                    event_type: event_type.into(),
                    entity_id: entity.clone(),
                    data,
                    data_hash,
                },
            };
            let Ok(canonical) = canonical_json(&body) else { return Ok(()) };
            let Some(text) = edit(&canonical, edit_at) else { return Ok(()) };
            let general = TxBody::parse_canonical_general(&text);
            match TxBody::parse_canonical_record(&text) {
                Some(fast) => proptest::prop_assert_eq!(Ok(fast), general, "{}", text),
                None => {
                    let plain = !entity.contains(['"', '\\', '\u{1}']) && simple_data;
                    proptest::prop_assert!(
                        !(edit_at.0 == 0 && plain && general.is_ok()),
                        "a plain valid record missed the fast path: {}", text
                    );
                }
            }
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let key = prop::sample::select(vec![
            "a", "b", "0", "1", "a/b", "m~n", "", "é", "q\"t", "ab",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|i| json!(i)),
            Just(json!(1.5)),
            "[a-z\\\"]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..4).prop_map(|kv| Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    #[test]
    fn from_stored_skips_only_the_canonical_check() {
        let sk = SecretKey::from_seed(&[1; 32]);
        let tx = Transaction::sign(record(Some(json!({"k": [1, "v"]}))), &sk).unwrap();
        let back = Transaction::from_stored(WireTx::from(tx.clone())).unwrap();
        assert_eq!(back, tx);
        assert_eq!((back.id(), back.data_bytes()), (tx.id(), tx.data_bytes()));
        // the same body with a space: input is refused, stored bytes decode, with another id
        let spaced = WireTx {
            body: tx.body_text().replacen(':', ": ", 1),
            signature: *tx.signature(),
        };
        assert!(matches!(
            Transaction::try_from(spaced.clone()),
            Err(TxError::NonCanonical { .. })
        ));
        let stored = Transaction::from_stored(spaced).unwrap();
        assert_ne!(stored.id(), tx.id());
        assert!(stored.verify().is_err());
        let garbage = WireTx {
            body: "{".into(),
            signature: *tx.signature(),
        };
        assert!(matches!(
            Transaction::from_stored(garbage),
            Err(TxError::BodyJson { .. })
        ));
    }

    #[test]
    fn id_ignores_signature_and_wire_round_trips() {
        let sk = SecretKey::from_seed(&[1; 32]);
        let tx = Transaction::sign(record(Some(json!({"k":"v"}))), &sk).unwrap();
        assert!(tx.verify().is_ok());
        // signed over another chain's preimage: rejected here
        let elsewhere = sk.sign(&signing_preimage(&Hash([6; 32]), tx.body_text()));
        assert!(tx.clone().with_signature(elsewhere).verify().is_err());
        let forged = tx.clone().with_signature(Signature([0; 64]));
        assert_eq!(forged.id(), tx.id());
        assert!(forged.verify().is_err());
        assert_eq!(tx.id(), crate::bytes::sha256(&tx.preimage()));
        let j = serde_json::to_string(&tx).unwrap();
        assert_eq!(serde_json::from_str::<Transaction>(&j).unwrap(), tx);
        let b = crate::codec::encode(&tx).unwrap();
        assert_eq!(crate::codec::decode::<Transaction>(&b).unwrap(), tx);
        let res = verify_transactions(&[&tx, &forged, &tx]);
        assert_eq!(
            res.iter().map(|r| r.is_ok()).collect::<Vec<_>>(),
            vec![true, false, true]
        );
    }
}
