//! Catching up: certified blocks fetched from peers are checked in full and committed in
//! order; a peer whose answer does not verify is penalised and the next peer is asked.
//!
//! A **sync session** is one task that asks for consecutive ranges, each starting after the
//! previous answer's last block, with the next range's request in flight while the current
//! answer's signatures are verified and the one before is applied by the chain actor (three
//! stages at once). At most [`SYNC_AHEAD`] answers are held between fetching and applying.
//! Answers reach the actor in order; when one does not apply in full, the actor ends the
//! session (its later answers are dropped by session id) and starts a new one after its head.

use std::sync::Arc;
use std::time::Instant;

use auditchain_consensus::bft::BftInput;
use auditchain_p2p::{
    BlocksRequest, BlocksResponse, MAX_SYNC_BLOCKS, NetHandle, P2pError, PeerRef,
};
use auditchain_primitives::vote::{
    CertifiedBlock, CommitCertificate, WireCertifiedBlock, last_commit_hash,
};
use auditchain_primitives::{Block, Hash, Header, PublicKey, Transaction};
use auditchain_storage::BlockCommit;
use rayon::prelude::*;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::{Actor, Command, Core, SYNC_PATIENCE, SyncAnswer, SyncSession, SyncedRange, now_ms};
use crate::verify::{CheckedBlock, HeaderRules, check_block};

/// Most answers of a sync session fetched but not yet applied (each at most
/// `MAX_SYNC_RESPONSE_BYTES`, typically `SYNC_RESPONSE_TARGET_BYTES`): one being applied, one
/// being verified, one being fetched.
const SYNC_AHEAD: usize = 3;

impl Core {
    /// Starts a sync session from height `from` unless one is running and answered within
    /// [`SYNC_PATIENCE`]. On a round-robin chain the session goes on range after range until
    /// it reaches the answering peer's head, verifying each answer's transaction signatures
    /// (ZIP-215, on all cores) before the chain actor gets it; on a proof-of-work chain it asks
    /// once. Answers come back as [`Command::Synced`].
    pub(super) fn start_sync(&mut self, from: u64) {
        if self
            .sync
            .as_ref()
            .is_some_and(|s| s.progress.elapsed() < SYNC_PATIENCE)
        {
            return;
        }
        self.restart_sync(from);
    }

    /// Ends the running sync session, if any (its answers still queued are dropped), and
    /// starts a new one from height `from`.
    pub(super) fn restart_sync(&mut self, from: u64) {
        if let Some(old) = self.sync.take() {
            old.task.abort();
        }
        let Some(net) = self.net.clone() else { return };
        let Some(me) = self.myself.upgrade() else {
            return;
        };
        self.sync_sessions += 1;
        let id = self.sync_sessions;
        let pipelined = self.genesis.round_robin().is_some();
        let task = self
            .runtime
            .spawn(sync_session(net, me, id, from, pipelined));
        self.sync = Some(SyncSession {
            id,
            progress: Instant::now(),
            task,
        });
    }

    /// Whether `range` comes from the running session (answers of an ended one are to be
    /// dropped). Its last answer ends the session.
    pub(super) fn sync_answer_is_current(&mut self, range: &SyncedRange) -> bool {
        match &mut self.sync {
            Some(s) if s.id == range.session => {
                if range.more {
                    s.progress = Instant::now();
                } else {
                    self.sync = None;
                }
                true
            }
            _ => false,
        }
    }
}

/// Asks peers (each request goes to the next peer in turn) for consecutive ranges from
/// `from`, and sends each answer to the chain actor in order; see the module docs. Ends after
/// a failed request, an answer that reaches the peer's head or makes no progress, or (unless
/// `pipelined`) after the first answer.
async fn sync_session(
    net: NetHandle,
    me: mpsc::Sender<Command>,
    session: u64,
    mut from: u64,
    pipelined: bool,
) {
    let slots = Arc::new(Semaphore::new(SYNC_AHEAD));
    let fetch = |from: u64| {
        let (net, slots) = (net.clone(), Arc::clone(&slots));
        async move {
            let slot = slots.acquire_owned().await.map_err(|_| P2pError::Stopped)?;
            let req = BlocksRequest {
                from,
                to: from + MAX_SYNC_BLOCKS - 1,
            };
            net.request_blocks(req).await.map(|r| (slot, r))
        }
    };
    let mut current = fetch(from).await;
    loop {
        let (result, next) = match current {
            Err(e) => (Err(e), None),
            Ok((slot, (peer, resp))) => {
                let last = resp.blocks.last().map(|b| b.header.height);
                let next_from = last
                    .filter(|&l| pipelined && l >= from && resp.head > l)
                    .map(|l| l + 1);
                let answer = checked_answer(net.clone(), peer, resp, slot, pipelined);
                match next_from {
                    Some(l) => {
                        let (answer, next) = tokio::join!(answer, fetch(l));
                        (answer, Some((l, next)))
                    }
                    None => (answer.await, None),
                }
            }
        };
        let more = next.is_some();
        let range = SyncedRange {
            session,
            from,
            result,
            more,
        };
        if me.send(Command::Synced(range)).await.is_err() {
            return;
        }
        match next {
            Some((l, n)) => (from, current) = (l, n),
            None => return,
        }
    }
}

/// The answer with its transactions parsed (checked for canonical form) and, if `verify`,
/// its signatures verified: on blocking threads at normal priority, spread over all cores, so
/// that the chain actor applies one answer while the next is checked. Errors: a transaction
/// that does not parse (the peer is penalised), or the checking thread failed.
async fn checked_answer(
    net: NetHandle,
    peer: PeerRef,
    resp: BlocksResponse,
    slot: OwnedSemaphorePermit,
    verify: bool,
) -> Result<SyncAnswer, P2pError> {
    let checked = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let blocks = parse_blocks(resp.blocks)?;
        let parsed = t.elapsed();
        let sigs_ok = if verify {
            signatures_by_block(&blocks)
        } else {
            Vec::new()
        };
        tracing::debug!(
            %peer,
            head = resp.head,
            blocks = blocks.len(),
            txs = blocks.iter().map(|b| b.block.txs.len()).sum::<usize>(),
            parse_ms = parsed.as_millis() as u64,
            verify_ms = (t.elapsed() - parsed).as_millis() as u64,
            "sync answer checked"
        );
        Ok::<_, String>(SyncAnswer {
            peer,
            head: resp.head,
            parent_certificate: resp.parent_certificate,
            blocks,
            sigs_ok,
            _slot: slot,
        })
    })
    .await;
    match checked {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(reason)) => {
            tracing::warn!(%peer, %reason, "bad sync response");
            net.penalise(peer, reason.clone());
            Err(P2pError::Request {
                peer: peer.to_string(),
                reason,
            })
        }
        Err(e) => Err(P2pError::Request {
            peer: peer.to_string(),
            reason: format!("checking the answer: {e}"),
        }),
    }
}

/// Parses every transaction of wire blocks (`Transaction::try_from`: JSON, canonical form,
/// fields; in parallel). Errors: the first block holding a transaction that does not parse.
fn parse_blocks(blocks: Vec<WireCertifiedBlock>) -> Result<Vec<CertifiedBlock>, String> {
    blocks
        .into_iter()
        .map(|w| {
            let height = w.header.height;
            let txs = w
                .txs
                .into_par_iter()
                .map(Transaction::try_from)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("block {height}: a transaction does not parse: {e}"))?;
            Ok(CertifiedBlock {
                block: Block {
                    header: w.header,
                    seal: w.seal,
                    txs,
                },
                certificate: w.certificate,
            })
        })
        .collect()
}

/// Checks a peer's certificate of this node's `head` (sent with a sync answer): it must be a
/// valid commit certificate of `head` by `validators` (the set of its height); genesis has
/// none. Errors: why not, naming the height (the peer's fault).
fn check_head_certificate(
    chain_id: &Hash,
    head: &Header,
    validators: &[PublicKey],
    cert: &CommitCertificate,
) -> Result<(), String> {
    if head.height == 0 {
        return Err("a certificate for the genesis block".into());
    }
    cert.check_header(chain_id, head, validators)
        .map_err(|e| format!("block {}: certificate: {e}", head.height))
}

/// Per block: whether every transaction signature verifies (ZIP-215, in batches of up to
/// 4,096 on all cores).
fn signatures_by_block(blocks: &[CertifiedBlock]) -> Vec<bool> {
    let all: Vec<&Transaction> = blocks.iter().flat_map(|b| &b.block.txs).collect();
    let results = crate::verify::verify_block_txs(&all);
    let mut results = results.iter();
    blocks
        .iter()
        .map(|b| {
            results
                .by_ref()
                .take(b.block.txs.len())
                .fold(true, |ok, r| ok & r.is_ok())
        })
        .collect()
}

impl Actor {
    /// Verifies and commits synced blocks in order; stops at the first that does not verify
    /// and penalises the peer that sent it. Then moves the engine to the new head and asks for
    /// more if the peer is further ahead and the session has ended.
    ///
    /// An answer asked `from` past the height after the head (the range before it did not
    /// apply in full) is dropped without penalty, and a new session starts after the head; any
    /// other answer that does not link is the peer's fault.
    pub(super) fn apply_synced(&mut self, from: u64, answer: SyncAnswer) {
        let SyncAnswer {
            peer,
            head: peer_head,
            parent_certificate,
            blocks,
            sigs_ok,
            _slot,
        } = answer;
        let before = self.core.head.height;
        let t = Instant::now();
        if from > before + 1 {
            self.core.restart_sync(before + 1);
            return;
        }
        let parent_certificate = parent_certificate.filter(|_| from == before + 1);
        if let Err(reason) = self.commit_synced(parent_certificate, blocks, &sigs_ok) {
            tracing::warn!(%peer, %reason, "bad sync response");
            if let Some(net) = &self.core.net {
                net.penalise(peer, reason);
            }
            // a new session: its first request goes to the next peer in turn
            self.core.restart_sync(self.core.head.height + 1);
            return;
        }
        self.core.best_peer_height = self.core.best_peer_height.max(peer_head);
        if self.core.head.height > before {
            tracing::info!(
                from = before + 1,
                to = self.core.head.height,
                peer_head,
                apply_ms = t.elapsed().as_millis() as u64,
                "synced blocks"
            );
            let _ = self.feed(BftInput::NewHead {
                height: self.core.head.height,
                timestamp_ms: self.core.head.timestamp_ms,
            });
            self.candidates.clear();
            self.deferred.clear();
            if peer_head > self.core.head.height {
                self.core.start_sync(self.core.head.height + 1);
            }
        }
    }

    /// Commits certified blocks that extend the head, each checked in full (signatures of a
    /// block marked in `sigs_ok` were verified already). `head_certificate` is the peer's
    /// certificate of this node's head, sent with the answer: it must certify the head, and
    /// the first block's `last_commit_hash` must name it (it is canonical when the peer holds
    /// the next block); without it the stored certificate is used. Errors: what is wrong with
    /// the first bad block or with `head_certificate` (the peer's fault).
    fn commit_synced(
        &mut self,
        head_certificate: Option<CommitCertificate>,
        blocks: Vec<CertifiedBlock>,
        sigs_ok: &[bool],
    ) -> Result<(), String> {
        if let Some(c) = &head_certificate {
            let set = self.core.validators_at(self.core.head.height)?;
            check_head_certificate(&self.core.chain_id, &self.core.head, &set, c)?;
        }
        let mut parent_cert = head_certificate;
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
                set_change_witness: checked.executed.set_change_witness.as_ref(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::tests::{forged, tx};
    use auditchain_primitives::block::{ConsensusFields, HEADER_VERSION};
    use auditchain_primitives::{SecretKey, Signature};

    fn block(txs: Vec<Transaction>) -> CertifiedBlock {
        CertifiedBlock {
            block: Block {
                header: Header {
                    version: HEADER_VERSION,
                    height: 1,
                    parent_hash: Hash::ZERO,
                    timestamp_ms: 1,
                    proposer: SecretKey::from_seed(&[1; 32]).public_key(),
                    tx_root: Hash::ZERO,
                    tx_count: 0,
                    history_root: Hash::ZERO,
                    history_size: 0,
                    state_root: Hash::ZERO,
                    last_commit_hash: Hash::ZERO,
                    consensus: ConsensusFields::RoundRobin { round: 0 },
                },
                txs,
                seal: Signature([0; 64]),
            },
            certificate: None,
        }
    }

    #[test]
    fn a_synced_block_is_marked_verified_only_if_all_its_signatures_verify() {
        let key = SecretKey::from_seed(&[9; 32]);
        let txs: Vec<Transaction> = (0..700).map(|i| tx(i, &key)).collect();
        let mut bad = txs[300..650].to_vec();
        bad[349] = forged(bad[349].clone());
        let blocks = vec![
            block(txs[..300].to_vec()),
            block(bad),
            block(Vec::new()),
            block(txs[650..].to_vec()),
        ];
        assert_eq!(signatures_by_block(&blocks), vec![true, false, true, true]);
    }

    #[test]
    fn a_head_certificate_must_certify_the_head_with_a_quorum() {
        use auditchain_primitives::vote::{Vote, VoteBody, VoteKind};
        let chain = Hash([3; 32]);
        let keys: Vec<SecretKey> = (1..=4u8).map(|i| SecretKey::from_seed(&[i; 32])).collect();
        let set: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
        let mut head = block(Vec::new()).block.header;
        head.height = 5;
        let cert = |block: Hash, signers: &[SecretKey]| {
            let mut signatures: Vec<(PublicKey, Signature)> = signers
                .iter()
                .map(|k| {
                    let body = VoteBody {
                        kind: VoteKind::Precommit,
                        height: 5,
                        round: 0,
                        block: Some(block),
                        validator: k.public_key(),
                    };
                    (k.public_key(), Vote::sign(&chain, body, k).signature)
                })
                .collect();
            signatures.sort_by_key(|(pk, _)| *pk);
            CommitCertificate {
                height: 5,
                round: 0,
                block,
                signatures,
            }
        };
        let good = cert(head.hash(), &keys[..3]);
        assert_eq!(check_head_certificate(&chain, &head, &set, &good), Ok(()));
        // another block at that height, too few signers, a forged signature, genesis
        let other = cert(Hash([1; 32]), &keys[..3]);
        let few = cert(head.hash(), &keys[..2]);
        let mut forged = good.clone();
        forged.signatures[1].1.0[0] ^= 1;
        for bad in [other, few, forged] {
            let e = check_head_certificate(&chain, &head, &set, &bad).unwrap_err();
            assert!(e.starts_with("block 5: certificate: "), "{e}");
        }
        let mut genesis = head.clone();
        genesis.height = 0;
        assert!(check_head_certificate(&chain, &genesis, &set, &good).is_err());
    }

    #[test]
    fn wire_blocks_parse_back_and_a_bad_transaction_names_its_block() {
        let key = SecretKey::from_seed(&[9; 32]);
        let good = block((0..5).map(|i| tx(i, &key)).collect());
        let wire = WireCertifiedBlock::from(good.clone());
        assert_eq!(parse_blocks(vec![wire.clone()]), Ok(vec![good]));
        let mut bad = wire.clone();
        bad.header.height = 2;
        bad.txs[3].body = bad.txs[3].body.replace('{', "{ ");
        let e = parse_blocks(vec![wire, bad]).unwrap_err();
        assert!(
            e.starts_with("block 2: a transaction does not parse"),
            "{e}"
        );
    }
}
