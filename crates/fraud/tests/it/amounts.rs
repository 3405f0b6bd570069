//! A2: bad amounts are validation errors, never panics.

use haven_core::ErrorCode;
use haven_fraud::{Amount, AmountError, Error, Event, EventError};
use proptest::prelude::*;

use crate::helpers::*;

fn purchase_json(amount_json: &str) -> String {
    format!(
        r#"{{"type":"purchase","event_id":"e1","user":"u1","amount":{amount_json},"currency":"NGN","ts":"2026-01-02T10:00:00Z"}}"#
    )
}

#[test]
fn bad_amounts_are_typed_validation_errors() {
    let cases: &[(&str, AmountError)] = &[
        ("-1", AmountError::Signed),
        ("-0", AmountError::Signed),
        ("+5", AmountError::Signed),
        ("0", AmountError::Zero),
        ("0.000000000000000000", AmountError::Zero),
        ("1e3", AmountError::Exponent),
        ("1E-3", AmountError::Exponent),
        (
            "1.0000000000000000001",
            AmountError::TooManyDecimals { found: 19 },
        ),
        (
            "340282366920938463463.374607431768211456",
            AmountError::Overflow,
        ),
        ("999999999999999999999999", AmountError::Overflow),
        ("abc", AmountError::InvalidCharacter { position: 0 }),
        ("12abc", AmountError::InvalidCharacter { position: 2 }),
        ("1_000", AmountError::InvalidCharacter { position: 1 }),
        ("Infinity", AmountError::InvalidCharacter { position: 0 }),
        ("0x1f", AmountError::InvalidCharacter { position: 1 }),
        ("1.", AmountError::Malformed),
        ("", AmountError::Empty),
    ];
    for (raw, want) in cases {
        let err = Event::from_json(purchase_json(&format!("\"{raw}\"")).as_bytes()).unwrap_err();
        match &err {
            EventError::Amount(got) => assert_eq!(got, want, "{raw:?}"),
            other => panic!("{raw:?}: {other:?}"),
        }
        assert_eq!(Error::from(err).code(), ErrorCode::InvalidAmount, "{raw:?}");
    }
    // 18 decimals is the limit, and is fine.
    assert!(Amount::parse_positive("0.000000000000000001").is_ok());
}

#[test]
fn amounts_must_be_strings() {
    for raw in ["1000", "1e3", "-1", "1.5", "null", "true"] {
        let err = Event::from_json(purchase_json(raw).as_bytes()).unwrap_err();
        assert!(matches!(err, EventError::Json(_)), "{raw}: {err:?}");
        assert_eq!(Error::from(err).code(), ErrorCode::InvalidJson);
    }
}

#[tokio::test]
async fn an_engine_refuses_an_event_built_with_a_zero_amount() {
    let b = backends().await.remove(0);
    let engine = b.engine(haven_fraud::DEFAULT_RULES);
    let err = engine
        .evaluate(&purchase("z", "u", "0", at(0)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidAmount);
}

proptest! {
    #[test]
    fn arbitrary_amount_strings_never_panic(raw in "[-+0-9.eE ,_xa-f]{0,70}") {
        let json = purchase_json(&serde_json::to_string(&raw).unwrap());
        match Event::from_json(json.as_bytes()) {
            Ok(event) => {
                let (_, p) = event.payment().unwrap();
                prop_assert!(!p.amount.is_zero());
                prop_assert_eq!(Amount::parse(&p.amount.to_string()), Ok(p.amount));
            }
            Err(EventError::Amount(_)) => {}
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Event::from_json(&raw);
    }
}
