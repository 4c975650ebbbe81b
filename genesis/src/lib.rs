//! The genesis file: format, validation, the genesis block and the genesis hash.
//!
//! A genesis file is JSON (docs/genesis.md):
//! `{ chain_name, genesis_time_ms, consensus: { round_robin: {..} }, accounts: [..], limits: {..} }`.
//! Omitted limits take their defaults. Every validation error names the field.
//!
//! The genesis block (height 0) has no transactions, no proposer and no seal; its `state_root`
//! is SHA-256(`"auditchain:genesis:v1"` ‖ 0x00 ‖ RFC 8785 canonical JSON of the genesis with
//! defaults filled in), so every field of the file is committed to. The **genesis hash** (the
//! chain id in every transaction) is the hash of that header.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::collections::BTreeSet;
use std::path::Path;

use auditchain_consensus::RoundRobinConfig;
use auditchain_consensus::pow::PowConfig;
use auditchain_contracts::{ContractsConfig, MemState, genesis_state};
use auditchain_primitives::block::{ConsensusFields, HEADER_VERSION};
use auditchain_primitives::tx::{MAX_SAFE_INTEGER, canonical_json};
use auditchain_primitives::{Block, Hash, Header, PublicKey, Signature, merkle, sha256};
use serde::{Deserialize, Serialize};

/// Domain tag of the genesis state commitment (followed by one 0x00 byte).
pub const GENESIS_DOMAIN: &[u8] = b"auditchain:genesis:v1\x00";

/// A genesis file problem; `field` is a JSON path such as `accounts[2].public_key`.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("genesis {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JSON does not parse into a genesis (syntax, missing, unknown or mistyped field).
    #[error("genesis: {field}: {reason}")]
    Parse {
        /// Path of the offending field.
        field: String,
        /// What was wrong.
        reason: String,
    },
    /// A field has an invalid value.
    #[error("genesis: {field}: {reason}")]
    Invalid {
        /// Path of the offending field.
        field: String,
        /// What was wrong.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> GenesisError {
    GenesisError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

pub use auditchain_primitives::call::Role;

/// An account in the genesis state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The account's ed25519 public key (hex).
    pub public_key: PublicKey,
    /// Its roles (no duplicates).
    pub roles: Vec<Role>,
    /// Initial quality-token balance, tokens (default 0).
    #[serde(default)]
    pub balance: u64,
}

/// The consensus section: exactly one engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ConsensusConfig {
    /// Round-robin proof of authority with BFT finality.
    RoundRobin(RoundRobinConfig),
    /// Proof of work among permissioned miners.
    Pow(PowConfig),
}

/// Size and admission limits; every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most transactions in one block (default 20,000).
    pub max_block_txs: u32,
    /// Most bytes of transactions (body + signature) in one block (default 16 MiB).
    pub max_block_bytes: u64,
    /// Largest transaction, body text + 64 signature bytes (default 64 KiB).
    pub max_tx_bytes: u32,
    /// Largest canonical `data` of a record, bytes (default 32 KiB).
    pub max_data_bytes: u32,
    /// Most transactions waiting in a node's mempool (default 200,000).
    pub mempool_max_txs: u32,
    /// Most bytes waiting in a node's mempool (default 256 MiB).
    pub mempool_max_bytes: u64,
    /// Most transactions of one signer in the mempool; also how far ahead of the next expected
    /// nonce a submitted nonce may be (default 50,000).
    pub mempool_max_per_signer: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_block_txs: 20_000,
            max_block_bytes: 16 << 20,
            max_tx_bytes: 64 << 10,
            max_data_bytes: 32 << 10,
            mempool_max_txs: 200_000,
            mempool_max_bytes: 256 << 20,
            mempool_max_per_signer: 50_000,
        }
    }
}

/// Accounts for `sealers` (validator role), `writers` and `admins`; a key listed several times
/// holds all its roles.
fn accounts_with_roles(
    sealers: &[PublicKey],
    writers: &[PublicKey],
    admins: &[PublicKey],
) -> Vec<Account> {
    let mut accounts: Vec<Account> = Vec::new();
    for (keys, role) in [
        (sealers, Role::Validator),
        (writers, Role::Writer),
        (admins, Role::Admin),
    ] {
        for pk in keys {
            match accounts.iter_mut().find(|a| a.public_key == *pk) {
                Some(a) if a.roles.contains(&role) => {}
                Some(a) => a.roles.push(role),
                None => accounts.push(Account {
                    public_key: *pk,
                    roles: vec![role],
                    balance: 0,
                }),
            }
        }
    }
    accounts
}

/// A parsed, validated genesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Human name of the chain: 1–64 characters of `[a-z0-9_-]`.
    pub chain_name: String,
    /// Time of the genesis block, ms since the Unix epoch.
    pub genesis_time_ms: u64,
    /// The consensus engine and its parameters.
    pub consensus: ConsensusConfig,
    /// Initial accounts with roles and balances.
    pub accounts: Vec<Account>,
    /// Limits (defaults where omitted).
    #[serde(default)]
    pub limits: Limits,
    /// Native contract parameters and built-in QA rules (the seed's defaults where omitted).
    #[serde(default)]
    pub contracts: ContractsConfig,
}

impl Genesis {
    /// A round-robin genesis with default limits and a 10 s empty-block interval: `validators`
    /// (in proposer order) get the validator role, `writers` the writer role, `admins` the admin
    /// role; a key listed several times holds all its roles. Not validated: call
    /// [`Genesis::validate`].
    pub fn new_round_robin(
        chain_name: &str,
        genesis_time_ms: u64,
        block_time_ms: u64,
        validators: &[PublicKey],
        writers: &[PublicKey],
        admins: &[PublicKey],
    ) -> Genesis {
        Genesis {
            chain_name: chain_name.to_string(),
            genesis_time_ms,
            consensus: ConsensusConfig::RoundRobin(RoundRobinConfig {
                block_time_ms,
                max_empty_interval_ms: 10_000,
                max_future_drift_ms: 5_000,
                proposal_timeout_ms: 1_000,
                vote_timeout_ms: 500,
                validators: validators.to_vec(),
            }),
            accounts: accounts_with_roles(validators, writers, admins),
            limits: Limits::default(),
            contracts: ContractsConfig::default(),
        }
    }

    /// A proof-of-work genesis with default limits: `pow.miners` get the validator role,
    /// `writers` the writer role, `admins` the admin role. Not validated: call
    /// [`Genesis::validate`].
    pub fn new_pow(
        chain_name: &str,
        genesis_time_ms: u64,
        pow: PowConfig,
        writers: &[PublicKey],
        admins: &[PublicKey],
    ) -> Genesis {
        Genesis {
            chain_name: chain_name.to_string(),
            genesis_time_ms,
            accounts: accounts_with_roles(&pow.miners, writers, admins),
            consensus: ConsensusConfig::Pow(pow),
            limits: Limits::default(),
            contracts: ContractsConfig::default(),
        }
    }

    /// Parses and validates genesis JSON. Errors: [`GenesisError`] naming the field.
    pub fn from_json(text: &str) -> Result<Self, GenesisError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let g: Genesis = serde_path_to_error::deserialize(de).map_err(|e| GenesisError::Parse {
            field: e.path().to_string(),
            reason: e.into_inner().to_string(),
        })?;
        g.validate()?;
        Ok(g)
    }

    /// Reads, parses and validates a genesis file. Errors: [`GenesisError`].
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// Pretty JSON with every default written out.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every rule. Errors: [`GenesisError::Invalid`] naming the first bad field.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let name = &self.chain_name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "chain_name",
                "must be 1–64 characters of [a-z0-9_-]",
            ));
        }
        if self.genesis_time_ms > MAX_SAFE_INTEGER {
            return Err(invalid("genesis_time_ms", "must be at most 2^53−1"));
        }
        let mut seen = BTreeSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            if !seen.insert(a.public_key) {
                return Err(invalid(
                    format!("accounts[{i}].public_key"),
                    format!("duplicate account {}", a.public_key),
                ));
            }
            let roles: BTreeSet<_> = a.roles.iter().collect();
            if roles.len() != a.roles.len() {
                return Err(invalid(format!("accounts[{i}].roles"), "duplicate role"));
            }
        }
        match &self.consensus {
            ConsensusConfig::RoundRobin(rr) => {
                let f = "consensus.round_robin";
                if rr.block_time_ms < 10 {
                    return Err(invalid(format!("{f}.block_time_ms"), "must be at least 10"));
                }
                if rr.max_empty_interval_ms < rr.block_time_ms {
                    return Err(invalid(
                        format!("{f}.max_empty_interval_ms"),
                        "must be at least block_time_ms",
                    ));
                }
                for (name, v) in [
                    ("proposal_timeout_ms", rr.proposal_timeout_ms),
                    ("vote_timeout_ms", rr.vote_timeout_ms),
                ] {
                    if !(10..=600_000).contains(&v) {
                        return Err(invalid(format!("{f}.{name}"), "must be 10 to 600000"));
                    }
                }
                self.check_sealers(f, "validators", &rr.validators)?;
            }
            ConsensusConfig::Pow(p) => {
                let f = "consensus.pow";
                for (name, v, min) in [
                    ("initial_difficulty", p.initial_difficulty, 1),
                    ("target_block_time_ms", p.target_block_time_ms, 10),
                    ("retarget_interval", p.retarget_interval, 1),
                    ("finality_depth", p.finality_depth, 1),
                ] {
                    if v < min {
                        return Err(invalid(
                            format!("{f}.{name}"),
                            format!("must be at least {min}"),
                        ));
                    }
                }
                self.check_sealers(f, "miners", &p.miners)?;
            }
        }
        let l = &self.limits;
        let positive = [
            ("max_block_txs", u64::from(l.max_block_txs)),
            ("max_block_bytes", l.max_block_bytes),
            ("max_tx_bytes", u64::from(l.max_tx_bytes)),
            ("max_data_bytes", u64::from(l.max_data_bytes)),
            ("mempool_max_txs", u64::from(l.mempool_max_txs)),
            ("mempool_max_bytes", l.mempool_max_bytes),
            (
                "mempool_max_per_signer",
                u64::from(l.mempool_max_per_signer),
            ),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(invalid(format!("limits.{name}"), "must be greater than 0"));
            }
        }
        if u64::from(l.max_tx_bytes) > l.max_block_bytes {
            return Err(invalid(
                "limits.max_tx_bytes",
                "must not exceed max_block_bytes",
            ));
        }
        if l.max_data_bytes >= l.max_tx_bytes {
            return Err(invalid(
                "limits.max_data_bytes",
                "must be below max_tx_bytes",
            ));
        }
        if u64::from(l.max_tx_bytes) > l.mempool_max_bytes {
            return Err(invalid(
                "limits.mempool_max_bytes",
                "must be at least max_tx_bytes",
            ));
        }
        let total: u128 = self.accounts.iter().map(|a| u128::from(a.balance)).sum();
        if total > u128::from(MAX_SAFE_INTEGER) {
            return Err(invalid(
                "accounts",
                "balances sum to more than the token supply cap 2^53−1",
            ));
        }
        self.contracts
            .validate()
            .map_err(|(field, reason)| invalid(field, reason))?;
        Ok(())
    }

    /// The sealer list (validators or miners): non-empty, no duplicates, each an account with
    /// the validator role.
    fn check_sealers(&self, f: &str, name: &str, keys: &[PublicKey]) -> Result<(), GenesisError> {
        if keys.is_empty() {
            return Err(invalid(format!("{f}.{name}"), "must not be empty"));
        }
        let mut vs = BTreeSet::new();
        for (i, v) in keys.iter().enumerate() {
            if !vs.insert(v) {
                return Err(invalid(
                    format!("{f}.{name}[{i}]"),
                    format!("duplicate key {v}"),
                ));
            }
            if !self.has_role(v, Role::Validator) {
                return Err(invalid(
                    format!("{f}.{name}[{i}]"),
                    format!("{v} is not an account with the validator role"),
                ));
            }
        }
        Ok(())
    }

    /// The contract state before block 1 (roles, balances, parameters, rules, validator set).
    /// Errors: balances summing past the supply cap, as text (also caught by `validate`).
    pub fn initial_state(&self) -> Result<MemState, String> {
        let accounts: Vec<_> = self
            .accounts
            .iter()
            .map(|a| (a.public_key, a.roles.clone(), a.balance))
            .collect();
        genesis_state(&self.contracts, &accounts, self.validators())
    }

    /// Whether `key` holds `role` at genesis.
    pub fn has_role(&self, key: &PublicKey, role: Role) -> bool {
        self.accounts
            .iter()
            .any(|a| a.public_key == *key && a.roles.contains(&role))
    }

    /// The round-robin configuration, if this is a round-robin chain.
    pub fn round_robin(&self) -> Option<&RoundRobinConfig> {
        match &self.consensus {
            ConsensusConfig::RoundRobin(rr) => Some(rr),
            ConsensusConfig::Pow(_) => None,
        }
    }

    /// The round-robin configuration for changes (tests, tools), if this is a round-robin chain.
    pub fn round_robin_mut(&mut self) -> Option<&mut RoundRobinConfig> {
        match &mut self.consensus {
            ConsensusConfig::RoundRobin(rr) => Some(rr),
            ConsensusConfig::Pow(_) => None,
        }
    }

    /// The proof-of-work configuration, if this is a proof-of-work chain.
    pub fn pow(&self) -> Option<&PowConfig> {
        match &self.consensus {
            ConsensusConfig::Pow(p) => Some(p),
            ConsensusConfig::RoundRobin(_) => None,
        }
    }

    /// The keys that may seal blocks, in order: the validator set (proposer order) of a
    /// round-robin chain, or the miners of a proof-of-work chain. They are also the network
    /// identities allowed to connect.
    pub fn validators(&self) -> &[PublicKey] {
        match &self.consensus {
            ConsensusConfig::RoundRobin(rr) => &rr.validators,
            ConsensusConfig::Pow(p) => &p.miners,
        }
    }

    /// RFC 8785 canonical JSON of the genesis (defaults filled in).
    pub fn canonical_json(&self) -> String {
        canonical_json(self).unwrap_or_default()
    }

    /// The genesis block: height 0, no transactions, empty roots, zero proposer and seal.
    pub fn block(&self) -> Block {
        let state = auditchain_primitives::bytes::sha256_parts(&[
            GENESIS_DOMAIN,
            self.canonical_json().as_bytes(),
        ]);
        let empty = merkle::empty_root();
        Block {
            header: Header {
                version: HEADER_VERSION,
                height: 0,
                parent_hash: Hash::ZERO,
                timestamp_ms: self.genesis_time_ms,
                proposer: PublicKey([0; 32]),
                tx_root: empty,
                tx_count: 0,
                history_root: empty,
                history_size: 0,
                state_root: state,
                last_commit_hash: Hash::ZERO,
                consensus: ConsensusFields::Genesis,
            },
            seal: Signature([0; 64]),
            txs: Vec::new(),
        }
    }

    /// The genesis hash: the hash of the genesis block header. This is the chain id.
    pub fn hash(&self) -> Hash {
        self.block().hash()
    }

    /// SHA-256 of the canonical genesis JSON (for display and comparison).
    pub fn document_digest(&self) -> Hash {
        sha256(self.canonical_json().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditchain_primitives::SecretKey;

    fn sample() -> String {
        let v = SecretKey::from_seed(&[1; 32]).public_key();
        let w = SecretKey::from_seed(&[2; 32]).public_key();
        format!(
            r#"{{"chain_name":"test","genesis_time_ms":1700000000000,
            "consensus":{{"round_robin":{{"block_time_ms":500,"validators":["{v}"]}}}},
            "accounts":[{{"public_key":"{v}","roles":["validator"]}},
                        {{"public_key":"{w}","roles":["writer","admin"],"balance":5}}]}}"#
        )
    }

    #[test]
    fn contracts_section_errors_name_the_field() {
        let base = sample();
        let with = |contracts: &str| {
            base.replacen(
                "\"chain_name\"",
                &format!("\"contracts\":{contracts},\"chain_name\""),
                1,
            )
        };
        let rule =
            r#"{"name":"r","active":true,"conditions":{},"actions":[{"type":"mint","amount":1}]}"#;
        assert!(Genesis::from_json(&with(&format!(r#"{{"qa_rules":[{rule}]}}"#))).is_ok());
        let e = err(&with(&format!(r#"{{"qa_rules":[{rule},{rule}]}}"#)));
        assert!(
            e.contains("contracts.qa_rules[1]") && e.contains("duplicate"),
            "{e}"
        );
        let bad_ptr = rule.replace("{}", r#"{"fields":[{"pointer":"x","op":"eq","value":1}]}"#);
        let e = err(&with(&format!(r#"{{"qa_rules":[{bad_ptr}]}}"#)));
        assert!(e.contains("JSON pointer"), "{e}");
        let e = err(&with(
            r#"{"governance":{"validator_change_delay_blocks":1}}"#,
        ));
        assert!(e.contains("validator_change_delay_blocks"), "{e}");
        let e = err(&with(r#"{"rewards":{"window_blocks":0}}"#));
        assert!(e.contains("contracts.rewards.window_blocks"), "{e}");
        let e = err(&with(r#"{"nope":1}"#));
        assert!(e.contains("nope"), "{e}");
        let big = base.replace("\"balance\":5", "\"balance\":9007199254740991");
        let v = SecretKey::from_seed(&[1; 32]).public_key();
        let over = big.replace(
            &format!("{{\"public_key\":\"{v}\",\"roles\":[\"validator\"]}}"),
            &format!("{{\"public_key\":\"{v}\",\"roles\":[\"validator\"],\"balance\":1}}"),
        );
        assert!(Genesis::from_json(&big).is_ok());
        assert!(err(&over).contains("supply cap"), "{}", err(&over));
    }

    #[test]
    fn round_robin_constructor_merges_roles() {
        let v = SecretKey::from_seed(&[1; 32]).public_key();
        let w = SecretKey::from_seed(&[2; 32]).public_key();
        let g = Genesis::new_round_robin("x", 1, 100, &[v], &[w, v], &[w]);
        g.validate().unwrap();
        assert_eq!(g.accounts.len(), 2);
        assert!(g.has_role(&v, Role::Validator) && g.has_role(&v, Role::Writer));
        assert!(g.has_role(&w, Role::Admin) && !g.has_role(&w, Role::Validator));
    }

    #[test]
    fn parses_with_defaults_and_hash_is_stable() {
        let g = Genesis::from_json(&sample()).unwrap();
        assert_eq!(g.limits, Limits::default());
        assert_eq!(g.round_robin().unwrap().max_empty_interval_ms, 10_000);
        assert!(g.pow().is_none());
        let again = Genesis::from_json(&g.to_json_pretty()).unwrap();
        assert_eq!(
            again.hash(),
            g.hash(),
            "writing defaults out keeps the hash"
        );
        let mut other = g.clone();
        other.limits.max_block_txs += 1;
        assert_ne!(other.hash(), g.hash(), "every field is committed to");
        assert!(g.has_role(&SecretKey::from_seed(&[2; 32]).public_key(), Role::Writer));
    }

    fn err(text: &str) -> String {
        Genesis::from_json(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        let s = sample();
        assert!(
            err(&s.replace("\"chain_name\":\"test\",", "")).contains("missing field `chain_name`")
        );
        assert!(err(&s.replace("\"test\"", "\"Bad Name\"")).contains("chain_name"));
        let e = err(&s.replace("\"writer\"", "\"owner\""));
        assert!(e.contains("accounts[1].roles[0]"), "{e}");
        let e = err(&s.replace("\"balance\":5", "\"balance\":-5"));
        assert!(e.contains("accounts[1].balance"), "{e}");
        let e = err(&s.replace("\"block_time_ms\":500", "\"block_time_ms\":500,\"speed\":1"));
        assert!(
            e.contains("consensus.round_robin") && e.contains("speed"),
            "{e}"
        );
        let e = err(&s.replace("[\"validator\"]", "[\"writer\"]"));
        assert!(e.contains("consensus.round_robin.validators[0]"), "{e}");
        let e = err(&s.replace(
            "\"accounts\"",
            "\"limits\":{\"max_block_txs\":0},\"accounts\"",
        ));
        assert!(
            e.contains("limits.max_block_txs: must be greater than 0"),
            "{e}"
        );
        let e = err(&s.replace("1700000000000", "\"soon\""));
        assert!(e.contains("genesis_time_ms"), "{e}");
        assert!(err("{").contains("genesis"));
    }

    #[test]
    fn proof_of_work_genesis_parses_and_validates() {
        let m = SecretKey::from_seed(&[1; 32]).public_key();
        let w = SecretKey::from_seed(&[2; 32]).public_key();
        let text = format!(
            r#"{{"chain_name":"pow","genesis_time_ms":1700000000000,
            "consensus":{{"pow":{{"miners":["{m}"],"initial_difficulty":1000,
              "target_block_time_ms":1000,"retarget_interval":10,"finality_depth":6}}}},
            "accounts":[{{"public_key":"{m}","roles":["validator"]}},
                        {{"public_key":"{w}","roles":["writer"]}}]}}"#
        );
        let g = Genesis::from_json(&text).unwrap();
        let p = g.pow().expect("pow");
        assert_eq!(p.max_future_drift_ms, 5_000, "default");
        assert_eq!(g.validators(), &[m]);
        assert!(g.round_robin().is_none());
        let again = Genesis::new_pow("pow", 1_700_000_000_000, p.clone(), &[w], &[]);
        assert_eq!(again.hash(), g.hash(), "constructor and file agree");
        for (from, to, field) in [
            (
                "\"initial_difficulty\":1000",
                "\"initial_difficulty\":0",
                "consensus.pow.initial_difficulty",
            ),
            (
                "\"finality_depth\":6",
                "\"finality_depth\":0",
                "consensus.pow.finality_depth",
            ),
            (
                "\"target_block_time_ms\":1000",
                "\"target_block_time_ms\":1",
                "consensus.pow.target_block_time_ms",
            ),
            ("[\"validator\"]", "[\"writer\"]", "consensus.pow.miners[0]"),
        ] {
            let e = err(&text.replace(from, to));
            assert!(e.contains(field), "{field}: {e}");
        }
        let e = err(&text.replace(&format!("[\"{m}\"]"), "[]"));
        assert!(e.contains("consensus.pow.miners: must not be empty"), "{e}");
    }
}
