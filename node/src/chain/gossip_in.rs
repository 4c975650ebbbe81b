//! Gossip input to consensus: proposals are checked in full against the head before the engine
//! hears of them; vote signatures are verified (ZIP-215) before they are fed in.

use auditchain_consensus::Engine;
use auditchain_consensus::bft::BftInput;
use auditchain_p2p::{MessageRef, Proposal, Verdict, WireProposal};
use auditchain_primitives::block::ConsensusFields;
use auditchain_primitives::tx::TxError;
use auditchain_primitives::vote::{CommitCertificate, Vote, last_commit_hash};
use auditchain_primitives::{Block, Header, Transaction};

use super::{Actor, Candidate, MAX_DEFERRED, now_ms};
use crate::verify::{HeaderRules, check_block};

impl Actor {
    /// The proposal with its transactions parsed. A transaction this node already admitted
    /// (same id, body text and signature as its mempool copy, which was parsed, checked and
    /// signature-verified on admission) is reused instead of parsed again, so a proposal of
    /// known transactions costs one SHA-256 per transaction, and [`check_block`] then skips
    /// their signatures. Errors: the first transaction that does not parse.
    pub(super) fn resolve_proposal(&self, p: WireProposal) -> Result<Proposal, TxError> {
        let chain_id = self.core.chain_id;
        let mempool = &self.core.mempool;
        let txs = p
            .block
            .txs
            .into_iter()
            .map(|w| match mempool.get(&w.id_on(&chain_id)) {
                Some(t) if t.body_text() == w.body && *t.signature() == w.signature => {
                    Ok(t.clone())
                }
                _ => Transaction::try_from(w),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Proposal {
            round: p.round,
            valid_round: p.valid_round,
            block: Block {
                header: p.block.header,
                seal: p.block.seal,
                txs,
            },
            last_commit: p.last_commit,
        })
    }

    /// Checks a proposal from a peer and feeds it to the engine. Returns the gossip verdict, or
    /// `None` if the proposal was deferred (judged later).
    pub(super) fn on_proposal(&mut self, msg: MessageRef, p: Box<Proposal>) -> Option<Verdict> {
        let header = &p.block.header;
        let height = header.height;
        tracing::debug!(height, round = p.round, peer = %msg.peer(), txs = p.block.txs.len(), "proposal received");
        if height <= self.core.head.height {
            return Some(Verdict::Ignore);
        }
        if height > self.core.head.height + 1 || self.in_flight.is_some() {
            // the head block is being written (or this node is behind): judge it later
            if height == self.engine.height() && self.deferred.len() < MAX_DEFERRED {
                self.deferred.push((msg, p));
                return None;
            }
            return Some(Verdict::Ignore);
        }
        let ConsensusFields::RoundRobin { round: built_round } = header.consensus else {
            return Some(Verdict::Reject);
        };
        // Authenticity: a fresh proposal is the block sealed by the round's proposer; a
        // re-proposal carries a block sealed in an earlier round, justified by a polka the
        // engine checks from signed prevotes.
        let proposer = match p.valid_round {
            None if built_round == p.round => header.proposer,
            Some(vr) if built_round <= vr && vr < p.round => self.engine.proposer(height, p.round),
            _ => return Some(Verdict::Reject),
        };
        let now = now_ms();
        if let Err(e) = self.rules.verify_header(&p.block, &self.core.head, now) {
            tracing::warn!(height, peer = %msg.peer(), error = %e, "proposal refused");
            return Some(Verdict::Reject);
        }
        if let Err(e) = self.check_last_commit(&p.block.header, p.last_commit.as_ref()) {
            tracing::warn!(height, peer = %msg.peer(), error = %e, "proposal refused");
            return Some(Verdict::Reject);
        }
        let hash = p.block.hash();
        let valid = if self.candidates.contains_key(&hash) {
            true
        } else {
            let store = &self.core.store;
            let mempool = &self.core.mempool;
            match check_block(
                &self.core.genesis,
                &HeaderRules::RoundRobin(&self.rules),
                &self.core.head,
                &self.core.frontier,
                &p.block,
                now,
                |t| mempool.get(&t.id()).is_some_and(|m| m == t),
                &crate::execute::StoreState(&**store),
                |s| store.next_nonce(s),
            ) {
                Ok(checked) => {
                    self.candidates.insert(
                        hash,
                        Candidate {
                            block: p.block.clone(),
                            checked,
                            last_commit: p.last_commit.clone(),
                        },
                    );
                    true
                }
                Err(e) => {
                    tracing::warn!(height, peer = %msg.peer(), error = %e, "invalid proposed block");
                    false
                }
            }
        };
        let fed = self.feed(BftInput::Proposal {
            height,
            round: p.round,
            block: hash,
            valid_round: p.valid_round,
            proposer,
            valid,
            timestamp_ms: header.timestamp_ms,
        });
        if let Err(e) = &fed {
            tracing::debug!(height, round = p.round, error = ?e, "proposal not taken by the engine");
        }
        if valid && fed.is_ok() {
            self.core.saw(proposer, false);
        }
        Some(if valid && fed.is_ok() {
            Verdict::Accept
        } else {
            Verdict::Reject
        })
    }

    /// Verifies vote signatures (ZIP-215) and feeds them to the engine.
    pub(super) fn on_votes(&mut self, votes: Vec<Vote>) -> Verdict {
        for v in votes {
            tracing::trace!(height = v.body.height, round = v.body.round, kind = ?v.body.kind, validator = %v.body.validator, "vote received");
            if v.verify(&self.core.chain_id).is_err() {
                tracing::warn!(validator = %v.body.validator, "vote with a bad signature");
                return Verdict::Reject;
            }
            if let Err(e) = self.feed(BftInput::Vote(v)) {
                tracing::warn!(error = %e, "vote refused");
                return Verdict::Reject;
            }
            self.core.saw(v.body.validator, true);
        }
        Verdict::Accept
    }

    /// Checks the parent certificate a block carries against the head (its parent): none at
    /// height 1; otherwise precommits of a quorum for the head, and the header's
    /// `last_commit_hash` names exactly this certificate. Errors: what does not hold.
    pub(super) fn check_last_commit(
        &self,
        header: &Header,
        last_commit: Option<&CommitCertificate>,
    ) -> Result<(), String> {
        let head = &self.core.head;
        match last_commit {
            None if head.height == 0 => {}
            None => return Err("no certificate for the parent".into()),
            Some(_) if head.height == 0 => {
                return Err("a certificate for the genesis block".into());
            }
            Some(c) => c
                .check_header(
                    &self.core.chain_id,
                    head,
                    &self.core.validators_at(head.height)?,
                )
                .map_err(|e| format!("parent certificate: {e}"))?,
        }
        if last_commit_hash(last_commit) != header.last_commit_hash {
            return Err("last_commit_hash does not name the parent certificate".into());
        }
        Ok(())
    }
}
