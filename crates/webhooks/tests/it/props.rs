//! Property tests: verify(sign(m)) for every scheme, no input makes the parsers panic, and
//! the one-pass signature header parsers answer what the grammar, read one split at a
//! time, says.

use base64::Engine as _;
use haven_webhooks::{
    IdempotencyKey, Malformed, Scheme, Secret, SignedParts, Tolerance, VerifyError, sign_header,
    verify,
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
    fn signatures_are_the_hmacs_ring_computes(
        scheme in prop::sample::select(Scheme::ALL.to_vec()),
        // Past 64 bytes HMAC hashes the key first.
        key in prop::collection::vec(any::<u8>(), 1..160),
        id in "[a-zA-Z0-9_]{1,60}",
        ts in -10_000_000_000i64..10_000_000_000,
        body in prop::collection::vec(any::<u8>(), 0..300),
        wrong in prop::collection::vec(any::<[u8; 32]>(), 0..4),
        at in any::<prop::sample::Index>(),
    ) {
        let secret = secret_for(scheme, &key);
        let sig = sign_header(scheme, &secret, Some(&id), ts, &body).unwrap();
        // The independent computation: ring over the signed content, assembled whole.
        let (ring_key, content) = match scheme {
            Scheme::Standard => (key.clone(), [id.as_bytes(), b".", ts.to_string().as_bytes(), b".", &body].concat()),
            _ => (hex::encode(&key).into_bytes(), [ts.to_string().as_bytes(), b".", &body].concat()),
        };
        let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &ring_key), &content);
        let expected = match scheme {
            Scheme::Standard => format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(tag)),
            Scheme::Stripe => format!("t={ts},v1={}", hex::encode(tag)),
            _ => hex::encode(tag),
        };
        prop_assert_eq!(&sig, &expected);
        if scheme == Scheme::Standard {
            // The right signature found at any position among wrong ones.
            let mut list: Vec<String> = wrong
                .iter()
                .map(|w| format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(w)))
                .collect();
            list.insert(at.index(list.len() + 1), expected);
            let list = list.join(" ");
            let ts_text = ts.to_string();
            let ok = verify(scheme, &[secret], parts_for(scheme, &id, &ts_text, &list), &body, ts, Tolerance::default());
            prop_assert!(ok.is_ok(), "{ok:?}");
        }
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
    fn timestamps_parse_exactly_the_canonical_decimals(
        n in any::<i64>(),
        text in "[-+0-9 a]{0,22}|-?[1-9][0-9]{7,19}|[1-9][0-9:/?]{8,18}",
    ) {
        use haven_webhooks::verify::parse_timestamp;
        prop_assert_eq!(parse_timestamp(&n.to_string()), Some(n));
        let canonical = text.parse::<i64>().ok().filter(|v| v.to_string() == text);
        prop_assert_eq!(parse_timestamp(&text), canonical, "{:?}", text);
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

/// The Standard Webhooks signature header as its grammar reads, one split at a time:
/// the first malformation in header order, else whether a `v1` entry equals `good`.
fn standard_model(header: &str, good: &str) -> Result<bool, Malformed> {
    if header.is_empty() {
        return Err(Malformed::Empty);
    }
    let mut found = false;
    for (n, entry) in header.split(' ').enumerate() {
        if n >= 16 {
            return Err(Malformed::TooManySignatures);
        }
        let (version, value) = entry.split_once(',').ok_or(Malformed::SignatureSyntax)?;
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Malformed::SignatureSyntax);
        }
        let canonical = |len: usize| {
            base64::engine::general_purpose::STANDARD
                .decode(value)
                .is_ok_and(|bytes| bytes.len() == len)
        };
        match version {
            "v1" if !canonical(32) => return Err(Malformed::SignatureEncoding),
            "v1a" if !canonical(64) => return Err(Malformed::SignatureEncoding),
            "v1" => found |= value == good,
            _ => {}
        }
    }
    Ok(found)
}

/// The Stripe signature header as its grammar reads (timestamp `t` is checked against
/// `ts`): the first malformation, else whether a `v1` entry equals `good`.
fn stripe_model(header: &str, good: &str) -> Result<bool, Malformed> {
    if header.is_empty() {
        return Err(Malformed::Empty);
    }
    let mut found = false;
    let mut t = None;
    for (n, entry) in header.split(',').enumerate() {
        if n > 16 {
            return Err(Malformed::TooManySignatures);
        }
        let (key, value) = entry.split_once('=').ok_or(Malformed::SignatureSyntax)?;
        match key {
            "t" if t.is_some() => return Err(Malformed::TimestampField),
            "t" => t = Some(value),
            "v1" if value.len() != 64
                || !value
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
            {
                return Err(Malformed::SignatureEncoding);
            }
            "v1" => found |= value == good,
            _ => {}
        }
    }
    match t.map(haven_webhooks::verify::parse_timestamp) {
        None => Err(Malformed::TimestampField),
        Some(None) => Err(Malformed::Timestamp),
        // Outside the tolerance window: not a header problem, and not the signature's.
        Some(Some(t)) if t != 1_700_000_000 => Ok(false),
        Some(Some(_)) => Ok(found),
    }
}

/// `verify`'s answer for a Standard (`msg_1`, 1700000000) or Stripe signature header over
/// `{}`, in the models' terms.
fn verified(scheme: Scheme, header: &str) -> Result<bool, Malformed> {
    let (secret, id, timestamp) = match scheme {
        Scheme::Standard => (
            Secret::standard(STANDARD_SECRET),
            Some("msg_1"),
            Some("1700000000"),
        ),
        _ => (Secret::raw(STRIPE_SECRET), None, None),
    };
    let parts = SignedParts {
        id,
        timestamp,
        signature: header,
    };
    let now = 1_700_000_000;
    match verify(
        scheme,
        &[secret.unwrap()],
        parts,
        b"{}",
        now,
        Tolerance::default(),
    ) {
        Ok(_) => Ok(true),
        Err(
            VerifyError::BadSignature
            | VerifyError::TimestampTooOld { .. }
            | VerifyError::TimestampTooNew { .. },
        ) => Ok(false),
        Err(VerifyError::MalformedHeader { reason, .. }) => Err(reason),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

/// Entries close to valid ones: the right signature, other well-formed ones, wrong lengths,
/// stray separators, unknown versions.
fn standard_entry(good: String) -> impl Strategy<Value = String> {
    let b64 = |n: usize| {
        prop::collection::vec(any::<u8>(), n)
            .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b))
    };
    prop_oneof![
        Just(format!("v1,{good}")),
        b64(32).prop_map(|s| format!("v1,{s}")),
        b64(64).prop_map(|s| format!("v1a,{s}")),
        b64(31).prop_map(|s| format!("v1,{s}")),
        b64(32).prop_map(|s| format!("v1a,{s}")),
        "[ ,A-Za-z0-9+/=]{0,50}".prop_map(|s| format!("v1,{s}")),
        "[A-Za-z0-9!]{0,4},[ ,A-Za-z0-9+/=]{0,50}",
        "[ ,v1a]{0,6}",
    ]
}

fn stripe_entry(good: String) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(format!("v1={good}")),
        Just("t=1700000000".to_owned()),
        "[0-9a-f]{64}".prop_map(|s| format!("v1={s}")),
        "[0-9a-f]{64}".prop_map(|s| format!("v0={s}")),
        "[,=0-9a-fA-F]{0,70}".prop_map(|s| format!("v1={s}")),
        "t=[-0-9a,]{0,12}",
        "[tv01= ,]{0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn standard_header_parsing_matches_the_grammar(
        entries in prop::collection::vec(standard_entry(standard_good()), 1..20),
        joiner in prop::sample::select(vec![" ", " ", " ", "  ", ","]),
    ) {
        let header = entries.join(joiner);
        let expected = standard_model(&header, &standard_good());
        prop_assert_eq!(verified(Scheme::Standard, &header), expected, "{:?}", header);
    }

    #[test]
    fn stripe_header_parsing_matches_the_grammar(
        entries in prop::collection::vec(stripe_entry(stripe_good()), 1..20),
        joiner in prop::sample::select(vec![",", ",", ",", ",,", "="]),
    ) {
        let header = entries.join(joiner);
        let expected = stripe_model(&header, &stripe_good());
        prop_assert_eq!(verified(Scheme::Stripe, &header), expected, "{:?}", header);
    }
}

const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const STRIPE_SECRET: &str = "whsec_stripe_test";

/// The Standard Webhooks signature (base64) of `msg_1.1700000000.{}`.
fn standard_good() -> String {
    let secret = Secret::standard(STANDARD_SECRET).unwrap();
    let header = sign_header(
        Scheme::Standard,
        &secret,
        Some("msg_1"),
        1_700_000_000,
        b"{}",
    );
    header.unwrap().trim_start_matches("v1,").to_owned()
}

/// The Stripe signature (hex) of `1700000000.{}`.
fn stripe_good() -> String {
    let secret = Secret::raw(STRIPE_SECRET).unwrap();
    let header = sign_header(Scheme::Stripe, &secret, None, 1_700_000_000, b"{}").unwrap();
    header.split_once(",v1=").unwrap().1.to_owned()
}
