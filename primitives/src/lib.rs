//! auditchain primitives: the chain's data types and formats, with no I/O.
//!
//! - [`bytes`]: `Hash`, `PublicKey`, `Signature` and SHA-256 helpers;
//! - [`keys`]: ed25519 signing (RFC 8032) and ZIP-215 validation, single and batched;
//! - [`codec`]: the canonical binary codec (bincode 2.0.1, one fixed configuration);
//! - [`jcs`]: RFC 8785 canonical JSON, the form transaction bodies are signed in;
//! - [`call`]: argument types of native contract calls (tokens, governance, QA rules);
//! - [`tx`]: transactions, the signing preimage (RFC 8785 canonical JSON body) and tx ids;
//! - [`merkle`]: RFC 6962 trees, inclusion and consistency proofs;
//! - [`block`]: headers, blocks, seals and the state-root accumulator;
//! - [`receipt`]: offline-verifiable receipts;
//! - [`vote`]: consensus votes, quorums and commit certificates.
//!
//! Everything here is deterministic and panic-free outside tests; formats are pinned by the
//! golden tests in `tests/golden.rs` and specified in docs/.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod block;
pub mod bytes;
pub mod call;
pub mod codec;
pub mod jcs;
pub mod keys;
pub mod merkle;
pub mod receipt;
pub mod tx;
pub mod vote;

pub use block::{Block, ConsensusFields, Header};
pub use bytes::{Hash, PublicKey, Signature, sha256};
pub use keys::SecretKey;
pub use receipt::Receipt;
pub use tx::{Payload, Transaction, TxBody, TxError};
