//! Consensus votes and commit certificates (round-robin BFT finality).
//!
//! A validator signs `"auditchain:vote:v1" ‖ 0x00 ‖ chain_id ‖ encode(VoteBody)` (canonical
//! codec). A block is **final** when a [`CommitCertificate`] holds precommits for it, at one
//! height and round, from at least [`quorum`]`(n) = ⌊2n/3⌋ + 1` distinct validators of the set.
//! Two quorums of one set always share more than ⌊(n−1)/3⌋ validators, so with at most that many
//! faulty validators no two different blocks can be final at one height.

use serde::{Deserialize, Serialize};

use crate::block::{Block, ConsensusFields, Header};
use crate::bytes::{Hash, PublicKey, Signature};
use crate::codec::encode;
use crate::keys::{SecretKey, SignatureError, verify, verify_batch};
use crate::tx::WireTx;

/// Domain tag of the vote preimage (followed by one 0x00 byte).
pub const VOTE_DOMAIN: &[u8] = b"auditchain:vote:v1\x00";

/// Votes needed for a quorum of `n` validators: ⌊2n/3⌋ + 1.
pub fn quorum(n: usize) -> usize {
    2 * n / 3 + 1
}

/// Largest number of faulty validators `n` tolerates: ⌊(n−1)/3⌋.
pub fn max_faulty(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// The two voting steps of a round (Tendermint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    /// First step: "this proposal is acceptable".
    Prevote,
    /// Second step, after a quorum of prevotes: "commit this block".
    Precommit,
}

/// The signed content of a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteBody {
    /// Step.
    pub kind: VoteKind,
    /// Height voted on.
    pub height: u64,
    /// Round at that height.
    pub round: u32,
    /// The block hash voted for; `None` is a vote for nothing (nil).
    pub block: Option<Hash>,
    /// The voting validator.
    pub validator: PublicKey,
}

/// A signed vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    /// What is signed.
    pub body: VoteBody,
    /// ed25519 signature over [`vote_preimage`].
    pub signature: Signature,
}

/// The vote signing preimage.
pub fn vote_preimage(chain_id: &Hash, body: &VoteBody) -> Vec<u8> {
    let mut v = Vec::with_capacity(VOTE_DOMAIN.len() + 32 + 64);
    v.extend_from_slice(VOTE_DOMAIN);
    v.extend_from_slice(&chain_id.0);
    // A vote body holds only fixed-size fields, so encoding cannot fail.
    v.extend_from_slice(&encode(body).unwrap_or_default());
    v
}

impl Vote {
    /// Signs `body` for chain `chain_id` with `key` (which must be `body.validator`'s key).
    pub fn sign(chain_id: &Hash, body: VoteBody, key: &SecretKey) -> Vote {
        Vote {
            signature: key.sign(&vote_preimage(chain_id, &body)),
            body,
        }
    }

    /// Verifies the signature (ZIP-215). Errors: [`SignatureError`].
    pub fn verify(&self, chain_id: &Hash) -> Result<(), SignatureError> {
        verify(
            &self.body.validator,
            &vote_preimage(chain_id, &self.body),
            &self.signature,
        )
    }
}

/// Why a commit certificate is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Fewer distinct validators than a quorum.
    #[error("{got} distinct validator precommits, quorum is {need}")]
    NoQuorum {
        /// Valid distinct signers.
        got: usize,
        /// Quorum.
        need: usize,
    },
    /// A signer is not in the validator set.
    #[error("{0} is not a validator")]
    NotValidator(PublicKey),
    /// A signature does not verify.
    #[error("precommit of {0} does not verify")]
    BadSignature(PublicKey),
    /// The certificate is for another height, round or block than the header it is paired with.
    #[error(
        "certificate for height {height} round {round} block {block} does not match the header"
    )]
    WrongBlock {
        /// Certificate height.
        height: u64,
        /// Certificate round.
        round: u32,
        /// Certificate block hash.
        block: Hash,
    },
}

/// The precommits that finalized a block: the proof of finality stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitCertificate {
    /// Height of the block.
    pub height: u64,
    /// Round in which it was committed.
    pub round: u32,
    /// The block hash.
    pub block: Hash,
    /// `(validator, signature)` of each precommit, sorted by validator key.
    pub signatures: Vec<(PublicKey, Signature)>,
}

impl CommitCertificate {
    /// Verifies the certificate against the validator set: every signer is a validator, every
    /// signature is a precommit for `(height, round, block)`, and distinct signers reach
    /// [`quorum`]. Signatures are checked in one batch. Errors: [`CertificateError`].
    pub fn verify(
        &self,
        chain_id: &Hash,
        validators: &[PublicKey],
    ) -> Result<(), CertificateError> {
        let mut signers: Vec<PublicKey> = Vec::with_capacity(self.signatures.len());
        let mut items = Vec::with_capacity(self.signatures.len());
        for (pk, sig) in &self.signatures {
            if !validators.contains(pk) {
                return Err(CertificateError::NotValidator(*pk));
            }
            if signers.contains(pk) {
                continue;
            }
            signers.push(*pk);
            let body = VoteBody {
                kind: VoteKind::Precommit,
                height: self.height,
                round: self.round,
                block: Some(self.block),
                validator: *pk,
            };
            items.push((*pk, vote_preimage(chain_id, &body), *sig));
        }
        for ((pk, _, _), r) in items.iter().zip(verify_batch(&items)) {
            if r.is_err() {
                return Err(CertificateError::BadSignature(*pk));
            }
        }
        let need = quorum(validators.len());
        if signers.len() < need {
            return Err(CertificateError::NoQuorum {
                got: signers.len(),
                need,
            });
        }
        Ok(())
    }
}

impl CommitCertificate {
    /// Verifies that the certificate finalizes `header`: same height, the header's hash, then
    /// [`CommitCertificate::verify`]. The certificate's round may be later than the header's
    /// round (a block built in one round can be re-proposed and decided in a later one).
    /// Errors: [`CertificateError`].
    pub fn check_header(
        &self,
        chain_id: &Hash,
        header: &Header,
        validators: &[PublicKey],
    ) -> Result<(), CertificateError> {
        let round_ok = matches!(header.consensus, ConsensusFields::RoundRobin { round } if round <= self.round);
        if self.height != header.height || !round_ok || self.block != header.hash() {
            return Err(CertificateError::WrongBlock {
                height: self.height,
                round: self.round,
                block: self.block,
            });
        }
        self.verify(chain_id, validators)
    }
}

/// The header commitment to a parent certificate: SHA-256 of its canonical encoding, or zero
/// for none (see `Header::last_commit_hash`).
pub fn last_commit_hash(cert: Option<&CommitCertificate>) -> Hash {
    cert.map_or(Hash::ZERO, |c| {
        crate::bytes::sha256(&encode(c).unwrap_or_default())
    })
}

/// Evidence that a validator signed two different votes for one height, round and step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Equivocation {
    /// The vote seen first.
    pub first: Vote,
    /// The conflicting vote.
    pub second: Vote,
}

impl Equivocation {
    /// Checks that both votes are by one validator, for one height, round and step, name
    /// different blocks, and both verify. Errors: a description of what does not hold.
    pub fn verify(&self, chain_id: &Hash) -> Result<(), String> {
        let (a, b) = (&self.first.body, &self.second.body);
        if a.validator != b.validator
            || a.height != b.height
            || a.round != b.round
            || a.kind != b.kind
        {
            return Err("votes are not for one validator, height, round and step".into());
        }
        if a.block == b.block {
            return Err("votes do not conflict".into());
        }
        self.first
            .verify(chain_id)
            .map_err(|e| format!("first vote: {e}"))?;
        self.second
            .verify(chain_id)
            .map_err(|e| format!("second vote: {e}"))
    }
}

/// A block with the certificate that made it final: what block sync transfers. Proof-of-work
/// blocks carry none (their work is in the header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertifiedBlock {
    /// The block.
    pub block: Block,
    /// Its commit certificate (round-robin chains).
    pub certificate: Option<CommitCertificate>,
}

/// The wire form of a [`CertifiedBlock`]: its transactions as [`WireTx`], not parsed. Both
/// encode to the same bytes (a transaction encodes as its wire form), so a node serves stored
/// blocks in this form without parsing them, and the receiver parses (and checks) each
/// transaction with `Transaction::try_from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireCertifiedBlock {
    /// The header.
    pub header: Header,
    /// The proposer's seal.
    pub seal: Signature,
    /// The transactions, in block order.
    pub txs: Vec<WireTx>,
    /// The commit certificate (round-robin chains).
    pub certificate: Option<CommitCertificate>,
}

impl From<CertifiedBlock> for WireCertifiedBlock {
    fn from(cb: CertifiedBlock) -> Self {
        WireCertifiedBlock {
            header: cb.block.header,
            seal: cb.block.seal,
            txs: cb.block.txs.into_iter().map(WireTx::from).collect(),
            certificate: cb.certificate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_sizes() {
        assert_eq!(
            (1..=7).map(quorum).collect::<Vec<_>>(),
            vec![1, 2, 3, 3, 4, 5, 5]
        );
        assert_eq!(
            (1..=7).map(max_faulty).collect::<Vec<_>>(),
            vec![0, 0, 0, 1, 1, 1, 2]
        );
        // two quorums always overlap in more than f validators
        for n in 1..50 {
            assert!(2 * quorum(n) - n > max_faulty(n), "n={n}");
        }
    }

    #[test]
    fn certificate_checks() {
        let chain = Hash([1; 32]);
        let keys: Vec<SecretKey> = (1..=4u8).map(|i| SecretKey::from_seed(&[i; 32])).collect();
        let vals: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
        let block = Hash([9; 32]);
        let pc = |k: &SecretKey| {
            Vote::sign(
                &chain,
                VoteBody {
                    kind: VoteKind::Precommit,
                    height: 5,
                    round: 1,
                    block: Some(block),
                    validator: k.public_key(),
                },
                k,
            )
        };
        let mut cert = CommitCertificate {
            height: 5,
            round: 1,
            block,
            signatures: keys[..3]
                .iter()
                .map(|k| (k.public_key(), pc(k).signature))
                .collect(),
        };
        assert_eq!(cert.verify(&chain, &vals), Ok(()));
        assert!(pc(&keys[0]).verify(&chain).is_ok());
        // a duplicate signer does not count twice
        let dup = cert.signatures[0];
        cert.signatures[2] = dup;
        assert_eq!(
            cert.verify(&chain, &vals),
            Err(CertificateError::NoQuorum { got: 2, need: 3 })
        );
        // another round's signature does not verify here
        cert.signatures[2] = (keys[2].public_key(), pc(&keys[2]).signature);
        cert.round = 2;
        assert!(matches!(
            cert.verify(&chain, &vals),
            Err(CertificateError::BadSignature(_))
        ));
        cert.round = 1;
        let outsider = SecretKey::from_seed(&[77; 32]);
        cert.signatures
            .push((outsider.public_key(), pc(&outsider).signature));
        assert!(matches!(
            cert.verify(&chain, &vals),
            Err(CertificateError::NotValidator(_))
        ));
    }
}
