//! The trait the node implements to serve the API. Reads are synchronous (storage reads are
//! memory-speed); submissions are async because they go through the chain actor.

use std::future::Future;

use auditchain_primitives::tx::WireTx;
use auditchain_primitives::{Hash, PublicKey, Receipt};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::RpcError;
use crate::types::*;

/// What the RPC server needs from a node.
pub trait Backend: Send + Sync + 'static {
    /// Validates, verifies (batched) and admits transactions; one result per input, in order.
    fn submit(&self, txs: Vec<WireTx>) -> impl Future<Output = Vec<Result<Hash, RpcError>>> + Send;
    /// Waits until `id` is committed or `timeout_ms` passes; returns its receipt.
    fn wait_receipt(
        &self,
        id: Hash,
        timeout_ms: u64,
    ) -> impl Future<Output = Result<Receipt, RpcError>> + Send;
    /// Status of a transaction.
    fn transaction(&self, id: Hash) -> impl Future<Output = Result<TxStatusView, RpcError>> + Send;
    /// The next nonce `signer` should use, counting its pending transactions.
    fn next_nonce(&self, signer: PublicKey) -> impl Future<Output = Result<u64, RpcError>> + Send;
    /// A page of a trail.
    fn trail(&self, q: &TrailQuery) -> Result<TrailPage, RpcError>;
    /// The receipt of a committed transaction.
    fn receipt(&self, id: &Hash) -> Result<Receipt, RpcError>;
    /// Whether `data` matches the record `id`.
    fn verify_record(&self, id: &Hash, data: &Value) -> Result<VerifyRecordView, RpcError>;
    /// Every anchoring of an evidence hash.
    fn evidence(&self, sha256: &Hash) -> Result<EvidenceVerifyView, RpcError>;
    /// The head.
    fn head(&self) -> Result<HeadView, RpcError>;
    /// A block by height, `None` above the head.
    fn block_by_height(&self, height: u64, full: bool) -> Result<Option<BlockView>, RpcError>;
    /// A block by hash.
    fn block_by_hash(&self, hash: &Hash, full: bool) -> Result<Option<BlockView>, RpcError>;
    /// Chain statistics.
    fn stats(&self) -> impl Future<Output = Result<StatsView, RpcError>> + Send;
    /// The genesis document.
    fn genesis(&self) -> Result<Value, RpcError>;
    /// Node status.
    fn status(&self) -> impl Future<Output = Result<NodeStatus, RpcError>> + Send;
    /// Node health.
    fn health(&self) -> Result<HealthView, RpcError>;
    /// New heads as they are committed.
    fn subscribe_heads(&self) -> broadcast::Receiver<HeadView>;
    /// Blocks as they become final.
    fn subscribe_finalized(&self) -> broadcast::Receiver<HeadView>;
    /// Connected peers.
    fn peers(&self) -> impl Future<Output = Result<Vec<PeerView>, RpcError>> + Send;
    /// The validator set of `height` (default: the block after the head) in proposer order.
    /// Errors: [`RpcError::InvalidParams`] for height 0 or a height beyond the next block.
    fn validators(&self, height: Option<u64>) -> Result<Vec<ValidatorView>, RpcError>;
    /// The finalized head with its certificate.
    fn finalized(&self) -> Result<FinalizedView, RpcError>;
    /// Per-validator activity seen by this node.
    fn signer_metrics(
        &self,
    ) -> impl Future<Output = Result<Vec<SignerMetricsView>, RpcError>> + Send;
    /// Figures for `/metrics` and `/ready`.
    fn node_metrics(
        &self,
    ) -> impl Future<Output = Result<crate::ops::NodeMetrics, RpcError>> + Send;
    /// Stored equivocation evidence from sequence `from`, at most `limit`.
    fn equivocations(&self, from: u64, limit: usize) -> Result<Vec<EquivocationView>, RpcError>;
    /// Reads native contract state after the head block (docs/contracts.md). Errors: bad
    /// parameters, not found, storage.
    fn contract_query(&self, q: ContractQuery) -> Result<Value, RpcError>;
    /// The notifications for the block at `height`: its contract events and one
    /// `audit_event_recorded` per committed record, each with `height`.
    fn block_notifications(&self, height: u64) -> Result<Vec<Value>, RpcError>;
}
