//! Golden tests: the exact bytes and hashes of a transaction, a header and a block. A failure
//! here means a format changed: that must be deliberate, with docs/ updated and a version bump.
//! The transaction vectors are the ones in docs/signing.md.

use auditchain_primitives::block::{ConsensusFields, HEADER_VERSION, seal_preimage, tx_root};
use auditchain_primitives::merkle::{self, Frontier};
use auditchain_primitives::tx::{Payload, TxBody, data_hash, signing_preimage};
use auditchain_primitives::vote::{CertifiedBlock, CommitCertificate, WireCertifiedBlock};
use auditchain_primitives::{Block, Hash, Header, SecretKey, Transaction, codec, sha256};
use serde_json::json;

/// A fixed chain id: SHA-256("auditchain golden chain").
fn chain() -> Hash {
    sha256(b"auditchain golden chain")
}

/// The three signing vectors of docs/signing.md.
pub fn vectors() -> Vec<(SecretKey, TxBody)> {
    let k1 = SecretKey::from_seed(&[0x11; 32]);
    let k2 = SecretKey::from_seed(&[0x22; 32]);
    let d1 = json!({"ip": "173.234.31.186", "user": "webmaster", "port": 38926, "pid": 24200});
    let d3 = json!({"rate": 0.75, "note": "naïve “quotes” \u{1F600}", "nested": {"b": [1, 2.5, null, true], "a": -7}});
    vec![
        (
            k1.clone(),
            TxBody {
                chain_id: chain(),
                signer: k1.public_key(),
                nonce: 0,
                timestamp_ms: 1_700_000_000_000,
                payload: Payload::RecordEvent {
                    event_type: "ssh_auth_failure".into(),
                    entity_id: "LabSZ".into(),
                    data_hash: data_hash(&d1).unwrap(),
                    data: Some(d1.try_into().unwrap()),
                },
            },
        ),
        (
            k1.clone(),
            TxBody {
                chain_id: chain(),
                signer: k1.public_key(),
                nonce: 1,
                timestamp_ms: 1_700_000_000_500,
                payload: Payload::RecordEvent {
                    event_type: "phi_access".into(),
                    entity_id: "patient/12345".into(),
                    data: None,
                    data_hash: sha256(b"record kept off chain"),
                },
            },
        ),
        (
            k2.clone(),
            TxBody {
                chain_id: chain(),
                signer: k2.public_key(),
                nonce: 7,
                timestamp_ms: 1_700_000_001_000,
                payload: Payload::AnchorEvidence {
                    entity_id: "complaint-42".into(),
                    sha256: sha256(b"evidence file bytes"),
                    size_bytes: 19,
                    uri: Some("s3://evidence/complaint-42.pdf".into()),
                },
            },
        ),
        (
            k2.clone(),
            TxBody {
                chain_id: chain(),
                signer: k2.public_key(),
                nonce: 8,
                timestamp_ms: 1_700_000_001_500,
                payload: Payload::RecordEvent {
                    event_type: "batch_execution".into(),
                    entity_id: "suite/α-β".into(),
                    data_hash: data_hash(&d3).unwrap(),
                    data: Some(d3.try_into().unwrap()),
                },
            },
        ),
    ]
}

fn signed() -> Vec<Transaction> {
    vectors()
        .into_iter()
        .map(|(k, b)| Transaction::sign(b, &k).unwrap())
        .collect()
}

fn vectors_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/signing-vectors.json")
}

/// The vectors as published: every field a client needs to reproduce and check them.
fn computed_vectors() -> serde_json::Value {
    let list: Vec<serde_json::Value> = vectors()
        .iter()
        .zip(signed())
        .map(|((k, _), t)| {
            json!({
                "secret_key": hex::encode(k.seed()),
                "public_key": k.public_key(),
                "chain_id": chain(),
                "body": t.body_text(),
                "preimage_hex": hex::encode(t.preimage()),
                "signature": t.signature(),
                "tx_id": t.id(),
            })
        })
        .collect();
    json!({
        "description": "auditchain transaction signing vectors (docs/signing.md): preimage = \"auditchain:tx:v1\" 0x00 || chain_id || body; signature = Ed25519(secret_key, preimage); tx_id = SHA-256(preimage)",
        "vectors": list,
    })
}

/// Compares with docs/signing-vectors.json; `AUDITCHAIN_BLESS=1` rewrites the file (a
/// deliberate format change).
#[test]
fn transaction_vectors_match_docs() {
    let computed = computed_vectors();
    let path = vectors_path();
    if std::env::var_os("AUDITCHAIN_BLESS").is_some() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&computed).unwrap() + "\n",
        )
        .unwrap();
    }
    let published: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        published, computed,
        "signing format changed: see docs/signing.md"
    );
    for t in signed() {
        assert!(t.verify().is_ok());
        assert_eq!(t.preimage(), signing_preimage(&chain(), t.body_text()));
        assert_eq!(t.id(), sha256(&t.preimage()));
        // the wire form decodes back to the same transaction (body is canonical)
        let wire = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Transaction>(&wire).unwrap(), t);
    }
}

fn header(txs: &[Transaction]) -> Header {
    let ids: Vec<Hash> = txs.iter().map(Transaction::id).collect();
    let mut f = Frontier::new();
    ids.iter()
        .for_each(|id| f.append(merkle::leaf_hash(&id.0), |_| {}));
    Header {
        version: HEADER_VERSION,
        height: 1,
        parent_hash: chain(),
        timestamp_ms: 1_700_000_002_000,
        proposer: SecretKey::from_seed(&[0x33; 32]).public_key(),
        tx_root: tx_root(&ids),
        tx_count: ids.len() as u32,
        history_root: f.root(),
        history_size: f.size(),
        state_root: sha256(b"state"),
        last_commit_hash: Hash::ZERO,
        consensus: ConsensusFields::RoundRobin { round: 0 },
    }
}

#[test]
fn header_and_block_bytes() {
    let txs = signed();
    let h = header(&txs);
    let bytes = h.to_bytes().unwrap();
    println!(
        "header bytes {}\nheader hash {}",
        hex::encode(&bytes),
        h.hash()
    );
    assert_eq!(
        bytes.len(),
        4 + 8 + 32 + 8 + 32 + 32 + 4 + 32 + 8 + 32 + 32 + 4 + 4
    );
    assert_eq!(
        hex::encode(&bytes),
        "000000020000000000000001a1494784289318367c8f969f43ca747478871e35151d4bf48714c1ab139805490000018bcfe56fd017cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce5886175349422ce7b7b5a18e5d8dc55b7f0ca7559c50e65e753c6afb40ea843b000000045886175349422ce7b7b5a18e5d8dc55b7f0ca7559c50e65e753c6afb40ea843b00000000000000044ba69735ca53765ed6a709edb56c6ea236b7193a3b29a6b390c346f0f4340e4e00000000000000000000000000000000000000000000000000000000000000000000000100000000"
    );
    assert_eq!(
        h.hash().to_hex(),
        "e5d5d4ac4e5ba20c2d4f4f83191e9b7b3779f81fe54b4fd0c61e20d21b4b9b17"
    );
    let b = Block::seal_with(h.clone(), txs, &SecretKey::from_seed(&[0x33; 32]));
    assert_eq!(
        b.seal,
        SecretKey::from_seed(&[0x33; 32]).sign(&seal_preimage(&h.hash()))
    );
    let enc = codec::encode(&b).unwrap();
    println!(
        "block sha256 {} len {}\nseal {}",
        sha256(&enc),
        enc.len(),
        b.seal
    );
    assert_eq!(
        sha256(&enc).to_hex(),
        "949e37dfa5f623a5e70db01981ec8df0595fe30712bca046a3257f36079cbb62"
    );
    assert_eq!(enc.len(), 2235);
    assert_eq!(codec::decode::<Block>(&enc).unwrap(), b);

    // block sync sends stored blocks in their wire form, unparsed: the same bytes
    for certificate in [None, Some(certificate(&b))] {
        let cb = CertifiedBlock {
            block: b.clone(),
            certificate,
        };
        let enc = codec::encode(&cb).unwrap();
        let wire = WireCertifiedBlock::from(cb.clone());
        assert_eq!(codec::encode(&wire).unwrap(), enc);
        assert_eq!(codec::decode::<WireCertifiedBlock>(&enc).unwrap(), wire);
        assert_eq!(codec::decode::<CertifiedBlock>(&enc).unwrap(), cb);
    }
}

fn certificate(b: &Block) -> CommitCertificate {
    let key = SecretKey::from_seed(&[0x44; 32]);
    CommitCertificate {
        height: b.header.height,
        round: 0,
        block: b.hash(),
        signatures: vec![(key.public_key(), key.sign(b"any bytes"))],
    }
}
