//! Property tests: verify(sign(m)) for every scheme, and no input makes the parsers panic.

use haven_webhooks::{
    IdempotencyKey, Scheme, Secret, SignedParts, Tolerance, VerifyError, sign_header, verify,
};
use proptest::prelude::*;

fn secret_for(scheme: Scheme, bytes: &[u8]) -> Secret {
    match scheme {
        Scheme::Standard => Secret::hmac_bytes(bytes).unwrap(),
        _ => Secret::raw(&hex::encode(bytes)).unwrap(),
    }
}

fn parts_for<'a>(scheme: Scheme, id: &'a str, ts: &'a str, sig: &'a str) -> SignedParts<'a> {
    SignedParts {
        id: (scheme == Scheme::Standard).then_some(id),
        timestamp: (scheme != Scheme::Stripe).then_some(ts),
        signature: sig,
    }
}

proptest! {
    #[test]
    fn verify_accepts_what_sign_produces(
        scheme in prop::sample::select(Scheme::ALL.to_vec()),
        key in prop::collection::vec(any::<u8>(), 1..64),
        id in "[a-zA-Z0-9_]{1,40}",
        ts in -10_000_000_000i64..10_000_000_000,
        skew in -60i64..=300,
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let secret = secret_for(scheme, &key);
        let sig = sign_header(scheme, &secret, Some(&id), ts, &body).unwrap();
        let ts_text = ts.to_string();
        let ok = verify(scheme, &[secret], parts_for(scheme, &id, &ts_text, &sig), &body, ts + skew, Tolerance::default());
        prop_assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn any_change_to_the_body_is_caught(
        scheme in prop::sample::select(Scheme::ALL.to_vec()),
        body in prop::collection::vec(any::<u8>(), 1..256),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let secret = secret_for(scheme, b"k");
        let sig = sign_header(scheme, &secret, Some("msg_1"), 1_700_000_000, &body).unwrap();
        let mut tampered = body.clone();
        let i = index.index(tampered.len());
        tampered[i] ^= flip;
        let r = verify(scheme, &[secret], parts_for(scheme, "msg_1", "1700000000", &sig), &tampered, 1_700_000_000, Tolerance::default());
        prop_assert!(matches!(r, Err(VerifyError::BadSignature)), "{r:?}");
    }

    #[test]
    fn arbitrary_headers_never_panic(
        scheme in prop::sample::select(Scheme::ALL.to_vec()),
        id in "\\PC{0,80}",
        ts in "\\PC{0,30}|-?[0-9]{1,25}",
        sig in "\\PC{0,200}|(v1a?,[A-Za-z0-9+/=]{0,100} ?){0,20}|t=[0-9]{1,12}(,v[01]=[0-9a-f]{0,70}){0,20}",
        now in any::<i64>(),
    ) {
        let secret = secret_for(scheme, b"k");
        let _ = verify(scheme, &[secret], parts_for(scheme, &id, &ts, &sig), b"{}", now, Tolerance::default());
    }

    #[test]
    fn tolerance_accepts_exactly_the_window(ts in any::<i64>(), now in any::<i64>()) {
        let t = Tolerance::default();
        let age = i128::from(now) - i128::from(ts);
        let inside = (-60..=300).contains(&age);
        prop_assert_eq!(t.check(ts, now).is_ok(), inside);
    }

    #[test]
    fn key_grammar_matches_its_definition(raw in "\\PC{0,80}|[A-Za-z0-9_-]{0,80}") {
        let valid = (8..=64).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        prop_assert_eq!(IdempotencyKey::parse(&raw).is_ok(), valid);
        if valid {
            let quoted = format!("\"{raw}\"");
            let parsed = IdempotencyKey::from_header_value(&quoted).unwrap();
            prop_assert_eq!(parsed.as_str(), raw.as_str());
        }
    }
}

proptest! {
    #[test]
    fn jitter_stays_within_twenty_percent(attempt in 1u32..=7, status in prop::option::of(300u16..600)) {
        use haven_webhooks::{DEFAULT_SCHEDULE, Decision, RetryPolicy};
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let base = DEFAULT_SCHEDULE[attempt as usize - 1].as_secs_f64();
        match RetryPolicy::default().next_attempt(attempt, status, None, now) {
            Decision::RetryAt { at, attempt_no } => {
                prop_assert_eq!(attempt_no, attempt + 1);
                let waited = (at - now).num_milliseconds() as f64 / 1000.0;
                prop_assert!(waited >= base * 0.8 - 0.001 && waited <= base * 1.2 + 0.001, "{waited} vs {base}");
            }
            other => prop_assert!(false, "{other:?}"),
        }
    }
}
