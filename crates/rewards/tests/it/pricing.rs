//! The seed tokenomics under the shipped rules, once-only keys, boundaries, the rounding
//! rule, overflow, custom rules, and the shared public vectors.

use haven_rewards::{
    BusinessKey, Decision, Effect, EventName, EventSubject, Hnv, MemberRef, PartnerEvent,
    RewardKind, Rules, Source, decide, parse_event, quote, try_decide,
};

use crate::{decided, decided_by, event, hnv, refused};

fn booking(price: &str, nights: &str) -> String {
    format!(r#"{{"booking_id":"b-1","guest_id":"g-1","total_price":{price},"nights":{nights}}}"#)
}

fn amount(decision: &Decision) -> String {
    decision.amount.to_string()
}

fn key(source: &str, kind: RewardKind, id: &str, member: Option<&str>) -> Option<BusinessKey> {
    Some(BusinessKey::new(source, kind, id, member))
}

/// The shipped rules with one line replaced.
fn rules_with(from: &str, to: &str) -> Rules {
    assert!(haven_rewards::DEFAULT_RULES.contains(from), "{from}");
    Rules::from_toml(&haven_rewards::DEFAULT_RULES.replacen(from, to, 1)).unwrap()
}

/// A decision that rewards `amount` under `key`.
fn assert_rewards(decision: &Decision, amount: &str, key: Option<BusinessKey>) {
    assert!(decision.reward, "{decision:?}");
    assert_eq!(decision.amount, hnv(amount), "{decision:?}");
    assert_eq!(decision.kind, key.as_ref().map(|k| k.kind));
    assert_eq!(decision.business_key, key);
    assert_eq!(decision.effect, Effect::Reward);
    assert_eq!(decision.rules_version, "2026-12-07.1");
}

/// A decision that rewards nothing.
fn assert_nothing(decision: &Decision, effect: Effect) {
    assert!(!decision.reward, "{decision:?}");
    assert_eq!(decision.amount, Hnv::ZERO);
    assert_eq!(decision.kind, None);
    assert_eq!(decision.business_key, None);
    assert_eq!(decision.effect, effect);
    assert_eq!(decision.rules_version, "2026-12-07.1");
}

#[test]
fn bookings_earn_two_per_cad_and_a_fifth_more_for_several_nights() {
    let booking_key = key("aurora", RewardKind::Booking, "b-1", None);
    for (price, nights, expected) in [
        ("200", "2", "480"),
        ("200.0", "2", "480"),
        ("200", "1", "400"),
        ("99.99", "3", "239.976"),
        ("150", "1", "300"),
        ("0.01", "1", "0.02"),
        ("0.01", "2", "0.024"),
        ("1000000", "14", "2400000"),
    ] {
        let decision = decided("aurora/booking-created", &booking(price, nights));
        assert_rewards(&decision, expected, booking_key.clone());
    }
    let decision = decided("aurora/booking-created", &booking("200", "2"));
    assert_eq!(
        decision.reason,
        "480 HNV: 2 HNV per CAD on 200 CAD, ×1.2 for a stay of 2 nights"
    );
    assert_eq!(
        decision.business_key.unwrap().tx_id(),
        "rw-c2da0a2f88406ae4124382c0349354ce"
    );
}

#[test]
fn bookings_are_priced_in_the_rules_currency_only() {
    let with = |currency: &str| {
        format!(
            r#"{{"booking_id":"b-1","guest_id":"g-1","total_price":100,"nights":1,"currency":"{currency}"}}"#
        )
    };
    assert_eq!(
        amount(&decided("aurora/booking-created", &with("CAD"))),
        "200"
    );
    assert_eq!(
        amount(&decided("aurora/booking-created", &with("cad"))),
        "200"
    );
    let err = refused("aurora/booking-created", &with("USD"));
    assert_eq!(
        err.to_string(),
        "field `currency`: bookings are priced in CAD, not USD"
    );
    // decide() turns the refusal into a decision without a reward that says why.
    let event = parse_event(EventName::BookingCreated, with("USD").as_bytes()).unwrap();
    let decision = decide(&Rules::shipped(), &event);
    assert_nothing(&decision, Effect::None);
    assert_eq!(
        decision.reason,
        "refused: field `currency`: bookings are priced in CAD, not USD"
    );
    // Rules in another currency price another currency.
    let usd = rules_with(r#"currency = "CAD""#, r#"currency = "USD""#);
    assert_eq!(
        amount(&decided_by(&usd, "aurora/booking-created", &with("USD"))),
        "200"
    );
    assert!(
        quote(
            &usd,
            EventName::BookingCreated,
            booking("100", "1").as_bytes()
        )
        .is_err()
    );
}

#[test]
fn completed_bookings_earn_nothing_and_cancelled_ones_are_reversed() {
    let decision = decided(
        "aurora/booking-completed",
        r#"{"booking_id":"b-1","guest_id":"g-1"}"#,
    );
    assert_nothing(&decision, Effect::None);
    assert_eq!(decision.reason, "booking completed: no reward");

    let decision = decided(
        "aurora/booking-cancelled",
        r#"{"booking_id":"b-1","guest_id":"g-1"}"#,
    );
    assert_nothing(
        &decision,
        Effect::ReverseBooking {
            booking_id: "b-1".into(),
        },
    );
}

#[test]
fn reviews_of_four_stars_or_more_earn_fifty_once_per_booking() {
    let review = |rating: u8| {
        decided(
            "aurora/review-submitted",
            &format!(r#"{{"booking_id":"b-1","guest_id":"g-1","rating":{rating}}}"#),
        )
    };
    for rating in [4, 5] {
        assert_rewards(
            &review(rating),
            "50",
            key("aurora", RewardKind::Review, "b-1", None),
        );
    }
    for rating in [1, 2, 3] {
        assert_nothing(&review(rating), Effect::None);
    }
    assert_eq!(
        review(3).reason,
        "a 3-star review earns nothing (from 4 stars: 50 HNV)"
    );
}

#[test]
fn attendance_earns_by_event_type_once_per_event_and_attendee() {
    let attend = |event_type: Option<&str>, attended: bool| {
        let event_type = event_type
            .map(|t| format!(r#""type":"{t}","#))
            .unwrap_or_default();
        decided(
            "tribe/event-attendance",
            &format!(r#"{{"id":"ev-1","attendee_id":"m-1",{event_type}"attended":{attended}}}"#),
        )
    };
    let ev_key = key("tribe", RewardKind::Attendance, "ev-1", Some("m-1"));
    for (event_type, expected) in [
        (Some("wisdom_circle"), "100"),
        (Some("workshop"), "75"),
        (Some("networking"), "50"),
        (Some("general"), "25"),
        (None, "25"),
        (Some("WORKSHOP"), "75"),
    ] {
        assert_rewards(&attend(event_type, true), expected, ev_key.clone());
    }
    assert_nothing(&attend(Some("wisdom_circle"), false), Effect::None);
    let err = refused(
        "tribe/event-attendance",
        r#"{"id":"ev-1","attendee_id":"m-1","type":"party","attended":true}"#,
    );
    assert_eq!(
        err.to_string(),
        "field `type`: unknown event type `party` (known: general, networking, wisdom_circle, workshop)"
    );
    // Two attendees of one event are two rewards.
    let other = decided(
        "tribe/event-attendance",
        r#"{"id":"ev-1","attendee_id":"m-2","attended":true}"#,
    );
    assert_ne!(other.business_key, ev_key);
    assert_eq!(
        ev_key.unwrap().tx_id(),
        "rw-9d70a05820ca3f73349b82d087df63b8"
    );
}

#[test]
fn contributions_scale_the_base_by_the_clamped_quality() {
    let contribute = |quality: Option<&str>| {
        let quality = quality
            .map(|q| format!(r#","quality":{q}"#))
            .unwrap_or_default();
        decided(
            "tribe/contribution",
            &format!(r#"{{"id":"c-1","contributor_id":"m-1"{quality}}}"#),
        )
    };
    let c_key = key("tribe", RewardKind::Contribution, "c-1", None);
    for (quality, expected) in [
        (None, "50"),
        (Some("1"), "50"),
        (Some("1.5"), "75"),
        (Some("0.5"), "25"),
        (Some("0.4"), "25"),
        (Some("0"), "25"),
        (Some("2.0"), "100"),
        (Some("2.5"), "100"),
        (Some("\"1.23\""), "61.5"),
        (Some("0.7"), "35"),
    ] {
        assert_rewards(&contribute(quality), expected, c_key.clone());
    }
    assert_eq!(
        contribute(Some("2.5")).reason,
        "100 HNV: 50 HNV × quality 2 (2.5 clamped)"
    );
}

#[test]
fn coaching_milestones_are_tiered_once_per_member() {
    let coach = |field: &str| {
        decided(
            "tribe/coaching-milestone",
            &format!(r#"{{"member_id":"m-1",{field}}}"#),
        )
    };
    for (level, (name, expected)) in [
        ("first_session", "100"),
        ("mid_program", "150"),
        ("program_complete", "200"),
        ("certification", "250"),
    ]
    .into_iter()
    .enumerate()
    {
        let m_key = key("tribe", RewardKind::Coaching, name, Some("m-1"));
        assert_rewards(
            &coach(&format!(r#""milestone":"{name}""#)),
            expected,
            m_key.clone(),
        );
        // A numeric level is the milestone of that rank: the same reward, the same key.
        let level = level + 1;
        assert_rewards(
            &coach(&format!(r#""level":{level}"#)),
            expected,
            m_key.clone(),
        );
        assert_rewards(&coach(&format!(r#""milestone":{level}"#)), expected, m_key);
        // Both at once are refused, even when they agree: the parser cannot tell.
        let both = format!(r#"{{"member_id":"m-1","milestone":"{name}","level":{level}}}"#);
        assert_eq!(refused("tribe/coaching-milestone", &both).field, "level");
    }
    for (payload, field) in [
        (r#"{"member_id":"m-1","level":5}"#, "level"),
        (
            r#"{"member_id":"m-1","milestone":"graduation"}"#,
            "milestone",
        ),
    ] {
        assert_eq!(refused("tribe/coaching-milestone", payload).field, field);
    }
}

#[test]
fn referrals_pay_the_referrer_by_tier_once_per_referral() {
    let refer = |tier: &str| {
        decided(
            "tribe/referral-success",
            &format!(r#"{{"referral_id":"r-1","referrer_id":"m-1","referee_id":"m-2"{tier}}}"#),
        )
    };
    let r_key = key("tribe", RewardKind::Referral, "r-1", None);
    for (tier, expected) in [
        ("", "100"),
        (r#","tier":"basic""#, "100"),
        (r#","tier":"silver""#, "250"),
        (r#","tier":"gold""#, "500"),
    ] {
        assert_rewards(&refer(tier), expected, r_key.clone());
    }
    let event = parse_event(
        EventName::ReferralSuccess,
        br#"{"referral_id":"r-1","referrer_id":"m-1","member_id":"m-2"}"#,
    )
    .unwrap();
    assert_eq!(event.member.external_id, "m-1");
    assert_eq!(
        refused(
            "tribe/referral-success",
            r#"{"referral_id":"r-1","referrer_id":"m-1","tier":"platinum"}"#
        )
        .field,
        "tier"
    );
}

#[test]
fn staking_records_the_stake_and_earns_nothing_now() {
    let decision = decided(
        "tribe/staking-started",
        r#"{"stake_id":"s-1","member_id":"m-1","amount":1000,"ends_at":"2027-01-01T00:00:00Z"}"#,
    );
    assert_nothing(
        &decision,
        Effect::RecordStake {
            stake_id: "s-1".into(),
            amount: hnv("1000"),
            ends_at: Some("2027-01-01T00:00:00Z".parse().unwrap()),
        },
    );
    assert_eq!(
        decision.reason,
        "stake of 1000 HNV recorded: it accrues 0.1 a year, paid every 7 days"
    );
}

#[test]
fn products_beyond_eighteen_digits_truncate_toward_zero() {
    // 99.999999999999999999 × 2 × 1.2 = 239.9999999999999999976
    let decision = decided(
        "aurora/booking-created",
        &booking("99.999999999999999999", "2"),
    );
    assert_eq!(amount(&decision), "239.999999999999999997");
    // 0.000000000000000001 × 2 × 1.2 = 0.0000000000000000024
    let decision = decided(
        "aurora/booking-created",
        &booking("0.000000000000000001", "2"),
    );
    assert_eq!(decision.amount.base_units(), 2);
    // 0.000000000000000001 × 0.3 = 0.0000000000000000003: nothing to mint, no reward.
    let third = rules_with(r#"hnv_per_unit = "2""#, r#"hnv_per_unit = "0.3""#);
    let decision = decided_by(
        &third,
        "aurora/booking-created",
        &booking("0.000000000000000001", "1"),
    );
    assert!(!decision.reward);
    assert_eq!(decision.amount, Hnv::ZERO);
    assert_eq!(decision.business_key, None);
    // 0.3 × 0.666666666666666667 = 0.2000000000000000001 → 0.2, never more than earned.
    let small_base = rules_with(r#"base_hnv = "50""#, r#"base_hnv = "0.3""#);
    let decision = decided_by(
        &small_base,
        "tribe/contribution",
        r#"{"id":"c-1","member_id":"m-1","quality":0.666666666666666667}"#,
    );
    assert_eq!(amount(&decision), "0.2");
}

#[test]
fn arithmetic_is_exact_where_floats_drift() {
    for (price, nights, expected) in [
        ("0.1", "1", "0.2"),
        ("0.3", "1", "0.6"),
        ("0.1", "2", "0.24"),
        ("1.1", "3", "2.64"),
        ("0.07", "1", "0.14"),
        ("33.33", "2", "79.992"),
    ] {
        assert_eq!(
            amount(&decided("aurora/booking-created", &booking(price, nights))),
            expected
        );
    }
}

#[test]
fn a_reward_too_large_for_the_token_is_refused_not_wrapped() {
    // Decimal::MAX × 2 × 1.2 is beyond u128 base units.
    let err = refused(
        "aurora/booking-created",
        &booking("170141183460469231731.687303715884105727", "2"),
    );
    assert_eq!(
        err.to_string(),
        "field `total_price`: the reward would exceed the largest HNV amount"
    );
    // Just under the limit still prices: 141784319550391026443 × 2 × 1.2 < 2^128 / 10^18.
    let decision = decided(
        "aurora/booking-created",
        &booking("141784319550391026443", "2"),
    );
    assert_eq!(amount(&decision), "340282366920938463463.2");
    // Rules whose factor overflows refuse the same way.
    let huge = rules_with(
        r#"hnv_per_unit = "2""#,
        r#"hnv_per_unit = "170141183460469231731""#,
    );
    assert!(
        quote(
            &huge,
            EventName::BookingCreated,
            booking("170141183460469231731", "1").as_bytes()
        )
        .is_err()
    );
}

#[test]
fn every_reward_records_the_version_of_its_rules() {
    let text = haven_rewards::DEFAULT_RULES
        .replacen(
            r#"version = "2026-12-07.1""#,
            r#"version = "2027-01-01.2""#,
            1,
        )
        .replacen(r#"hnv_per_unit = "2""#, r#"hnv_per_unit = "3""#, 1);
    let rules = Rules::from_toml(&text).unwrap();
    let decision = decided_by(&rules, "aurora/booking-created", &booking("100", "1"));
    assert_eq!(decision.rules_version, "2027-01-01.2");
    assert_eq!(amount(&decision), "300");
    assert_eq!(
        decision.quote_json(),
        serde_json::json!({
            "reward": true,
            "amount_hnv": "300",
            "amount_base_units": "300000000000000000000",
            "rules_version": "2027-01-01.2",
            "reason": "300 HNV: 3 HNV per CAD on 100 CAD",
        })
    );
    let nothing = decided(
        "aurora/booking-completed",
        r#"{"id":"b-1","guest_id":"g-1"}"#,
    );
    assert_eq!(nothing.quote_json()["reward"], false);
    assert_eq!(nothing.quote_json()["amount_hnv"], "0");
    assert_eq!(nothing.quote_json()["amount_base_units"], "0");
}

#[test]
fn once_only_keys_follow_the_thing_rewarded_not_the_delivery() {
    // The same booking under other spellings, wrappers and extra fields: one key.
    let keys: Vec<_> = [
        r#"{"booking_id":"b-1","guest_id":"g-1","total_price":200,"nights":2}"#,
        r#"{"data":{"id":"b-1","guestId":"g-1","totalPrice":"200.00","nights":2,"note":"retry"}}"#,
    ]
    .into_iter()
    .map(|p| decided("aurora/booking-created", p).business_key.unwrap())
    .collect();
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[0].tx_id(), keys[1].tx_id());
    // The review of that booking is another reward with its own key.
    let review = decided(
        "aurora/review-submitted",
        r#"{"booking_id":"b-1","guest_id":"g-1","rating":5}"#,
    );
    assert_ne!(review.business_key.as_ref(), Some(&keys[0]));
    assert_eq!(
        review.business_key.unwrap().as_string(),
        "aurora:review:b-1"
    );
}

#[test]
fn an_event_whose_subject_does_not_match_its_name_is_refused() {
    let event = PartnerEvent {
        name: EventName::BookingCreated,
        member: MemberRef {
            source: Source::Aurora,
            external_id: "g-1".into(),
            email: None,
        },
        subject: EventSubject::BookingCompleted {
            booking_id: "b-1".into(),
        },
        occurred_at: None,
    };
    assert_eq!(
        try_decide(&Rules::shipped(), &event).unwrap_err().field,
        "event"
    );
    assert!(!decide(&Rules::shipped(), &event).reward);
}

/// The shared worked cases, through the library (the admin CLI runs them too).
#[test]
fn the_public_vectors_hold() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/rewards_public.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let name = event(case["event"].as_str().unwrap());
        let payload = case["payload"].as_str().unwrap();
        let result = quote(&Rules::shipped(), name, payload.as_bytes());
        if case["valid"].as_bool().unwrap() {
            let decision = result.unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(
                decision.amount.to_string(),
                case["amount_hnv"].as_str().unwrap(),
                "{case}"
            );
            assert_eq!(
                decision.amount.base_units().to_string(),
                case["amount_base_units"].as_str().unwrap(),
                "{case}"
            );
            assert_eq!(decision.reward, !decision.amount.is_zero());
        } else {
            assert!(result.is_err(), "{case}");
        }
    }
}
