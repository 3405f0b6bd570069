use haven_vault::canonical::{canonical_bytes, canonical_hash};
use haven_vault::{Amount, Operation, OperationKind};
use proptest::prelude::*;
use serde_json::{Value, json};

#[test]
fn key_order_and_whitespace_do_not_change_the_hash() {
    let a: Value = serde_json::from_str(
        r#"{"kind":"redemption","amount":"5000000","params":{"member":"m-42","payout":{"iban":"DE89","bank":"x"}}}"#,
    )
    .unwrap();
    let b: Value = serde_json::from_str(
        "{\n  \"params\" : { \"payout\" : {\"bank\":\"x\",  \"iban\" : \"DE89\"},\t\"member\":\"m-42\" },\n  \"amount\": \"5000000\",\r\n \"kind\":\"redemption\"\n}",
    )
    .unwrap();
    assert_eq!(canonical_hash(&a).unwrap(), canonical_hash(&b).unwrap());
    let op = Operation::new(OperationKind::Redemption)
        .amount(Amount(5_000_000))
        .params(json!({"member": "m-42", "payout": {"iban": "DE89", "bank": "x"}}));
    assert_eq!(
        op.canonical_json().unwrap().as_bytes(),
        canonical_bytes(&a).unwrap()
    );
    let changed = json!({"kind": "redemption", "amount": "5000001", "params": a["params"]});
    assert_ne!(
        canonical_hash(&a).unwrap(),
        canonical_hash(&changed).unwrap()
    );
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Writes `value` as JSON with object keys in an order and with whitespace chosen by `noise`.
fn write_noisy(value: &Value, noise: &mut impl FnMut() -> u32, out: &mut String) {
    let space = |noise: &mut dyn FnMut() -> u32, out: &mut String| {
        for _ in 0..noise() % 3 {
            out.push([' ', '\n', '\t', '\r'][(noise() % 4) as usize]);
        }
    };
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            for i in (1..entries.len()).rev() {
                entries.swap(i, noise() as usize % (i + 1));
            }
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(noise, out);
                out.push_str(&Value::String(key.clone()).to_string());
                space(noise, out);
                out.push(':');
                space(noise, out);
                write_noisy(item, noise, out);
                space(noise, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(noise, out);
                write_noisy(item, noise, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

proptest! {
    #[test]
    fn any_spelling_of_an_object_has_one_canonical_form(value in json_value(), seed in any::<u64>()) {
        let mut state = seed | 1;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u32
        };
        let mut text = String::new();
        write_noisy(&value, &mut noise, &mut text);
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        let canonical = canonical_bytes(&value).unwrap();
        prop_assert_eq!(&canonical_bytes(&reparsed).unwrap(), &canonical);
        // the canonical form is JSON for the same value, and canonical again
        let back: Value = serde_json::from_slice(&canonical).unwrap();
        prop_assert_eq!(&back, &value);
        prop_assert_eq!(canonical_bytes(&back).unwrap(), canonical);
    }
}
