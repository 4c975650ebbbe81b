//! The method list. `jsonrpsee` generates `AuditChainApiServer` (implemented in
//! [`crate::server`]) and the typed client `AuditChainApiClient` used by the CLI and tests.
//! Method names follow `namespace_method`; docs/rpc.md documents each.

use auditchain_primitives::{Hash, PublicKey, Receipt};
use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use serde_json::Value;

use crate::types::*;

/// The auditchain JSON-RPC API.
#[rpc(server, client)]
pub trait AuditChainApi {
    /// Submits one signed transaction; returns its id once admitted to the mempool.
    #[method(name = "audit_submit")]
    async fn submit(&self, tx: TxParam) -> RpcResult<Hash>;

    /// Submits up to 10,000 transactions; one outcome per transaction, in order. Signatures are
    /// verified as one batch.
    #[method(name = "audit_submitBatch")]
    async fn submit_batch(&self, txs: Vec<TxParam>) -> RpcResult<Vec<SubmitOutcome>>;

    /// Submits and waits up to `timeout_ms` (default 10,000, max 120,000) for the commit;
    /// returns the receipt.
    #[method(name = "audit_submitAndWait")]
    async fn submit_and_wait(&self, tx: TxParam, timeout_ms: Option<u64>) -> RpcResult<Receipt>;

    /// The next nonce `signer` should use: its next committed nonce plus its contiguous
    /// pending transactions.
    #[method(name = "audit_nextNonce")]
    async fn next_nonce(&self, signer: PublicKey) -> RpcResult<u64>;

    /// Status (pending or committed with position) of a transaction.
    #[method(name = "audit_getTransaction")]
    async fn get_transaction(&self, id: Hash) -> RpcResult<TxStatusView>;

    /// A page of events matching a filter, in chain order, with a cursor.
    #[method(name = "audit_getTrail")]
    async fn get_trail(&self, query: TrailQuery) -> RpcResult<TrailPage>;

    /// The receipt of a committed transaction (offline-verifiable).
    #[method(name = "audit_getProof")]
    async fn get_proof(&self, id: Hash) -> RpcResult<Receipt>;

    /// Whether `data` is what was recorded in transaction `id` (canonical SHA-256 comparison).
    #[method(name = "audit_verifyRecord")]
    async fn verify_record(&self, id: Hash, data: Value) -> RpcResult<VerifyRecordView>;

    /// Every anchoring of a file hash.
    #[method(name = "evidence_verify")]
    async fn evidence_verify(&self, sha256: Hash) -> RpcResult<EvidenceVerifyView>;

    /// The head block summary.
    #[method(name = "chain_getHead")]
    async fn get_head(&self) -> RpcResult<HeadView>;

    /// A block by height (`null` above the head); `full` includes transactions.
    #[method(name = "chain_getBlockByHeight")]
    async fn get_block_by_height(
        &self,
        height: u64,
        full: Option<bool>,
    ) -> RpcResult<Option<BlockView>>;

    /// A block by hash (`null` if unknown); `full` includes transactions.
    #[method(name = "chain_getBlockByHash")]
    async fn get_block_by_hash(
        &self,
        hash: Hash,
        full: Option<bool>,
    ) -> RpcResult<Option<BlockView>>;

    /// Blocks `from..=to` (at most 100, clipped at the head), without transactions.
    #[method(name = "chain_getBlocks")]
    async fn get_blocks(&self, from: u64, to: u64) -> RpcResult<Vec<BlockView>>;

    /// Chain statistics.
    #[method(name = "chain_getStats")]
    async fn get_stats(&self) -> RpcResult<StatsView>;

    /// The genesis document (with defaults filled in).
    #[method(name = "chain_getGenesis")]
    async fn get_genesis(&self) -> RpcResult<Value>;

    /// Node status.
    #[method(name = "node_status")]
    async fn node_status(&self) -> RpcResult<NodeStatus>;

    /// Node health.
    #[method(name = "node_health")]
    async fn node_health(&self) -> RpcResult<HealthView>;

    /// Connected peers.
    #[method(name = "node_peers")]
    async fn node_peers(&self) -> RpcResult<Vec<PeerView>>;

    /// The validator set that certifies blocks at `height` (default: the next block), in
    /// proposer order; governance changes it from a scheduled height.
    #[method(name = "chain_getValidators")]
    async fn get_validators(&self, height: Option<u64>) -> RpcResult<Vec<ValidatorView>>;

    /// The finalized head and its commit certificate.
    #[method(name = "chain_getFinalized")]
    async fn get_finalized(&self) -> RpcResult<FinalizedView>;

    /// Per-validator activity (proposed, missed turns, votes, last seen) since this node
    /// started.
    #[method(name = "consensus_getSignerMetrics")]
    async fn get_signer_metrics(&self) -> RpcResult<Vec<SignerMetricsView>>;

    /// Stored equivocation evidence, from sequence `from` (default 0), at most `limit`
    /// (default and maximum 1,000).
    #[method(name = "chain_getEvidence")]
    async fn get_evidence(
        &self,
        from: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<Vec<EquivocationView>>;

    /// Quality-token balance and voting power of `account`:
    /// `{account, balance, voting_power, delegate?, roles}` (tokens).
    #[method(name = "token_getBalance")]
    async fn token_get_balance(&self, account: PublicKey) -> RpcResult<Value>;

    /// Total token supply: `{supply}` (tokens).
    #[method(name = "token_getSupply")]
    async fn token_get_supply(&self) -> RpcResult<Value>;

    /// Balance changes of `account` from history sequence `cursor` (default 0), at most
    /// `limit` (default 100, max 1,000): `{entries: [{seq, height, time_ms, kind, amount,
    /// counterparty?, reason?, balance}], next_cursor?}`.
    #[method(name = "token_getHistory")]
    async fn token_get_history(
        &self,
        account: PublicKey,
        cursor: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<Value>;

    /// One governance proposal with its tally. Errors: not found (1011).
    #[method(name = "gov_getProposal")]
    async fn gov_get_proposal(&self, id: u64) -> RpcResult<Value>;

    /// Proposals from id `cursor` (default 0), only those with `status` if given (`active`,
    /// `passed`, `rejected`, `no_quorum`, `failed`, `cancelled`), at most `limit` (default 100,
    /// max 1,000): `{proposals, next_cursor?}`.
    #[method(name = "gov_listProposals")]
    async fn gov_list_proposals(
        &self,
        status: Option<String>,
        cursor: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<Value>;

    /// The votes on a proposal: `[{voter, choice, power, weight, height}]`.
    #[method(name = "gov_getVotes")]
    async fn gov_get_votes(&self, id: u64) -> RpcResult<Value>;

    /// Every QA monitor rule (active or not), by name.
    #[method(name = "qa_listRules")]
    async fn qa_list_rules(&self) -> RpcResult<Value>;

    /// Alerts from sequence `cursor` (default 0) matching `filter` (`{rule?, min_severity?,
    /// entity?}`), at most `limit` (default 100, max 1,000): `{alerts, next_cursor?}`.
    #[method(name = "qa_getAlerts")]
    async fn qa_get_alerts(
        &self,
        filter: Option<Value>,
        cursor: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<Value>;

    /// The SLA deadline of `entity` (`{entity, open_type, opened_ms, deadline_ms, status,
    /// closed_ms?}`). Errors: not found (1011) if it never opened one.
    #[method(name = "sla_getStatus")]
    async fn sla_get_status(&self, entity: String) -> RpcResult<Value>;

    /// Escalations from sequence `cursor` (default 0), at most `limit` (default 100, max
    /// 1,000): `{breaches, next_cursor?}`.
    #[method(name = "sla_listBreaches")]
    async fn sla_list_breaches(&self, cursor: Option<u64>, limit: Option<u32>) -> RpcResult<Value>;

    /// The contract events of the block at `height`, in execution order (each with `tx`, the
    /// transaction's index, when a transaction caused it).
    #[method(name = "chain_getContractEvents")]
    async fn chain_get_contract_events(&self, height: u64) -> RpcResult<Value>;

    /// Contract events of new blocks (WebSocket only), as `contract_event` notifications:
    /// each `{height, tx?, type, …}`. `types` filters by `type` (e.g. `["minted"]` for the
    /// seed's `qualityTokensMinted`, `["alert_raised"]`, `["audit_event_recorded"]` for every
    /// committed record); all when absent.
    #[subscription(name = "contract_subscribeEvents" => "contract_event", unsubscribe = "contract_unsubscribeEvents", item = Value)]
    async fn subscribe_contract_events(&self, types: Option<Vec<String>>) -> SubscriptionResult;

    /// Finalized heads (WebSocket only), as `chain_finalized` notifications.
    #[subscription(name = "chain_subscribeFinalized" => "chain_finalized", unsubscribe = "chain_unsubscribeFinalized", item = HeadView)]
    async fn subscribe_finalized(&self) -> SubscriptionResult;

    /// New heads (WebSocket only), as `chain_newHead` notifications.
    #[subscription(name = "chain_subscribeNewHeads" => "chain_newHead", unsubscribe = "chain_unsubscribeNewHeads", item = HeadView)]
    async fn subscribe_new_heads(&self) -> SubscriptionResult;
}
