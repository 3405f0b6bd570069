//! Properties: amount text round-trips, pricing agrees with integer arithmetic, no payload
//! makes parsing or deciding panic, and decisions on near-valid payloads keep their
//! invariants (reward ⇔ amount > 0 ⇔ a key; `decide` agrees with `try_decide`).

use haven_rewards::{
    Decimal, EventName, Hnv, PartnerEvent, Rules, decide, parse_event, quote, try_decide,
};
use proptest::prelude::*;

/// Field names the parser looks at (both spellings), a few it does not, and the wrapper.
const KEYS: &[&str] = &[
    "id",
    "booking_id",
    "bookingId",
    "guest_id",
    "guestId",
    "member_id",
    "memberId",
    "user_id",
    "attendee_id",
    "contributor_id",
    "referrer_id",
    "referrerId",
    "total_price",
    "totalPrice",
    "total",
    "currency",
    "nights",
    "numNights",
    "rating",
    "stars",
    "event_id",
    "type",
    "event_type",
    "attended",
    "contribution_id",
    "quality",
    "stake_id",
    "amount",
    "ends_at",
    "milestone",
    "level",
    "referral_id",
    "tier",
    "occurred_at",
    "timestamp",
    "email",
    "email_verified",
    "emailVerified",
    "referrer_email",
    "data",
    "other",
    "",
];

/// JSON number texts, ordinary and hostile.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?(0|[1-9][0-9]{0,40})(\\.[0-9]{1,40})?([eE][+-]?[0-9]{1,12})?",
        Just("0".to_owned()),
        Just("-0.0".to_owned()),
        Just("1e-18".to_owned()),
        Just("1e-19".to_owned()),
        Just("340282366920938463463.374607431768211455".to_owned()),
    ]
}

/// JSON string texts, among them numbers, names, times and odd characters.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_:% .@-]{0,20}",
        number(),
        Just("NaN".to_owned()),
        Just("2026-12-07T10:00:00Z".to_owned()),
        Just("wisdom_circle".to_owned()),
        Just("gold".to_owned()),
        Just("mid_program".to_owned()),
        Just("CAD".to_owned()),
        Just("USD".to_owned()),
        Just("party".to_owned()),
        Just("platinum".to_owned()),
        Just("a@b.ca".to_owned()),
        ".{0,12}",
    ]
    .prop_map(|s| serde_json::Value::String(s).to_string())
}

/// Arbitrary JSON text, objects keyed mostly by the names the parser reads.
fn json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        number(),
        string(),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("null".to_owned()),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..12).prop_map(|fields| {
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v)| format!("{}:{v}", serde_json::Value::String(k.to_owned())))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// A valid payload of each event, as raw JSON fields.
const VALID: [(EventName, &[(&str, &str)]); 9] = [
    (
        EventName::BookingCreated,
        &[
            ("booking_id", r#""b-1""#),
            ("guest_id", r#""g-1""#),
            ("total_price", "99.99"),
            ("nights", "3"),
        ],
    ),
    (
        EventName::BookingCompleted,
        &[("booking_id", r#""b-1""#), ("guest_id", r#""g-1""#)],
    ),
    (
        EventName::BookingCancelled,
        &[("booking_id", r#""b-1""#), ("guest_id", r#""g-1""#)],
    ),
    (
        EventName::ReviewSubmitted,
        &[
            ("booking_id", r#""b-1""#),
            ("guest_id", r#""g-1""#),
            ("rating", "4"),
        ],
    ),
    (
        EventName::EventAttendance,
        &[
            ("id", r#""ev-1""#),
            ("attendee_id", r#""m-1""#),
            ("type", r#""workshop""#),
            ("attended", "true"),
        ],
    ),
    (
        EventName::Contribution,
        &[
            ("id", r#""c-1""#),
            ("contributor_id", r#""m-1""#),
            ("quality", "1.5"),
        ],
    ),
    (
        EventName::StakingStarted,
        &[
            ("stake_id", r#""s-1""#),
            ("member_id", r#""m-1""#),
            ("amount", "1000"),
        ],
    ),
    (
        EventName::CoachingMilestone,
        &[("member_id", r#""m-1""#), ("level", "2")],
    ),
    (
        EventName::ReferralSuccess,
        &[
            ("referral_id", r#""r-1""#),
            ("referrer_id", r#""m-1""#),
            ("tier", r#""gold""#),
        ],
    ),
];

/// A valid payload of some event with a few fields removed, replaced or added.
fn mutated_event() -> impl Strategy<Value = (EventName, String)> {
    let leaf = prop_oneof![
        number(),
        string(),
        Just("true".to_owned()),
        Just("null".to_owned())
    ];
    (
        0..VALID.len(),
        prop::collection::vec(
            (
                prop::sample::select(KEYS),
                prop::option::weighted(0.8, leaf),
            ),
            0..4,
        ),
    )
        .prop_map(|(index, edits)| {
            let (name, fields) = VALID[index];
            let mut object: Vec<(String, String)> = fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            for (key, value) in edits {
                object.retain(|(k, _)| k != key);
                if let Some(value) = value {
                    object.push((key.to_owned(), value));
                }
            }
            let fields: Vec<String> = object
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::String(k)))
                .collect();
            (name, format!("{{{}}}", fields.join(",")))
        })
}

/// A decision rewards exactly when it pays more than zero, and then has a kind and a key;
/// `decide` is `try_decide` with refusals turned into decisions that say why.
fn decision_invariants(rules: &Rules, event: &PartnerEvent) -> Result<(), TestCaseError> {
    let decision = decide(rules, event);
    prop_assert_eq!(decision.reward, !decision.amount.is_zero());
    prop_assert_eq!(decision.reward, decision.business_key.is_some());
    prop_assert_eq!(decision.reward, decision.kind.is_some());
    prop_assert_eq!(decision.rules_version.as_str(), rules.version());
    match try_decide(rules, event) {
        Ok(checked) => prop_assert_eq!(checked, decision),
        Err(refusal) => prop_assert_eq!(decision.reason, format!("refused: {refusal}")),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn hnv_text_round_trips(units in any::<u128>()) {
        let amount = Hnv::from_base_units(units);
        let text = amount.to_string();
        prop_assert_eq!(Hnv::parse(&text), Ok(amount));
        prop_assert_eq!(text.parse::<Hnv>(), Ok(amount));
        prop_assert!(!text.contains('.') || !text.ends_with('0'));
    }

    #[test]
    fn decimal_text_round_trips(scaled in any::<i128>()) {
        let value = Decimal::from_scaled(scaled);
        prop_assert_eq!(Decimal::parse(&value.to_string()), Ok(value));
    }

    #[test]
    fn booking_rewards_equal_integer_arithmetic(cents in 1u64..10_000_000_000_000, nights in 1u32..60) {
        let price = format!("{}.{:02}", cents / 100, cents % 100);
        let payload = format!(
            r#"{{"booking_id":"b","guest_id":"g","total_price":{price},"nights":{nights}}}"#
        );
        let decision = quote(&Rules::shipped(), EventName::BookingCreated, payload.as_bytes()).unwrap();
        // cents × 10^16 base units per CAD, × 2, × 1.2 from two nights.
        let tenths: u128 = if nights >= 2 { 12 } else { 10 };
        let expected = u128::from(cents) * 10u128.pow(16) * 2 * tenths / 10;
        prop_assert_eq!(decision.amount.base_units(), expected);
        prop_assert!(decision.reward);
    }

    #[test]
    fn no_json_makes_parsing_or_deciding_panic(text in json()) {
        let rules = Rules::shipped();
        for name in EventName::ALL {
            let _ = quote(&rules, name, text.as_bytes());
            if let Ok(event) = parse_event(name, text.as_bytes()) {
                decision_invariants(&rules, &event)?;
            }
            // The same fields wrapped in `data`.
            let _ = quote(&rules, name, format!(r#"{{"data":{text}}}"#).as_bytes());
        }
    }

    #[test]
    fn decisions_hold_their_invariants_on_mutated_payloads((name, text) in mutated_event()) {
        let rules = Rules::shipped();
        if let Ok(event) = parse_event(name, text.as_bytes()) {
            decision_invariants(&rules, &event)?;
        }
    }

    #[test]
    fn no_bytes_make_parsing_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let rules = Rules::shipped();
        for name in EventName::ALL {
            let _ = quote(&rules, name, &bytes);
        }
    }
}
