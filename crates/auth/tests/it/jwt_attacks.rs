//! Issue #10 A1 at library level: each attack is refused with its specific error, and every
//! refusal maps to a 401 code.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use haven_auth::{
    Claims, Jwt, JwtConfig, JwtError, KeyAlgorithm, Keyring, Role, SigningKey, TokenType,
};
use haven_core::ErrorCode;
use serde_json::{Value, json};
use uuid::Uuid;

fn config() -> JwtConfig {
    JwtConfig::new("haven", "haven-api")
}

fn ed25519_jwt(kid: &str) -> Jwt {
    Jwt::new(
        config(),
        Keyring::new(SigningKey::generate_ed25519(kid).expect("key")),
    )
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

fn valid_claims(jwt: &Jwt) -> Value {
    let issued = jwt
        .issue_access(Uuid::new_v4(), Role::Viewer, Utc::now())
        .expect("issue");
    serde_json::to_value(issued.claims()).expect("claims")
}

/// Asserts `error` is what we expect and answers 401.
fn refused(result: Result<Claims, JwtError>, expected: JwtError) {
    let error = result.expect_err("the token must be refused");
    assert_eq!(error, expected);
    assert_eq!(error.code().status(), 401, "{error}");
}

#[test]
fn alg_none_is_refused() {
    let jwt = ed25519_jwt("k1");
    let claims = valid_claims(&jwt);
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": "k1"});
        for signature in ["", "AAAA"] {
            let token = format!("{}.{}.{signature}", b64(&header), b64(&claims));
            refused(
                jwt.verify(&token, TokenType::Access),
                JwtError::AlgorithmNotAllowed {
                    alg: alg.to_owned(),
                },
            );
        }
    }
}

#[test]
fn hs256_signed_with_the_ed25519_public_key_is_refused() {
    let jwt = ed25519_jwt("k1");
    let public_key = jwt
        .keyring()
        .verification_key("k1")
        .and_then(|k| k.public_key())
        .expect("Ed25519 public key")
        .to_vec();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "k1"});
    let signing_input = format!("{}.{}", b64(&header), b64(&valid_claims(&jwt)));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public_key);
    let tag = ring::hmac::sign(&key, signing_input.as_bytes());
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    refused(
        jwt.verify(&token, TokenType::Access),
        JwtError::AlgorithmMismatch {
            kid: "k1".to_owned(),
            header: "HS256".to_owned(),
            key: KeyAlgorithm::EdDSA,
        },
    );
}

#[test]
fn other_algorithms_are_refused() {
    let jwt = ed25519_jwt("k1");
    let claims = valid_claims(&jwt);
    for alg in ["RS256", "ES256", "HS512", "hs256", ""] {
        let header = json!({"alg": alg, "kid": "k1"});
        let token = format!("{}.{}.AAAA", b64(&header), b64(&claims));
        refused(
            jwt.verify(&token, TokenType::Access),
            JwtError::AlgorithmNotAllowed {
                alg: alg.to_owned(),
            },
        );
    }
}

#[test]
fn eddsa_token_for_an_hs256_kid_is_refused() {
    let verifier = Jwt::new(
        config(),
        Keyring::new(SigningKey::hs256("k1", &[7u8; 32]).expect("key")),
    );
    let attacker = ed25519_jwt("k1");
    let token = attacker
        .issue_access(Uuid::new_v4(), Role::Admin, Utc::now())
        .expect("issue");
    refused(
        verifier.verify(token.as_str(), TokenType::Access),
        JwtError::AlgorithmMismatch {
            kid: "k1".to_owned(),
            header: "EdDSA".to_owned(),
            key: KeyAlgorithm::HS256,
        },
    );
}

#[test]
fn expired_token_is_refused() {
    let jwt = ed25519_jwt("k1");
    let issued_at = Utc::now() - Duration::minutes(16);
    let token = jwt
        .issue_access(Uuid::new_v4(), Role::Viewer, issued_at)
        .expect("issue");
    let error = jwt
        .verify(token.as_str(), TokenType::Access)
        .expect_err("expired");
    assert_eq!(error, JwtError::Expired);
    assert_eq!(error.code(), ErrorCode::TokenExpired);
    assert_eq!(error.code().status(), 401);
}

#[test]
fn future_nbf_is_refused() {
    let jwt = ed25519_jwt("k1");
    let now = Utc::now().timestamp();
    let mut claims: Claims = serde_json::from_value(valid_claims(&jwt)).expect("claims");
    claims.nbf = now + 3600;
    claims.exp = now + 7200;
    let token = jwt.sign(&claims).expect("sign");
    refused(jwt.verify(&token, TokenType::Access), JwtError::NotYetValid);
}

#[test]
fn wrong_audience_is_refused() {
    let jwt = ed25519_jwt("k1");
    let other = Jwt::new(
        JwtConfig::new("haven", "haven-admin"),
        jwt.keyring().clone(),
    );
    let token = other
        .issue_access(Uuid::new_v4(), Role::Admin, Utc::now())
        .expect("issue");
    refused(
        jwt.verify(token.as_str(), TokenType::Access),
        JwtError::WrongAudience,
    );
}

#[test]
fn wrong_issuer_is_refused() {
    let jwt = ed25519_jwt("k1");
    let other = Jwt::new(
        JwtConfig::new("someone-else", "haven-api"),
        jwt.keyring().clone(),
    );
    let token = other
        .issue_access(Uuid::new_v4(), Role::Admin, Utc::now())
        .expect("issue");
    refused(
        jwt.verify(token.as_str(), TokenType::Access),
        JwtError::WrongIssuer,
    );
}

#[test]
fn refresh_token_used_as_access_is_refused() {
    let jwt = ed25519_jwt("k1");
    let token = jwt
        .issue_refresh(
            Uuid::new_v4(),
            Role::Admin,
            Uuid::new_v4(),
            Uuid::new_v4(),
            Utc::now(),
        )
        .expect("issue");
    refused(
        jwt.verify(token.as_str(), TokenType::Access),
        JwtError::WrongTokenType {
            expected: TokenType::Access,
            found: TokenType::Refresh,
        },
    );
    assert!(jwt.verify(token.as_str(), TokenType::Refresh).is_ok());
}

#[test]
fn access_token_used_as_refresh_is_refused() {
    let jwt = ed25519_jwt("k1");
    let token = jwt
        .issue_access(Uuid::new_v4(), Role::Admin, Utc::now())
        .expect("issue");
    refused(
        jwt.verify(token.as_str(), TokenType::Refresh),
        JwtError::WrongTokenType {
            expected: TokenType::Refresh,
            found: TokenType::Access,
        },
    );
}

#[test]
fn unknown_kid_is_refused() {
    let jwt = ed25519_jwt("k1");
    let stranger = ed25519_jwt("k9");
    let token = stranger
        .issue_access(Uuid::new_v4(), Role::Admin, Utc::now())
        .expect("issue");
    refused(
        jwt.verify(token.as_str(), TokenType::Access),
        JwtError::UnknownKid {
            kid: "k9".to_owned(),
        },
    );
}

#[test]
fn missing_kid_is_refused() {
    let jwt = ed25519_jwt("k1");
    let header = json!({"alg": "EdDSA", "typ": "JWT"});
    let token = format!("{}.{}.AAAA", b64(&header), b64(&valid_claims(&jwt)));
    refused(jwt.verify(&token, TokenType::Access), JwtError::MissingKid);
}

#[test]
fn tampered_payload_is_refused() {
    let jwt = ed25519_jwt("k1");
    let token = jwt
        .issue_access(Uuid::new_v4(), Role::Viewer, Utc::now())
        .expect("issue");
    let parts: Vec<&str> = token.as_str().split('.').collect();
    let mut claims = valid_claims(&jwt);
    claims["role"] = json!("admin");
    let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    refused(
        jwt.verify(&forged, TokenType::Access),
        JwtError::InvalidSignature,
    );
}

#[test]
fn a_token_moved_to_another_kid_is_refused() {
    let mut jwt = ed25519_jwt("k1");
    let token = jwt
        .issue_access(Uuid::new_v4(), Role::Viewer, Utc::now())
        .expect("issue");
    jwt.keyring_mut()
        .rotate(SigningKey::generate_ed25519("k2").expect("key"));
    let parts: Vec<&str> = token.as_str().split('.').collect();
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": "k2"});
    let moved = format!("{}.{}.{}", b64(&header), parts[1], parts[2]);
    refused(
        jwt.verify(&moved, TokenType::Access),
        JwtError::InvalidSignature,
    );
}

#[test]
fn rotation_keeps_old_tokens_valid_until_the_old_key_is_removed() {
    let mut jwt = ed25519_jwt("k1");
    let user = Uuid::new_v4();
    let old = jwt
        .issue_access(user, Role::Operator, Utc::now())
        .expect("issue");

    jwt.keyring_mut()
        .rotate(SigningKey::generate_ed25519("k2").expect("key"));
    assert_eq!(jwt.keyring().signing_key().kid(), "k2");
    let new = jwt
        .issue_access(user, Role::Operator, Utc::now())
        .expect("issue");
    let header = jsonwebtoken::decode_header(new.as_str()).expect("header");
    assert_eq!(header.kid.as_deref(), Some("k2"));
    assert_eq!(
        jwt.verify(old.as_str(), TokenType::Access)
            .expect("old kid still verifies"),
        *old.claims()
    );
    assert!(jwt.verify(new.as_str(), TokenType::Access).is_ok());

    assert_eq!(jwt.keyring_mut().remove_verification_key("k1"), Ok(true));
    refused(
        jwt.verify(old.as_str(), TokenType::Access),
        JwtError::UnknownKid {
            kid: "k1".to_owned(),
        },
    );
    assert!(jwt.verify(new.as_str(), TokenType::Access).is_ok());
}

#[test]
fn a_verifier_with_only_public_keys_accepts_rotated_tokens() {
    let signer_key = SigningKey::generate_ed25519("k1").expect("key");
    let signer = Jwt::new(config(), Keyring::new(signer_key.clone()));
    let token = signer
        .issue_access(Uuid::new_v4(), Role::Viewer, Utc::now())
        .expect("issue");
    let mut keyring = Keyring::new(SigningKey::generate_ed25519("own").expect("key"));
    keyring
        .add_verification_key(signer_key.verification_key().clone())
        .expect("add");
    let verifier = Jwt::new(config(), keyring);
    assert!(verifier.verify(token.as_str(), TokenType::Access).is_ok());
}
