//! Catching up: certified blocks fetched from peers are checked in full and committed in
//! order; a peer whose answer does not verify is penalised and the next peer is asked.

use std::sync::Arc;

use auditchain_consensus::bft::BftInput;
use auditchain_primitives::Header;
use auditchain_primitives::vote::{CertifiedBlock, CommitCertificate, last_commit_hash};
use auditchain_storage::BlockCommit;

use crate::verify::CheckedBlock;

use super::{Actor, SyncAnswer, now_ms};
use crate::verify::{HeaderRules, check_block};

impl Actor {
    /// Verifies and commits synced blocks in order; stops at the first that does not verify
    /// and penalises the peer that sent it. Then moves the engine to the new head and asks for
    /// more if the peer is further ahead.
    ///
    /// The next range is requested before this one is checked, so fetching (and the peer's
    /// reading and encoding) overlaps with verifying and writing. The answer to a prefetch
    /// asked `from` a head this node did not reach (the range before it did not apply in full)
    /// is dropped without penalty and asked for again from the head; any other answer that
    /// does not link is the peer's fault, as before.
    pub(super) fn apply_synced(&mut self, from: u64, answer: SyncAnswer) {
        let SyncAnswer {
            peer,
            resp,
            sigs_ok,
        } = answer;
        let before = self.core.head.height;
        if from > before.max(1) {
            self.core.start_sync(before.max(1));
            return;
        }
        if let Some(last) = resp.blocks.last().map(|b| b.block.header.height)
            && resp.head > last
            && last > before
        {
            self.core.start_sync(last);
        }
        if let Err(reason) = self.commit_synced(resp.blocks, &sigs_ok)
            && let Some(net) = &self.core.net
        {
            tracing::warn!(%peer, %reason, "bad sync response");
            net.penalise(peer, reason);
            // ask the next peer in turn
            self.core.start_sync(self.core.head.height.max(1));
            return;
        }
        self.core.best_peer_height = self.core.best_peer_height.max(resp.head);
        if self.core.head.height > before {
            tracing::info!(
                from = before + 1,
                to = self.core.head.height,
                peer_head = resp.head,
                "synced blocks"
            );
            let _ = self.feed(BftInput::NewHead {
                height: self.core.head.height,
                timestamp_ms: self.core.head.timestamp_ms,
            });
            self.candidates.clear();
            self.deferred.clear();
            if resp.head > self.core.head.height {
                self.core.start_sync(self.core.head.height.max(1));
            }
        }
    }

    /// Commits certified blocks that extend the head, each checked in full (signatures of a
    /// block marked in `sigs_ok` were verified already). Errors: what is wrong with the first
    /// bad block (the peer's fault).
    fn commit_synced(
        &mut self,
        blocks: Vec<CertifiedBlock>,
        sigs_ok: &[bool],
    ) -> Result<(), String> {
        // the certificate of the head as the peer holds it: canonical when the peer has the
        // next block (requests start at the head for this reason)
        let mut parent_cert: Option<CommitCertificate> = None;
        let start = (
            self.core.head.clone(),
            self.core.head_hash,
            self.core.frontier.clone(),
        );
        let mut applied: Vec<(Header, CheckedBlock)> = Vec::new();
        let result = self.apply_batch(blocks, sigs_ok, &mut parent_cert, &mut applied);
        // one flush for the whole batch, then the blocks become the head one by one
        (self.core.head, self.core.head_hash, self.core.frontier) = start;
        self.publish_applied(applied);
        result
    }

    /// Flushes the applied batch once, then makes its blocks the head in order (waiters,
    /// subscribers). If the flush fails nothing is acknowledged; the head still follows the
    /// store, and the next successful flush makes those blocks durable.
    fn publish_applied(&mut self, applied: Vec<(Header, CheckedBlock)>) {
        if applied.is_empty() {
            return;
        }
        if let Err(e) = self.core.store.flush() {
            tracing::error!(error = %e, "flushing synced blocks failed; not acknowledged");
            if let Some((h, c)) = applied.into_iter().last() {
                self.core.head_hash = c.hash;
                self.core.head = h;
                self.core.frontier = c.frontier;
            }
            return;
        }
        for (h, c) in applied {
            self.core.published(h, c);
        }
    }

    /// Checks and applies (unflushed) consecutive synced blocks; stops at the first bad one.
    fn apply_batch(
        &mut self,
        blocks: Vec<CertifiedBlock>,
        sigs_ok: &[bool],
        parent_cert: &mut Option<CommitCertificate>,
        applied: &mut Vec<(Header, CheckedBlock)>,
    ) -> Result<(), String> {
        for (i, cb) in blocks.into_iter().enumerate() {
            let h = cb.block.header.height;
            let sigs_verified = sigs_ok.get(i).copied().unwrap_or(false);
            let cert = cb
                .certificate
                .as_ref()
                .ok_or_else(|| format!("block {h}: no commit certificate"))?;
            if h > self.core.head.height + 1 {
                return Err(format!(
                    "block {h} does not follow head {}",
                    self.core.head.height
                ));
            }
            // the set of height h is in the state after h - 1, which is the head here (or
            // the history, for the head's own block)
            let set = self.core.validators_at(h)?;
            cert.check_header(&self.core.chain_id, &cb.block.header, &set)
                .map_err(|e| format!("block {h}: certificate: {e}"))?;
            if h == self.core.head.height && cb.block.hash() == self.core.head_hash {
                *parent_cert = cb.certificate;
                continue;
            }
            if h <= self.core.head.height {
                continue;
            }
            let expected = match (&*parent_cert, self.core.head.height) {
                (Some(c), _) => Some(c.clone()),
                (None, 0) => None,
                (None, hh) => self
                    .core
                    .store
                    .certificate(hh)
                    .map_err(|e| format!("reading certificate {hh}: {e}"))?,
            };
            if last_commit_hash(expected.as_ref()) != cb.block.header.last_commit_hash {
                return Err(format!(
                    "block {h}: last_commit_hash does not name the parent certificate"
                ));
            }
            let store = Arc::clone(&self.core.store);
            let checked = check_block(
                &self.core.genesis,
                &HeaderRules::RoundRobin(&self.rules),
                &self.core.head,
                &self.core.frontier,
                &cb.block,
                now_ms().max(cb.block.header.timestamp_ms),
                |_| sigs_verified,
                &crate::execute::StoreState(&*store),
                |s| store.next_nonce(s),
            )
            .map_err(|e| format!("block {h}: {e}"))?;
            if let Err(e) = self.core.store.apply_block(BlockCommit {
                block: &cb.block,
                hash: checked.hash,
                tx_ids: &checked.ids,
                history_nodes: &checked.nodes,
                certificate: cb.certificate.as_ref(),
                parent_certificate: parent_cert.as_ref(),
                state_writes: &checked.executed.state_writes,
                contract_events: &checked.executed.events_json,
            }) {
                // our disk, not the peer: no penalty
                tracing::error!(height = h, error = %e, "committing a synced block failed");
                break;
            }
            // later blocks of the batch are checked against this one
            self.core.head_hash = checked.hash;
            self.core.head = cb.block.header.clone();
            self.core.frontier = checked.frontier.clone();
            applied.push((cb.block.header, checked));
            *parent_cert = cb.certificate;
            self.refresh_validators();
        }
        Ok(())
    }
}
