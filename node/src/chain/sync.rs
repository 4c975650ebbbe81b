//! Catching up: certified blocks fetched from peers are checked in full and committed in
//! order; a peer whose answer does not verify is penalised and the next peer is asked.

use std::sync::Arc;
use std::time::Instant;

use auditchain_consensus::bft::BftInput;
use auditchain_p2p::{BlocksRequest, BlocksResponse, PeerRef};
use auditchain_primitives::vote::CertifiedBlock;
use auditchain_storage::BlockCommit;

use super::{Actor, Command, SYNC_PATIENCE, now_ms};
use crate::verify::check_block;

impl Actor {
    /// Asks a peer for the blocks after the head, unless a request is outstanding.
    pub(super) fn start_sync(&mut self) {
        let Some(net) = self.net.clone() else { return };
        if self.syncing.is_some_and(|t| t.elapsed() < SYNC_PATIENCE) {
            return;
        }
        let Some(me) = self.myself.upgrade() else {
            return;
        };
        self.syncing = Some(Instant::now());
        let from = self.head.height + 1;
        let req = BlocksRequest {
            from,
            to: from + auditchain_p2p::MAX_SYNC_BLOCKS - 1,
        };
        tokio::spawn(async move {
            let r = net.request_blocks(req).await;
            let _ = me.send(Command::Synced(r)).await;
        });
    }

    /// Verifies and commits synced blocks in order; stops at the first that does not verify
    /// and penalises the peer that sent it. Then moves the engine to the new head and asks for
    /// more if the peer is further ahead.
    pub(super) fn apply_synced(&mut self, peer: PeerRef, resp: BlocksResponse) {
        let before = self.head.height;
        if let Err(reason) = self.commit_synced(resp.blocks)
            && let Some(net) = &self.net
        {
            tracing::warn!(%peer, %reason, "bad sync response");
            net.penalise(peer, reason);
            // ask the next peer in turn
            self.start_sync();
            return;
        }
        if self.head.height > before {
            tracing::info!(
                from = before + 1,
                to = self.head.height,
                peer_head = resp.head,
                "synced blocks"
            );
            let _ = self.feed(BftInput::NewHead {
                height: self.head.height,
                timestamp_ms: self.head.timestamp_ms,
            });
            self.candidates.clear();
            self.deferred.clear();
            if resp.head > self.head.height {
                self.start_sync();
            }
        }
    }

    /// Commits certified blocks that extend the head, each checked in full. Errors: what is
    /// wrong with the first bad block (the peer's fault).
    fn commit_synced(&mut self, blocks: Vec<CertifiedBlock>) -> Result<(), String> {
        for cb in blocks {
            let h = cb.block.header.height;
            if h <= self.head.height {
                continue;
            }
            if h != self.head.height + 1 {
                return Err(format!(
                    "block {h} does not follow head {}",
                    self.head.height
                ));
            }
            cb.certificate
                .check_header(&self.chain_id, &cb.block.header, self.genesis.validators())
                .map_err(|e| format!("block {h}: certificate: {e}"))?;
            let store = Arc::clone(&self.store);
            let checked = check_block(
                &self.genesis,
                &self.rules,
                &self.head,
                &self.frontier,
                &cb.block,
                now_ms().max(cb.block.header.timestamp_ms),
                |_| false,
                |s| store.next_nonce(s),
            )
            .map_err(|e| format!("block {h}: {e}"))?;
            if let Err(e) = self.store.commit_block(BlockCommit {
                block: &cb.block,
                hash: checked.hash,
                tx_ids: &checked.ids,
                history_nodes: &checked.nodes,
                certificate: Some(&cb.certificate),
            }) {
                // our disk, not the peer: no penalty
                tracing::error!(height = h, error = %e, "committing a synced block failed");
                return Ok(());
            }
            self.published(cb.block.header, checked);
        }
        Ok(())
    }
}
