//! `parse_event`: every event's fields under every accepted name, the `data` wrapper, exact
//! numbers, and refusals that name the field.

use chrono::{TimeZone, Utc};
use haven_rewards::{
    Decimal, EventName, EventSubject, MemberRef, PartnerEvent, Source, parse_event,
};

use crate::{event, hnv, refused};

fn parsed(path: &str, payload: &str) -> PartnerEvent {
    parse_event(event(path), payload.as_bytes()).unwrap_or_else(|e| panic!("{payload}: {e}"))
}

fn member(source: Source, id: &str) -> MemberRef {
    MemberRef {
        source,
        external_id: id.into(),
        email: None,
    }
}

fn d(text: &str) -> Decimal {
    Decimal::parse(text).unwrap()
}

#[test]
fn booking_created_under_every_field_spelling() {
    let expected = PartnerEvent {
        name: EventName::BookingCreated,
        member: member(Source::Aurora, "g-1"),
        subject: EventSubject::BookingCreated {
            booking_id: "b-1".into(),
            total_price: d("99.99"),
            currency: "CAD".into(),
            nights: 3,
        },
        occurred_at: None,
    };
    for payload in [
        r#"{"booking_id":"b-1","guest_id":"g-1","total_price":99.99,"nights":3}"#,
        r#"{"bookingId":"b-1","guestId":"g-1","totalPrice":99.99,"nights":3}"#,
        r#"{"id":"b-1","member_id":"g-1","total_amount":"99.99","num_nights":3,"currency":"CAD"}"#,
        r#"{"id":"b-1","memberId":"g-1","totalAmount":9999e-2,"numNights":"3","currency":"cad"}"#,
        r#"{"id":"b-1","userId":"g-1","total":99.990,"numberOfNights":3.0}"#,
        r#"{"data":{"booking_id":"b-1","user_id":"g-1","total_price":"99.99","nightCount":3}}"#,
        // Both spellings of one field may be present when they agree.
        r#"{"booking_id":"b-1","id":"b-1","guest_id":"g-1","guestId":"g-1","total_price":99.99,"totalPrice":"99.990","nights":3}"#,
        // Unknown fields are ignored.
        r#"{"booking_id":"b-1","guest_id":"g-1","total_price":99.99,"nights":3,"room":{"type":"suite"},"tags":[1,2]}"#,
    ] {
        assert_eq!(
            parsed("aurora/booking-created", payload),
            expected,
            "{payload}"
        );
    }
}

#[test]
fn every_event_parses_into_its_subject() {
    let at = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap();
    let cases: Vec<(&str, &str, &str, EventSubject)> = vec![
        (
            "aurora/booking-completed",
            r#"{"bookingId":"b-1","guestId":"g-1"}"#,
            "g-1",
            EventSubject::BookingCompleted {
                booking_id: "b-1".into(),
            },
        ),
        (
            "aurora/booking-cancelled",
            r#"{"id":"b-1","guest_id":"g-1"}"#,
            "g-1",
            EventSubject::BookingCancelled {
                booking_id: "b-1".into(),
            },
        ),
        (
            "aurora/review-submitted",
            r#"{"id":"rv-9","bookingId":"b-1","guestId":"g-1","stars":5}"#,
            "g-1",
            EventSubject::ReviewSubmitted {
                booking_id: "b-1".into(),
                rating: 5,
            },
        ),
        (
            "tribe/event-attendance",
            r#"{"eventId":"ev-1","attendeeId":"m-1","eventType":"Wisdom-Circle","attended":true}"#,
            "m-1",
            EventSubject::EventAttendance {
                event_id: "ev-1".into(),
                event_type: "wisdom_circle".into(),
                attended: true,
            },
        ),
        (
            "tribe/event-attendance",
            r#"{"id":"ev-1","memberId":"m-1","attended":"false"}"#,
            "m-1",
            EventSubject::EventAttendance {
                event_id: "ev-1".into(),
                event_type: "general".into(),
                attended: false,
            },
        ),
        (
            "tribe/contribution",
            r#"{"contributionId":"c-1","contributorId":"m-1","qualityScore":1.5}"#,
            "m-1",
            EventSubject::Contribution {
                contribution_id: "c-1".into(),
                quality: d("1.5"),
            },
        ),
        (
            "tribe/contribution",
            r#"{"id":"c-1","member_id":"m-1"}"#,
            "m-1",
            EventSubject::Contribution {
                contribution_id: "c-1".into(),
                quality: Decimal::ONE,
            },
        ),
        (
            "tribe/staking-started",
            r#"{"stakeId":"s-1","memberId":"m-1","amount":"1000.5","endsAt":"2026-12-07T10:00:00Z"}"#,
            "m-1",
            EventSubject::StakingStarted {
                stake_id: "s-1".into(),
                amount: hnv("1000.5"),
                ends_at: Some(at),
            },
        ),
        (
            "tribe/coaching-milestone",
            r#"{"member_id":"m-1","milestone":"Program-Complete"}"#,
            "m-1",
            EventSubject::CoachingMilestone {
                milestone: "program_complete".into(),
            },
        ),
        (
            "tribe/coaching-milestone",
            r#"{"coacheeId":"m-1","level":2}"#,
            "m-1",
            EventSubject::CoachingMilestone {
                milestone: "2".into(),
            },
        ),
        (
            "tribe/referral-success",
            r#"{"referralId":"r-1","referrerId":"m-1","referred_id":"m-2","tier":"GOLD"}"#,
            "m-1",
            EventSubject::ReferralSuccess {
                referral_id: "r-1".into(),
                tier: "gold".into(),
            },
        ),
        (
            "tribe/referral-success",
            r#"{"id":"r-1","referrer_id":"m-1"}"#,
            "m-1",
            EventSubject::ReferralSuccess {
                referral_id: "r-1".into(),
                tier: "basic".into(),
            },
        ),
    ];
    for (path, payload, who, subject) in cases {
        let event = parsed(path, payload);
        assert_eq!(event.name, crate::event(path));
        assert_eq!(event.subject, subject, "{payload}");
        assert_eq!(event.member, member(event.name.source(), who), "{payload}");
    }
}

#[test]
fn the_occurrence_time_is_rfc3339_or_unix_seconds() {
    let base = r#""booking_id":"b-1","guest_id":"g-1""#;
    let at = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap();
    for time in [
        r#""2026-12-07T10:00:00Z""#,
        r#""2026-12-07T11:00:00+01:00""#,
        "1796637600",
    ] {
        let event = parsed(
            "aurora/booking-completed",
            &format!(r#"{{{base},"occurredAt":{time}}}"#),
        );
        assert_eq!(event.occurred_at, Some(at), "{time}");
    }
    let err = refused(
        "aurora/booking-completed",
        &format!(r#"{{{base},"timestamp":"yesterday"}}"#),
    );
    assert_eq!(err.field, "occurred_at");
}

#[test]
fn emails_count_only_when_verified() {
    let with = |extra: &str| {
        parsed(
            "aurora/booking-completed",
            &format!(r#"{{"booking_id":"b-1","guest_id":"g-1",{extra}}}"#),
        )
        .member
        .email
    };
    assert_eq!(with(r#""email":"Guest@Example.COM""#), None);
    assert_eq!(
        with(r#""email":"Guest@Example.COM","email_verified":false"#),
        None
    );
    assert_eq!(
        with(r#""email":"Guest@Example.COM","email_verified":true"#),
        Some("guest@example.com".into())
    );
    assert_eq!(
        with(r#""guestEmail":"a@b.ca","emailVerified":true"#),
        Some("a@b.ca".into())
    );
    // An unverified address is not looked at; a verified one must be an address.
    assert_eq!(with(r#""email":"not an address""#), None);
    let err = refused(
        "aurora/booking-completed",
        r#"{"booking_id":"b-1","guest_id":"g-1","email":"nope","email_verified":true}"#,
    );
    assert_eq!(err.field, "email");
    let err = refused(
        "aurora/booking-completed",
        r#"{"booking_id":"b-1","guest_id":"g-1","email":"a@b.ca","email_verified":"yes"}"#,
    );
    assert_eq!(err.field, "email_verified");
    // A referral's plain `email` may be the new member's: only the referrer's counts.
    let event = parsed(
        "tribe/referral-success",
        r#"{"id":"r-1","referrer_id":"m-1","email":"new@b.ca","email_verified":true,
            "referrerEmail":"Old@B.ca","referrerEmailVerified":true}"#,
    );
    assert_eq!(event.member.email, Some("old@b.ca".into()));
}

#[test]
fn refusals_name_the_field() {
    let booking = |fields: &str| refused("aurora/booking-created", fields);
    for (payload, field, reason) in [
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":-5,"nights":2}"#,
            "total_price",
            "must be positive",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":0,"nights":2}"#,
            "total_price",
            "must be positive",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","nights":2}"#,
            "total_price",
            "is required",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":null,"nights":2}"#,
            "total_price",
            "is required",
        ),
        (
            r#"{"booking_id":"b-1","total_price":100,"nights":2}"#,
            "guest_id",
            "is required",
        ),
        (
            r#"{"guest_id":"g-1","total_price":100,"nights":2}"#,
            "booking_id",
            "is required",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":100,"nights":0}"#,
            "nights",
            "must be a whole number of at least 1",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":100,"nights":2.5}"#,
            "nights",
            "must be a whole number of at least 1",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":100}"#,
            "nights",
            "is required",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":"NaN","nights":2}"#,
            "total_price",
            "must be an exact decimal number",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":"1e999","nights":2}"#,
            "total_price",
            "is too large",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":1.0000000000000000001,"nights":2}"#,
            "total_price",
            "the amount has 19 fraction digits; at most 18 are allowed",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":true,"nights":2}"#,
            "total_price",
            "must be a number, not a boolean",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":100,"nights":2,"currency":"C$"}"#,
            "currency",
            "must be a three-letter ISO 4217 code",
        ),
        (
            r#"{"booking_id":"b-1","id":"b-2","guest_id":"g-1","total_price":100,"nights":2}"#,
            "booking_id",
            "`booking_id` and `id` disagree",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","totalPrice":100,"total_price":100.01,"nights":2}"#,
            "total_price",
            "`total_price` and `totalPrice` disagree",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":100,"nights":2,"nights":3}"#,
            "nights",
            "appears more than once",
        ),
        (
            r#"{"booking_id":12.5,"guest_id":"g-1","total_price":100,"nights":2}"#,
            "booking_id",
            "must be a string or a whole number",
        ),
        (
            r#"{"booking_id":["b-1"],"guest_id":"g-1","total_price":100,"nights":2}"#,
            "booking_id",
            "must be a string or a whole number, not an array",
        ),
        (
            r#"{"booking_id":"","guest_id":"g-1","total_price":100,"nights":2}"#,
            "booking_id",
            "must be 1 to 128 characters",
        ),
        (
            r#"{"booking_id":"b-1\n","guest_id":"g-1","total_price":100,"nights":2}"#,
            "booking_id",
            "must hold printable characters only",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":" g-1","total_price":100,"nights":2}"#,
            "guest_id",
            "must not start or end with whitespace",
        ),
        (r#"[1,2]"#, "payload", "must be a JSON object"),
        (r#""text""#, "payload", "must be a JSON object"),
        (
            r#"{"booking_id":"b-1""#,
            "payload",
            "is not valid JSON (line 1, column 19)",
        ),
        ("", "payload", "is not valid JSON (line 1, column 0)"),
        (
            r#"{"data":{"booking_id":1,}}"#,
            "payload",
            "is not valid JSON (line 1, column 25)",
        ),
        (
            r#"{"data":{"nights":1,"nights":2}}"#,
            "nights",
            "appears more than once",
        ),
    ] {
        let err = booking(payload);
        assert_eq!(
            (err.field.as_str(), err.reason.as_str()),
            (field, reason),
            "{payload}"
        );
        assert_eq!(err.to_string(), format!("field `{field}`: {reason}"));
        assert_eq!(err.code(), haven_core::ErrorCode::InvalidPayload);
    }
    let long = "x".repeat(129);
    assert_eq!(
        booking(&format!(
            r#"{{"booking_id":"{long}","guest_id":"g-1","total_price":100,"nights":2}}"#
        ))
        .field,
        "booking_id"
    );
}

#[test]
fn each_event_requires_its_fields() {
    for (path, payload, field) in [
        (
            "aurora/booking-completed",
            r#"{"guest_id":"g-1"}"#,
            "booking_id",
        ),
        (
            "aurora/booking-cancelled",
            r#"{"booking_id":"b-1"}"#,
            "guest_id",
        ),
        // A review's own id is not the booking's.
        (
            "aurora/review-submitted",
            r#"{"id":"b-1","guest_id":"g-1","rating":4}"#,
            "booking_id",
        ),
        (
            "aurora/review-submitted",
            r#"{"booking_id":"b-1","guest_id":"g-1"}"#,
            "rating",
        ),
        (
            "aurora/review-submitted",
            r#"{"booking_id":"b-1","guest_id":"g-1","rating":6}"#,
            "rating",
        ),
        (
            "aurora/review-submitted",
            r#"{"booking_id":"b-1","guest_id":"g-1","rating":0}"#,
            "rating",
        ),
        (
            "aurora/review-submitted",
            r#"{"booking_id":"b-1","guest_id":"g-1","rating":4.5}"#,
            "rating",
        ),
        (
            "tribe/event-attendance",
            r#"{"id":"ev-1","attendee_id":"m-1"}"#,
            "attended",
        ),
        (
            "tribe/event-attendance",
            r#"{"id":"ev-1","attendee_id":"m-1","attended":1}"#,
            "attended",
        ),
        (
            "tribe/event-attendance",
            r#"{"attendee_id":"m-1","attended":true}"#,
            "event_id",
        ),
        (
            "tribe/event-attendance",
            r#"{"id":"ev-1","attended":true}"#,
            "attendee_id",
        ),
        (
            "tribe/event-attendance",
            r#"{"id":"ev-1","attendee_id":"m-1","type":"work shop!","attended":true}"#,
            "type",
        ),
        (
            "tribe/contribution",
            r#"{"id":"c-1","member_id":"m-1","quality":-0.5}"#,
            "quality",
        ),
        (
            "tribe/contribution",
            r#"{"member_id":"m-1"}"#,
            "contribution_id",
        ),
        (
            "tribe/staking-started",
            r#"{"id":"s-1","member_id":"m-1"}"#,
            "amount",
        ),
        (
            "tribe/staking-started",
            r#"{"id":"s-1","member_id":"m-1","amount":0}"#,
            "amount",
        ),
        (
            "tribe/staking-started",
            r#"{"id":"s-1","member_id":"m-1","amount":"-10"}"#,
            "amount",
        ),
        (
            "tribe/staking-started",
            r#"{"id":"s-1","member_id":"m-1","amount":10,"ends_at":"soon"}"#,
            "ends_at",
        ),
        (
            "tribe/coaching-milestone",
            r#"{"member_id":"m-1"}"#,
            "milestone",
        ),
        (
            "tribe/coaching-milestone",
            r#"{"member_id":"m-1","level":0}"#,
            "level",
        ),
        (
            "tribe/coaching-milestone",
            r#"{"member_id":"m-1","milestone":"mid_program","level":3}"#,
            "level",
        ),
        (
            "tribe/coaching-milestone",
            r#"{"milestone":"mid_program"}"#,
            "member_id",
        ),
        // The referrer is named as such: `member_id` may be the new member.
        (
            "tribe/referral-success",
            r#"{"id":"r-1","member_id":"m-1"}"#,
            "referrer_id",
        ),
        (
            "tribe/referral-success",
            r#"{"referrer_id":"m-1"}"#,
            "referral_id",
        ),
    ] {
        assert_eq!(refused(path, payload).field, field, "{path} {payload}");
    }
}

#[test]
fn numbers_are_read_from_the_request_text() {
    let price = |raw: &str| {
        let payload =
            format!(r#"{{"booking_id":"b-1","guest_id":"g-1","total_price":{raw},"nights":1}}"#);
        match parsed("aurora/booking-created", &payload).subject {
            EventSubject::BookingCreated { total_price, .. } => total_price.to_string(),
            other => panic!("{other:?}"),
        }
    };
    // Through an f64 these would not survive (0.1 + 0.2 style drift, 17 significant digits).
    assert_eq!(price("0.3"), "0.3");
    assert_eq!(price("99.99"), "99.99");
    assert_eq!(
        price("12345678901234567.123456789012345678"),
        "12345678901234567.123456789012345678"
    );
    assert_eq!(price(r#""0.000000000000000001""#), "0.000000000000000001");
    assert_eq!(price("1.5E+2"), "150");
    assert_eq!(price("200.0"), "200");
}

#[test]
fn ids_may_be_whole_numbers() {
    let event = parsed(
        "aurora/booking-completed",
        r#"{"booking_id":12345,"guest_id":678}"#,
    );
    assert_eq!(
        event.subject,
        EventSubject::BookingCompleted {
            booking_id: "12345".into()
        }
    );
    assert_eq!(event.member.external_id, "678");
    // A number and the same digits as a string are one id, so they agree.
    parsed(
        "aurora/booking-completed",
        r#"{"booking_id":12345,"id":"12345","guest_id":"g"}"#,
    );
}

#[test]
fn the_data_wrapper_takes_precedence() {
    // The envelope's own `id` is not the booking's.
    let event = parsed(
        "aurora/booking-completed",
        r#"{"id":"evt_1","type":"booking.completed","data":{"booking_id":"b-1","guest_id":"g-1"}}"#,
    );
    assert_eq!(
        event.subject,
        EventSubject::BookingCompleted {
            booking_id: "b-1".into()
        }
    );
    // A `data` that is not an object is an ordinary unknown field.
    let event = parsed(
        "aurora/booking-completed",
        r#"{"data":"x","booking_id":"b-1","guest_id":"g-1"}"#,
    );
    assert_eq!(event.member.external_id, "g-1");
}

/// `booking_id` → `bookingId`.
fn camel(snake: &str) -> String {
    let mut parts = snake.split('_');
    let mut out = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out
}

/// A field's snake_case name and its aliases.
type Aliases = (&'static str, &'static [&'static str]);

/// Every alias of docs/REWARDS.md, in both spellings, parses like the canonical name.
#[test]
fn every_documented_alias_is_accepted() {
    use serde_json::{Value, json};
    let cases: Vec<(&str, Value, Vec<Aliases>)> = vec![
        (
            "aurora/booking-created",
            json!({"booking_id":"b-1","guest_id":"g-1","total_price":"99.99","currency":"CAD","nights":3,
                   "occurred_at":"2026-12-07T10:00:00Z","email":"a@b.ca","email_verified":true}),
            vec![
                ("booking_id", &["id"]),
                ("guest_id", &["member_id", "user_id"]),
                ("total_price", &["total_amount", "total"]),
                ("currency", &["currency_code"]),
                ("nights", &["num_nights", "number_of_nights", "night_count"]),
                ("occurred_at", &["timestamp", "event_time"]),
                ("email", &["guest_email"]),
                ("email_verified", &["guest_email_verified"]),
            ],
        ),
        (
            "aurora/review-submitted",
            json!({"booking_id":"b-1","guest_id":"g-1","rating":4}),
            vec![("rating", &["stars"])],
        ),
        (
            "tribe/event-attendance",
            json!({"event_id":"ev-1","attendee_id":"m-1","type":"workshop","attended":true,
                   "email":"a@b.ca","email_verified":true}),
            vec![
                ("event_id", &["id"]),
                ("attendee_id", &["member_id", "user_id"]),
                ("type", &["event_type"]),
                ("email", &["attendee_email"]),
                ("email_verified", &["attendee_email_verified"]),
            ],
        ),
        (
            "tribe/contribution",
            json!({"contribution_id":"c-1","contributor_id":"m-1","quality":1.5,
                   "email":"a@b.ca","email_verified":true}),
            vec![
                ("contribution_id", &["id"]),
                ("contributor_id", &["member_id", "user_id"]),
                (
                    "quality",
                    &["quality_score", "quality_multiplier", "multiplier"],
                ),
                ("email", &["contributor_email"]),
                ("email_verified", &["contributor_email_verified"]),
            ],
        ),
        (
            "tribe/staking-started",
            json!({"stake_id":"s-1","member_id":"m-1","amount":"10","ends_at":"2027-01-01T00:00:00Z",
                   "email":"a@b.ca","email_verified":true}),
            vec![
                ("stake_id", &["staking_id", "id"]),
                ("member_id", &["staker_id", "user_id"]),
                ("amount", &["stake_amount", "staked_amount"]),
                ("ends_at", &["end_date", "unlock_at", "lock_until"]),
                ("email", &["member_email"]),
                ("email_verified", &["member_email_verified"]),
            ],
        ),
        (
            "tribe/coaching-milestone",
            json!({"member_id":"m-1","milestone":"mid_program"}),
            vec![
                ("member_id", &["coachee_id", "user_id"]),
                ("milestone", &["milestone_name", "milestone_id"]),
            ],
        ),
        (
            "tribe/coaching-milestone",
            json!({"member_id":"m-1","level":2}),
            vec![("level", &["milestone_level", "tier_level"])],
        ),
        (
            "tribe/referral-success",
            json!({"referral_id":"r-1","referrer_id":"m-1","tier":"gold",
                   "referrer_email":"a@b.ca","referrer_email_verified":true}),
            vec![("referral_id", &["id"]), ("tier", &["referral_tier"])],
        ),
    ];
    for (path, canonical, fields) in cases {
        let expected = parsed(path, &canonical.to_string());
        for (name, aliases) in fields {
            for alias in std::iter::once(&name).chain(aliases) {
                for spelling in [alias.to_string(), camel(alias)] {
                    let mut payload = canonical.clone();
                    let object = payload.as_object_mut().unwrap();
                    let value = object.remove(name).unwrap();
                    object.insert(spelling.clone(), value);
                    assert_eq!(
                        parsed(path, &payload.to_string()),
                        expected,
                        "{path}: `{spelling}` for `{name}`"
                    );
                }
            }
        }
    }
}
