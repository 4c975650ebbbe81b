//! `TxBody::from_json` parses records in one pass instead of through the derived `Deserialize`
//! of the `type`-tagged payload. What a node accepts is a consensus matter, so the two must
//! agree on every text: the same body, or the same error. Checked on generated record bodies,
//! each also mutated the ways a client could get it wrong (missing, unknown and foreign
//! fields, another kind's tag, null data, wrong types, key order).

use auditchain_primitives::tx::{Payload, TxBody};
use auditchain_primitives::{SecretKey, sha256};
use proptest::prelude::*;
use serde_json::{Value, json};

/// JSON values small enough to keep the test fast, nested up to 2 levels.
fn data() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The ways a record body is changed before parsing; 0 leaves it as it is.
fn mutate(v: &mut Value, how: u8, pick: usize) {
    let payload = v["payload"].as_object_mut().unwrap();
    let keys: Vec<String> = payload.keys().cloned().collect();
    match how {
        1 => {
            payload.remove(&keys[pick % keys.len()]);
        }
        2 => {
            payload.insert("extra".into(), json!(1));
        }
        3 => {
            payload.insert("sha256".into(), json!(sha256(b"f")));
        }
        4 => {
            payload.insert("type".into(), json!("anchor_evidence"));
        }
        5 => {
            payload.insert("type".into(), json!("Record_Event"));
        }
        6 => {
            payload.insert("data".into(), Value::Null);
        }
        7 => {
            payload.insert("event_type".into(), json!(7));
        }
        8 => {
            v["nonce"] = json!("7");
        }
        9 => {
            v.as_object_mut().unwrap().insert("fee".into(), json!(0));
        }
        10 => {
            v.as_object_mut().unwrap().remove("signer");
        }
        _ => {}
    }
}

fn derived(text: &str) -> Result<TxBody, String> {
    serde_json::from_str::<TxBody>(text).map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn one_pass_parse_agrees_with_the_derived_parser(
        // `"data": null` parses as no data, so a null would not round-trip.
        d in prop::option::of(data().prop_filter("not null", |d| !d.is_null())),
        entity in ".{0,8}",
        nonce in any::<u64>(),
        how in 0u8..12,
        pick in any::<usize>(),
        pretty in any::<bool>(),
    ) {
        let body = TxBody {
            chain_id: sha256(b"c"),
            signer: SecretKey::from_seed(&[4; 32]).public_key(),
            nonce,
            timestamp_ms: 1_700_000_000_000,
            payload: Payload::RecordEvent {
                event_type: "ssh_auth_failure".into(),
                entity_id: entity,
                data: d.map(|d| d.try_into().unwrap()),
                data_hash: sha256(b"d"),
            },
        };
        let mut v = serde_json::to_value(&body).unwrap();
        mutate(&mut v, how, pick);
        // serde_json's map keeps keys sorted, so both texts have `type` last in the payload.
        let text = if pretty {
            serde_json::to_string_pretty(&v).unwrap()
        } else {
            serde_json::to_string(&v).unwrap()
        };
        let fast = TxBody::from_json(&text).map_err(|e| e.to_string());
        prop_assert_eq!(&fast, &derived(&text));
        if how == 0 {
            prop_assert_eq!(fast.unwrap(), body);
        }
    }
}

#[test]
fn other_kinds_and_malformed_texts_agree() {
    let k = SecretKey::from_seed(&[3; 32]);
    let payloads = [
        json!({"type": "anchor_evidence", "entity_id": "e", "sha256": sha256(b"f"), "size_bytes": 12}),
        json!({"type": "token_transfer", "to": k.public_key(), "amount": 5}),
        json!({"type": "gov_vote", "proposal": 1, "choice": "yes"}),
        json!({"data_hash": sha256(b"d"), "entity_id": "e", "event_type": "t"}),
    ];
    for p in payloads {
        let text = json!({"chain_id": sha256(b"c"), "nonce": 1, "payload": p, "signer": k.public_key(), "timestamp_ms": 5}).to_string();
        assert_eq!(
            TxBody::from_json(&text).map_err(|e| e.to_string()),
            derived(&text),
            "{text}"
        );
    }
    let record = r#"{"chain_id":"CC","nonce":1,"payload":{"data_hash":"DD","entity_id":"e","event_type":"t","type":"record_event"},"signer":"SS","timestamp_ms":5}"#
        .replace("CC", &sha256(b"c").to_string())
        .replace("DD", &sha256(b"d").to_string())
        .replace("SS", &k.public_key().to_string());
    assert!(TxBody::from_json(&record).is_ok());
    let duplicated = record.replace(r#""nonce":1,"#, r#""nonce":1,"nonce":2,"#);
    for text in [
        duplicated.as_str(),
        &record[..record.len() - 1],
        "",
        "[]",
        "null",
    ] {
        let fast = TxBody::from_json(text).map_err(|e| e.to_string());
        assert!(fast.is_err(), "{text}");
        assert_eq!(fast, derived(text), "{text}");
    }
}
