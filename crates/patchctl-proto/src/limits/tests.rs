//! Tests of the agent message caps: real messages at and over their limits, and a
//! property test against a plain recursive reference over `serde_json::Value`.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// The reference: the first value over its cap, walking `v` as [`check_agent_json`]
/// should (strings and lists take their field's caps, items inherit them).
fn reference(v: &Value, field: &str) -> bool {
    match v {
        Value::String(s) => s.len() <= max_string_len(field),
        Value::Array(items) => {
            items.len() <= max_items(field) && items.iter().all(|i| reference(i, field))
        }
        Value::Object(m) => m
            .iter()
            .all(|(k, v)| k.len() <= DEFAULT_MAX_STRING && reference(v, k)),
        _ => true,
    }
}

fn check(v: &Value) -> Result<(), LimitError> {
    check_agent_json(&serde_json::to_vec(v).unwrap())
}

#[test]
fn a_hostname_at_its_limit_passes_and_one_byte_more_is_named() {
    let at = json!({"agent_version": "1.0", "system": {"hostname": "h".repeat(MAX_HOSTNAME)}});
    check(&at).unwrap();
    let over =
        json!({"agent_version": "1.0", "system": {"hostname": "h".repeat(MAX_HOSTNAME + 1)}});
    let e = check(&over).unwrap_err();
    assert_eq!(
        e,
        LimitError::TooLong {
            path: "system.hostname".into(),
            len: 254,
            max: 253
        }
    );
    assert!(e.to_string().contains("system.hostname"), "{e}");
    assert!(e.to_string().contains("253"), "{e}");
}

#[test]
fn compact_package_rows_take_the_package_caps() {
    let row = |name: String| json!([name, "1.0", "amd64", "", "", ""]);
    let ok = json!({"digest": "d", "body": {"kind": "full", "state": {"packages": [row("a".repeat(MAX_PACKAGE_STRING))]}}});
    check(&ok).unwrap();
    let long = json!({"digest": "d", "body": {"kind": "full", "state": {"packages": [row("a".repeat(MAX_PACKAGE_STRING + 1))]}}});
    let e = check(&long).unwrap_err();
    assert!(e.to_string().contains("body.state.packages[][]"), "{e}");
}

#[test]
fn a_scan_with_too_many_packages_is_refused_naming_the_count_cap() {
    let rows: Vec<Value> = (0..=MAX_SCAN_PACKAGES)
        .map(|i| json!([format!("p{i}"), "1", "all", "", "", ""]))
        .collect();
    let v = json!({"body": {"kind": "full", "state": {"packages": rows}}});
    let e = check(&v).unwrap_err();
    assert_eq!(
        e,
        LimitError::TooMany {
            path: "body.state.packages[]".into(),
            len: MAX_SCAN_PACKAGES + 1,
            max: MAX_SCAN_PACKAGES
        }
    );
    // At the cap it passes.
    let rows: Vec<Value> = (0..MAX_SCAN_PACKAGES)
        .map(|i| json!([format!("p{i}"), "1", "all", "", "", ""]))
        .collect();
    check(&json!({"body": {"kind": "full", "state": {"packages": rows}}})).unwrap();
}

#[test]
fn the_v1_fixtures_are_under_every_cap() {
    for name in ["enroll", "heartbeat", "inventory", "results"] {
        let path = format!("{}/tests/data/v1/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read(&path).unwrap();
        check_agent_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn output_text_is_capped_and_what_is_not_json_passes() {
    let v = json!({"results": [{"summary": "x".repeat(MAX_TEXT + 1)}]});
    let e = check(&v).unwrap_err();
    assert!(e.to_string().contains("results[].summary"), "{e}");
    check_agent_json(b"not json").unwrap();
    check_agent_json(b"").unwrap();
}

/// Field names the generator picks from: some with caps of their own, some without.
const FIELDS: &[&str] = &[
    "hostname",
    "packages",
    "summary",
    "ips",
    "name",
    "tags",
    "x",
    "output_tail",
];

fn arb_len(field: &'static str) -> impl Strategy<Value = usize> {
    let max = max_string_len(field);
    prop_oneof![0..8usize, (max - 2)..(max + 3)]
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (0usize..300).prop_map(|n| Value::String("s".repeat(n))),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner, any::<bool>()), 0..5)
                .prop_flat_map(|entries| {
                    let lens: Vec<_> = entries.iter().map(|(f, _, _)| arb_len(f)).collect();
                    (Just(entries), lens)
                })
                .prop_map(|(entries, lens)| {
                    let mut m = serde_json::Map::new();
                    for ((f, v, plain), len) in entries.into_iter().zip(lens) {
                        // Half the fields hold a string near their cap, half any value.
                        let v = if plain {
                            Value::String("a".repeat(len))
                        } else {
                            v
                        };
                        m.insert(f.to_string(), v);
                    }
                    Value::Object(m)
                }),
        ]
    })
}

proptest! {
    #[test]
    fn the_walk_refuses_exactly_what_the_reference_refuses(v in arb_value()) {
        prop_assert_eq!(check(&v).is_ok(), reference(&v, ""), "{}", v);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = check_agent_json(&bytes);
    }
}
