//! The RFC 8785 writer in `auditchain_primitives::jcs` must give exactly the bytes of the
//! reference implementation (`serde_jcs`) for every value: a difference would change what
//! clients sign. Checked on generated JSON (keys outside the BMP, controls, floats, large
//! integers), on RFC 8785's own examples, and on every kind of transaction body.

use auditchain_primitives::jcs;
use auditchain_primitives::tx::{Payload, TxBody, canonical_json};
use auditchain_primitives::{SecretKey, sha256};
use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};

fn key() -> impl Strategy<Value = String> {
    // ASCII, Latin-1, controls, U+E000–U+FFFF and astral characters: UTF-16 order differs
    // from UTF-8 order exactly between the last two.
    prop::collection::vec(
        prop_oneof![
            prop::char::range('a', 'e'),
            prop::char::range('\u{0}', '\u{1f}'),
            Just('"'),
            Just('\\'),
            Just('\u{7f}'),
            Just('é'),
            prop::char::range('\u{e000}', '\u{e002}'),
            Just('\u{ff61}'),
            prop::char::range('\u{1f600}', '\u{1f602}'),
        ],
        0..4,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<u64>().prop_map(Number::from),
        any::<i64>().prop_map(Number::from),
        (0u64..=(1 << 53) + 2).prop_map(Number::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Number::from_f64(f).unwrap()),
        prop::sample::select(vec![0.5, -0.0, 1e21, 1e-7, 123456789.125, 3.0, 5e-324])
            .prop_map(|f| Number::from_f64(f).unwrap()),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Number),
        key().prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn writer_matches_the_reference(v in value()) {
        prop_assert_eq!(jcs::value_to_string(&v).unwrap(), serde_jcs::to_string(&v).unwrap());
    }

    /// The direct writer for records gives the reference bytes, for any strings and integers
    /// (also outside the I-JSON range).
    #[test]
    fn record_bodies_match_the_reference(
        data in prop::option::of(value()),
        entity in any::<String>(),
        ty in prop_oneof![key(), any::<String>()],
        nonce in prop_oneof![any::<u64>(), 0u64..1000],
        ts in prop_oneof![any::<u64>(), Just((1u64 << 53) - 1)],
        seed in any::<[u8; 32]>(),
    ) {
        let body = TxBody {
            chain_id: sha256(&seed),
            signer: SecretKey::from_seed(&seed).public_key(),
            nonce,
            timestamp_ms: ts,
            payload: Payload::RecordEvent {
                event_type: ty,
                entity_id: entity,
                data_hash: sha256(b"d"),
                data: data.map(|d| d.try_into().unwrap()),
            },
        };
        let reference = serde_jcs::to_string(&body).unwrap();
        prop_assert_eq!(&body.canonical_text().unwrap(), &reference);
    }

    /// Soundness of the fast check: whatever it accepts (canonical texts and mutations of
    /// them) parses, writes back to the same bytes and holds only I-JSON integers. And it is
    /// complete where it claims to be: it accepts the canonical text of every value whose
    /// numbers are all such integers, unless a key needs an escape.
    #[test]
    fn the_fast_canonical_check_accepts_only_canonical_texts(
        v in value(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), edit()), 0..3),
    ) {
        let canon = jcs::value_to_string(&v).unwrap();
        if jcs::is_canonical_simple(&canon) {
            prop_assert!(full_path_accepts(&canon), "{canon}");
        } else {
            prop_assert!(!simple(&v), "refused {canon}");
        }
        let mut text = canon.clone();
        for (at, e) in edits {
            let mut cut = at.index(text.len() + 1);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            match e {
                Edit::Insert(s) => text.insert_str(cut, s),
                Edit::Delete => {
                    let end = text[cut..].chars().next().map_or(cut, |c| cut + c.len_utf8());
                    text.replace_range(cut..end, "");
                }
            }
        }
        if jcs::is_canonical_simple(&text) {
            prop_assert!(full_path_accepts(&text), "accepted {text:?}");
        }
    }
}

/// A mutation of a canonical text.
#[derive(Debug, Clone)]
enum Edit {
    Insert(&'static str),
    Delete,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        Just(Edit::Delete),
        prop::sample::select(vec![
            " ",
            "0",
            "-",
            "1",
            ".5",
            "e2",
            "\\",
            "\\u0041",
            "\\u001F",
            "\\u001f",
            "\\/",
            "\"",
            ",",
            ":",
            "{",
            "}",
            "[",
            "]",
            "\"a\":1",
            "\u{1}",
            "é",
            "\u{1f600}",
            "null",
            "9007199254740992",
        ])
        .prop_map(Edit::Insert),
    ]
}

/// What the full path decides: the text parses, every number is an I-JSON integer, and the
/// writer gives the same bytes back.
fn full_path_accepts(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .is_ok_and(|v| simple(&v) && jcs::value_to_string(&v).unwrap() == text)
}

/// Every number is an integer within ±(2^53−1) and no key needs an escape. (The generated
/// values nest far less than the check's 64 levels.)
fn simple(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_i64().is_some_and(|i| i.unsigned_abs() < 1 << 53),
        Value::Array(a) => a.iter().all(simple),
        Value::Object(o) => o
            .iter()
            .all(|(k, x)| !k.chars().any(|c| c == '"' || c == '\\' || c < ' ') && simple(x)),
        _ => true,
    }
}

#[test]
fn the_fast_canonical_check_on_chosen_texts() {
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    let shallow = format!("{}{}", "[".repeat(64), "]".repeat(64));
    for ok in [
        "0",
        "-9007199254740991",
        "9007199254740991",
        r#"{"a":[1,true,null,"x\n\u001f\"\\"],"b":{}}"#,
        "{\"é\":1,\"\u{ff61}\":2}",
        // UTF-16 order: an astral character (a surrogate pair, D83D…) sorts before U+FF61,
        // though its UTF-8 bytes sort after.
        "{\"\u{1f600}\":1,\"\u{ff61}\":2}",
        "\"\\u000b\u{7f}\u{2028}\"",
        shallow.as_str(),
    ] {
        assert!(jcs::is_canonical_simple(ok), "{ok}");
        assert!(full_path_accepts(ok), "{ok}");
    }
    for refused in [
        "-0",
        "01",
        "1.0",
        "1e2",
        "9007199254740992",
        " 1",
        "1 ",
        r#"{"b":1,"a":2}"#,
        r#"{"a":1,"a":2}"#,
        "{\"\u{ff61}\":1,\"\u{1f600}\":2}",
        r#"{"\u0041":1}"#,
        r#""\u0041""#,
        r#""\u000A""#,
        r#""\u000a""#,
        r#""\/""#,
        "\"\u{1}\"",
        "[1,]",
        r#"{"a":1"#,
        "tru",
        "",
        deep.as_str(),
    ] {
        assert!(!jcs::is_canonical_simple(refused), "{refused}");
    }
}

#[test]
fn rfc8785_examples() {
    // RFC 8785 §3.2.2 (the number and string sample) and §3.2.3 (sorting).
    let v: Value = serde_json::from_str(
        r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]}"#,
    )
    .unwrap();
    assert_eq!(
        jcs::value_to_string(&v).unwrap(),
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
    let sorting: Value = serde_json::from_str(
        r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"}"#,
    )
    .unwrap();
    assert_eq!(
        jcs::value_to_string(&sorting).unwrap(),
        "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
         \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
         \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
    );
}

#[test]
fn every_payload_kind_matches_the_reference() {
    let k = SecretKey::from_seed(&[3; 32]);
    let bodies: Vec<Value> = vec![
        json!({"type": "record_event", "event_type": "t", "entity_id": "e", "data": {"z": [1, 2.5, "ü"], "a": null}, "data_hash": sha256(b"x")}),
        json!({"type": "anchor_evidence", "entity_id": "e", "sha256": sha256(b"f"), "size_bytes": 12, "uri": "s3://b/k"}),
        json!({"type": "token_transfer", "to": k.public_key(), "amount": 5}),
        json!({"type": "gov_propose", "title": "t", "description": "d", "voting_period_blocks": 10, "quadratic": true}),
        json!({"type": "gov_vote", "proposal": 1, "choice": "yes"}),
    ];
    for p in bodies {
        let payload: Payload = serde_json::from_value(p.clone()).unwrap();
        let body = TxBody {
            chain_id: sha256(b"c"),
            signer: k.public_key(),
            nonce: 9,
            timestamp_ms: 1_700_000_000_000,
            payload,
        };
        assert_eq!(
            canonical_json(&body).unwrap(),
            serde_jcs::to_string(&body).unwrap(),
            "{p}"
        );
    }
}
