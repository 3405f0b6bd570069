//! A2: during a rotation the old and the new secret both verify; an expired one does not.

use haven_webhooks::{Scheme, Secret, Verifier, VerifyError, sign_header, signed_headers};

const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const T: i64 = 1_700_000_000;
const OVERLAP_END: i64 = T + 3600;
const BODY: &[u8] = br#"{"type":"token.minted"}"#;

fn receiver() -> Verifier {
    Verifier::new(
        "partner",
        Scheme::Standard,
        vec![
            Secret::standard(NEW).unwrap(),
            Secret::standard(OLD).unwrap().expires_at(OVERLAP_END),
        ],
    )
}

fn headers_signed_with(secret: &str, ts: i64) -> http::HeaderMap {
    let sig = sign_header(
        Scheme::Standard,
        &Secret::standard(secret).unwrap(),
        Some("msg_rot"),
        ts,
        BODY,
    )
    .unwrap();
    let mut h = http::HeaderMap::new();
    h.insert("webhook-id", "msg_rot".parse().unwrap());
    h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    h.insert("webhook-signature", sig.parse().unwrap());
    h
}

#[test]
fn both_secrets_verify_during_the_overlap() {
    let v = receiver();
    let old = headers_signed_with(OLD, T);
    assert_eq!(v.verify(&old, BODY, T).unwrap().secret_index, 1);
    let new = headers_signed_with(NEW, T);
    assert_eq!(v.verify(&new, BODY, T).unwrap().secret_index, 0);
    let last_second = OVERLAP_END - 1;
    v.verify(&headers_signed_with(OLD, last_second), BODY, last_second)
        .unwrap();
}

#[test]
fn an_expired_secret_does_not_verify() {
    let v = receiver();
    let at = OVERLAP_END;
    assert!(matches!(
        v.verify(&headers_signed_with(OLD, at), BODY, at),
        Err(VerifyError::BadSignature)
    ));
    v.verify(&headers_signed_with(NEW, at), BODY, at).unwrap();
    // Expiry is judged by the verifier's clock, not the sender's timestamp.
    assert!(matches!(
        v.verify(&headers_signed_with(OLD, at - 10), BODY, at),
        Err(VerifyError::BadSignature)
    ));
}

#[test]
fn outbound_signing_during_rotation_satisfies_receivers_holding_either_secret() {
    let endpoint_secrets = [
        Secret::standard(NEW).unwrap(),
        Secret::standard(OLD).unwrap().expires_at(OVERLAP_END),
    ];
    let h = signed_headers(&endpoint_secrets, "msg_out", T, BODY, T).unwrap();
    let sig = h["webhook-signature"].to_str().unwrap();
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    for only in [OLD, NEW] {
        let v = Verifier::new("r", Scheme::Standard, vec![Secret::standard(only).unwrap()]);
        v.verify(&h, BODY, T).unwrap();
    }
    // After the overlap only the new secret signs.
    let later =
        signed_headers(&endpoint_secrets, "msg_out", OVERLAP_END, BODY, OVERLAP_END).unwrap();
    assert_eq!(
        later["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    let old_only = Verifier::new("r", Scheme::Standard, vec![Secret::standard(OLD).unwrap()]);
    assert!(matches!(
        old_only.verify(&later, BODY, OVERLAP_END),
        Err(VerifyError::BadSignature)
    ));
}
