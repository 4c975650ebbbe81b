//! Building this validator's proposal: assemble a block on the head (core), seal it, keep it as
//! a candidate for the height being decided.

use anyhow::Context;
use auditchain_primitives::block::ConsensusFields;
use auditchain_primitives::vote::last_commit_hash;
use auditchain_primitives::{Block, Hash};

use super::{Actor, Candidate};

impl Actor {
    /// Builds, executes and seals a block for `height` (the head's child) in `round`; keeps it
    /// as a candidate. Returns its hash. Errors: not a validator, execution failure.
    pub(super) fn build(
        &mut self,
        height: u64,
        round: u32,
        timestamp_ms: u64,
    ) -> anyhow::Result<Hash> {
        let key = self.core.key.clone().context("not a validator")?;
        // the head's certificate as this node holds it becomes the canonical one
        let last_commit = if self.core.head.height == 0 {
            None
        } else {
            Some(
                self.core
                    .store
                    .certificate(self.core.head.height)?
                    .context("the head has no certificate")?,
            )
        };
        let (header, txs, checked) = self.core.assemble(
            key.public_key(),
            timestamp_ms,
            ConsensusFields::RoundRobin { round },
            last_commit_hash(last_commit.as_ref()),
        )?;
        debug_assert_eq!(header.height, height);
        let block = Block::seal_with(header, txs, &key);
        let hash = checked.hash;
        self.candidates.insert(
            hash,
            Candidate {
                block,
                checked,
                last_commit,
            },
        );
        Ok(hash)
    }
}
