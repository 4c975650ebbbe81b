//! Evidence anchoring: the SHA-256 of a file kept elsewhere, bound to an entity, a signer and
//! a block time. One anchoring per (file hash, entity); verifying a hash returns every entity
//! it was anchored for.

use auditchain_primitives::{Hash, PublicKey};
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::events::ContractEvent;
use crate::keys;
use crate::runtime::Call;
use crate::state::{Overlay, StateError};

/// One anchoring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchoring {
    /// Entity.
    pub entity: String,
    /// File hash.
    pub sha256: Hash,
    /// File size, bytes.
    pub size_bytes: u64,
    /// Where the file is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Who anchored it.
    pub signer: PublicKey,
    /// Block height.
    pub height: u64,
    /// Block time, ms.
    pub time_ms: u64,
    /// The anchoring transaction.
    pub tx_id: Hash,
}

/// Anchors `sha256` for `entity`. Errors: [`ContractError::AlreadyAnchored`].
pub fn anchor(
    c: &mut Call<'_>,
    entity: &str,
    sha256: &Hash,
    size_bytes: u64,
    uri: Option<&str>,
) -> Result<(), ContractError> {
    let key = keys::anchor(sha256, entity);
    if let Some(a) = c.st.get_json::<Anchoring>(&key)? {
        return Err(ContractError::AlreadyAnchored {
            entity: entity.to_string(),
            sha256: *sha256,
            height: a.height,
        });
    }
    let a = Anchoring {
        entity: entity.to_string(),
        sha256: *sha256,
        size_bytes,
        uri: uri.map(str::to_string),
        signer: c.signer,
        height: c.ctx.height,
        time_ms: c.ctx.timestamp_ms,
        tx_id: c.tx_id().unwrap_or(Hash::ZERO),
    };
    c.st.put_json(key, &a)?;
    c.emit(ContractEvent::EvidenceAnchored {
        entity: entity.to_string(),
        sha256: *sha256,
        size_bytes,
    });
    Ok(())
}

/// Every anchoring of `sha256` (at most `limit`), by entity.
pub fn verify(st: &Overlay<'_>, sha256: &Hash, limit: usize) -> Result<Vec<Anchoring>, StateError> {
    Ok(st
        .scan_json::<Anchoring>(&keys::anchor_prefix(sha256), limit)?
        .into_iter()
        .map(|(_, a)| a)
        .collect())
}
