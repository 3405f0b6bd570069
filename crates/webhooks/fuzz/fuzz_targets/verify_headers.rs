//! Header parsing and verification on arbitrary input: no panic, and an accepted message
//! is one our own signer would have produced.
#![no_main]

use haven_webhooks::{
    IdempotencyKey, Scheme, Secret, SignedParts, Tolerance, Verifier, extract_key,
    parse_retry_after, sign_header, verify,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 8] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "stripe-signature",
    "x-aurora-signature",
    "x-aurora-timestamp",
    "idempotency-key",
    "x-tribe-signature",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let scheme = Scheme::ALL[usize::from(data[0]) % Scheme::ALL.len()];
    let mut now_bytes = [0u8; 8];
    now_bytes.copy_from_slice(&data[1..9]);
    let now = i64::from_le_bytes(now_bytes);
    let rest = &data[9..];
    let mut fields = rest.splitn(4, |&b| b == b'\n');
    let id = fields.next().unwrap_or_default();
    let ts = fields.next().unwrap_or_default();
    let sig = fields.next().unwrap_or_default();
    let body = fields.next().unwrap_or_default();

    let secret = || match scheme {
        Scheme::Standard => Secret::standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        _ => Secret::raw("partner-secret"),
    };
    let Ok(key) = secret() else { return };

    // The string API, as the CLI calls it.
    if let (Ok(id), Ok(ts), Ok(sig)) = (
        std::str::from_utf8(id),
        std::str::from_utf8(ts),
        std::str::from_utf8(sig),
    ) {
        let parts = SignedParts {
            id: Some(id),
            timestamp: Some(ts),
            signature: sig,
        };
        if let Ok(verified) = verify(scheme, &[key], parts, body, now, Tolerance::default()) {
            // Accepted: our signer must produce a signature the header contains.
            let key = secret().unwrap_or_else(|e| panic!("{e}"));
            let ours = sign_header(scheme, &key, Some(id), verified.timestamp, body)
                .unwrap_or_else(|e| panic!("{e}"));
            let needle = match scheme {
                Scheme::Standard => ours.split_once(',').map(|(_, b64)| b64),
                Scheme::Stripe => ours.rsplit_once("v1=").map(|(_, hex)| hex),
                _ => Some(ours.as_str()),
            }
            .unwrap_or_else(|| panic!("unexpected signature shape {ours:?}"));
            assert!(sig.contains(needle), "accepted {sig:?}, expected {ours:?}");
        }
        let _ = IdempotencyKey::from_header_value(sig);
        let _ = parse_retry_after(sig, chrono::DateTime::UNIX_EPOCH);
    }

    // The HeaderMap API with arbitrary (possibly repeated) header values.
    let mut headers = HeaderMap::new();
    for (i, chunk) in rest.split(|&b| b == b'\n').take(8).enumerate() {
        if let Ok(value) = HeaderValue::from_bytes(chunk) {
            let name = NAMES[(i + usize::from(data[0] >> 2)) % NAMES.len()];
            headers.append(HeaderName::from_static(name), value);
        }
    }
    let Ok(key) = secret() else { return };
    let verifier = Verifier::new("fuzz", scheme, vec![key]);
    let _ = verifier.verify(&headers, body, now);
    let _ = extract_key(&headers, body);
});
