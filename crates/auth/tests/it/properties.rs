//! Parsers of untrusted input never panic, and what we produce always parses.

use chrono::Utc;
use haven_auth::{
    ApiKey, ApiKeyError, Jwt, JwtConfig, KeyEnv, Keyring, Role, SigningKey, TokenType, parse_scopes,
};
use proptest::prelude::*;
use uuid::Uuid;

proptest! {
    #[test]
    fn check_format_never_panics(input in ".{0,80}") {
        let _ = ApiKey::check_format(&input);
    }

    #[test]
    fn key_shaped_garbage_fails_the_checksum_or_shape(
        env in prop_oneof![Just("live"), Just("test")],
        body in "[0-9A-Za-z]{30}",
        sum in "[0-9A-Za-z]{6}",
    ) {
        let key = format!("hvn_{env}_{body}_{sum}");
        match ApiKey::check_format(&key) {
            // 1 in 62^6 random checksums is right.
            Ok(parsed) => prop_assert_eq!(parsed.as_str(), env),
            Err(e) => prop_assert_eq!(e, ApiKeyError::BadChecksum),
        }
    }

    #[test]
    fn jwt_verify_never_panics(input in "[A-Za-z0-9_.=-]{0,200}") {
        let jwt = Jwt::new(
            JwtConfig::new("haven", "haven-api"),
            Keyring::new(SigningKey::hs256("k1", &[3u8; 32]).unwrap()),
        );
        prop_assert!(jwt.verify(&input, TokenType::Access).is_err());
    }

    #[test]
    fn parse_scopes_never_panics(scopes in proptest::collection::vec(".{0,24}", 0..5)) {
        let _ = parse_scopes(&scopes);
    }

    #[test]
    fn issued_tokens_verify(role in prop_oneof![Just(Role::Admin), Just(Role::Operator), Just(Role::Viewer)]) {
        let jwt = Jwt::new(
            JwtConfig::new("haven", "haven-api"),
            Keyring::new(SigningKey::hs256("k1", &[3u8; 32]).unwrap()),
        );
        let user = Uuid::new_v4();
        let issued = jwt.issue_access(user, role, Utc::now()).unwrap();
        let claims = jwt.verify(issued.as_str(), TokenType::Access).unwrap();
        prop_assert_eq!(claims.sub, user);
        prop_assert_eq!(claims.role, role);
    }
}

#[test]
fn generated_keys_always_pass_their_own_check() {
    for _ in 0..500 {
        for env in [KeyEnv::Live, KeyEnv::Test] {
            let key = ApiKey::generate(env).unwrap();
            assert_eq!(ApiKey::check_format(key.expose_secret()), Ok(env));
        }
    }
}
