//! RPC errors and their JSON-RPC codes (docs/rpc.md §Errors).
//!
//! Codes: `-32602` invalid params (jsonrpsee, for JSON that does not fit a method's params) and
//! the application codes below. Every message names the field and the reason; `data`, when
//! present, carries machine-readable detail (e.g. the expected nonce).

use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};

/// An error returned to an RPC caller.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    /// A parameter is malformed or out of range (`-32602`).
    #[error("{field}: {reason}")]
    InvalidParams {
        /// Parameter or field path.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The transaction is malformed: body, canonical form, field rules, data hash (`1001`).
    #[error("{0}")]
    InvalidTransaction(String),
    /// The signature does not verify (`1002`).
    #[error("signature: does not verify over the signing preimage (ed25519, ZIP-215)")]
    BadSignature,
    /// The transaction is for another chain (`1003`).
    #[error("body.chain_id: transaction is for chain {found}, this node serves chain {expected}")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The body's chain id.
        found: String,
    },
    /// Nonce already used (`1004`).
    #[error("body.nonce: {got} already used; next expected nonce is {expected}")]
    NonceTooLow {
        /// Next expected nonce.
        expected: u64,
        /// Nonce given.
        got: u64,
    },
    /// Nonce too far ahead of the next expected one (`1005`).
    #[error("body.nonce: {got} is too far ahead; next expected is {expected}, window is {window}")]
    NonceTooHigh {
        /// Next expected nonce.
        expected: u64,
        /// Nonce given.
        got: u64,
        /// Allowed gap.
        window: u64,
    },
    /// Another pending transaction already has this nonce (`1006`).
    #[error("body.nonce: {nonce} is already taken by pending transaction {other}")]
    NonceTaken {
        /// The nonce.
        nonce: u64,
        /// Id of the pending transaction holding it.
        other: String,
    },
    /// The signer is not allowed to do this (`1007`).
    #[error("body.signer: {signer} {reason}")]
    NotPermitted {
        /// The signer.
        signer: String,
        /// Why not.
        reason: String,
    },
    /// The transaction is already pending or committed (`1008`).
    #[error("transaction {id} is already {state}")]
    Duplicate {
        /// Its id.
        id: String,
        /// `pending` or `committed`.
        state: &'static str,
    },
    /// Over a size limit (`1009`).
    #[error("{field}: {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What is too large.
        field: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The mempool or the signer's quota is full; retry later (`1010`).
    #[error("mempool full: {reason}; retry after blocks are committed")]
    MempoolFull {
        /// Which bound was hit.
        reason: String,
    },
    /// Nothing with that id / height / hash (`1011`).
    #[error("not found: {0}")]
    NotFound(String),
    /// The wait timed out; the transaction may still commit (`1012`).
    #[error("timed out after {timeout_ms} ms waiting for {id} to commit; it is still pending")]
    Timeout {
        /// Transaction id.
        id: String,
        /// The wait, ms.
        timeout_ms: u64,
    },
    /// The node cannot serve this now (shutting down, storage failure) (`1013`).
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// A contract call would fail on the current state (transfer over balance, mint by a
    /// non-admin, a second vote, re-anchoring…); nothing was admitted (`1014`).
    #[error("contract call rejected: {0}")]
    CallRejected(String),
}

impl RpcError {
    /// The JSON-RPC error code.
    pub fn code(&self) -> i32 {
        match self {
            RpcError::InvalidParams { .. } => -32602,
            RpcError::InvalidTransaction(_) => 1001,
            RpcError::BadSignature => 1002,
            RpcError::WrongChain { .. } => 1003,
            RpcError::NonceTooLow { .. } => 1004,
            RpcError::NonceTooHigh { .. } => 1005,
            RpcError::NonceTaken { .. } => 1006,
            RpcError::NotPermitted { .. } => 1007,
            RpcError::Duplicate { .. } => 1008,
            RpcError::TooLarge { .. } => 1009,
            RpcError::MempoolFull { .. } => 1010,
            RpcError::NotFound(_) => 1011,
            RpcError::Timeout { .. } => 1012,
            RpcError::Unavailable(_) => 1013,
            RpcError::CallRejected(_) => 1014,
        }
    }

    /// Machine-readable detail, if any.
    pub fn data(&self) -> Option<Value> {
        match self {
            RpcError::NonceTooLow { expected, got } => {
                Some(json!({"expected": expected, "got": got}))
            }
            RpcError::NonceTooHigh {
                expected,
                got,
                window,
            } => Some(json!({"expected": expected, "got": got, "window": window})),
            RpcError::MempoolFull { .. } | RpcError::Timeout { .. } => Some(json!({"retry": true})),
            _ => None,
        }
    }

    /// Shorthand for [`RpcError::InvalidParams`].
    pub fn params(field: impl Into<String>, reason: impl Into<String>) -> Self {
        RpcError::InvalidParams {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(e: RpcError) -> Self {
        ErrorObjectOwned::owned(e.code(), e.to_string(), e.data())
    }
}
