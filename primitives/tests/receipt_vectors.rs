//! docs/receipt-validator-change.json: a receipt from a real cluster whose governance added a
//! validator. The Python client checks the same file (clients/python/tests), so both
//! implementations of docs/blocks.md step 0 are pinned to one real artifact.

use auditchain_primitives::receipt::{Receipt, ReceiptError};
use auditchain_primitives::{Hash, PublicKey};

struct Vector {
    chain_id: Hash,
    genesis: Vec<PublicKey>,
    receipt: Receipt,
}

fn vector_json() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/receipt-validator-change.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("json")
}

fn vector() -> Vector {
    let v = vector_json();
    Vector {
        chain_id: serde_json::from_value(v["chain_id"].clone()).expect("chain id"),
        genesis: serde_json::from_value(v["genesis_validators"].clone()).expect("validators"),
        receipt: serde_json::from_value(v["receipt"].clone()).expect("receipt"),
    }
}

/// The set of the receipt's height, followed from `genesis` (the proposer schedule is the
/// node's rule and is checked there, not here).
fn follow(v: &Vector, r: &Receipt) -> Result<Vec<PublicKey>, ReceiptError> {
    let mut set = v.genesis.clone();
    for c in &r.validator_set_changes {
        let key = [b"state/vset/at/".as_slice(), &c.from_height().to_be_bytes()].concat();
        set = c.verify(&v.chain_id, &set, &key)?;
    }
    Ok(set)
}

#[test]
fn the_recorded_change_is_followed_and_the_receipt_verifies() {
    let v = vector();
    assert_eq!(v.receipt.validator_set_changes.len(), 1);
    let set = follow(&v, &v.receipt).expect("change verifies");
    assert_eq!(set.len(), v.genesis.len() + 1);
    assert_eq!(&set[..v.genesis.len()], &v.genesis[..]);
    v.receipt
        .verify(&v.chain_id, &set, |_| Ok(()))
        .expect("receipt verifies against the followed set");
}

#[test]
fn without_its_change_the_receipt_fails_against_the_genesis_set() {
    let v = vector();
    let mut stripped = v.receipt.clone();
    stripped.validator_set_changes.clear();
    let set = follow(&v, &stripped).expect("nothing to follow");
    assert_eq!(set, v.genesis);
    assert!(matches!(
        stripped.verify(&v.chain_id, &set, |_| Ok(())),
        Err(ReceiptError::Certificate(_))
    ));
}

#[test]
fn a_witness_key_that_is_not_hex_is_refused_when_the_receipt_is_read() {
    let mut v = vector_json();
    v["receipt"]["validator_set_changes"][0]["witness"]["writes"][0]["key"] = "zz".into();
    let e = serde_json::from_value::<Receipt>(v["receipt"].clone()).expect_err("not hex");
    assert!(e.to_string().contains("Invalid character"), "{e}");
}
