//! Access and refresh JWTs with an algorithm allow-list and key rotation (RFC 8725).
//!
//! Only EdDSA (Ed25519) and HS256 with a secret of at least 256 bits are accepted; `none`
//! and every other algorithm are refused before any key is looked up. Each token names its
//! key with `kid`; the [`Keyring`] holds one signing key and several verification keys, and
//! the header's `alg` must equal the algorithm of the key its `kid` names, so a token "signed
//! with HS256 using the Ed25519 public key as the secret" is refused.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use haven_core::ErrorCode;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::rbac::Role;

mod keys;

pub use keys::{KeyAlgorithm, Keyring, SigningKey, VerificationKey};

/// The shortest HS256 secret accepted, in bytes (256 bits).
pub const MIN_HS256_SECRET_LEN: usize = 32;

/// Why a token was refused or a key could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three base64url parts with a JSON header and claims of the expected shape.
    #[error("the token is malformed")]
    Malformed,
    /// The header's `alg` is not on the allow-list (EdDSA, HS256): `none`, RS256, ….
    #[error("the token algorithm {alg:?} is not allowed")]
    AlgorithmNotAllowed {
        /// The refused `alg`.
        alg: String,
    },
    /// The header has no `kid`.
    #[error("the token header has no kid")]
    MissingKid,
    /// The header names a key of its own (`jku`, `jwk`, `x5u` or `x5c`): keys come from
    /// the keyring only, so such a token is refused whatever its signature.
    #[error("the token header carries {parameter}; only keyring keys are accepted")]
    ForeignKeyParameter {
        /// The refused header parameter.
        parameter: &'static str,
    },
    /// No verification key has this `kid` (never had, or removed by rotation).
    #[error("no verification key has kid {kid:?}")]
    UnknownKid {
        /// The unknown `kid`.
        kid: String,
    },
    /// The header's `alg` differs from the algorithm of the key its `kid` names.
    #[error("the token says {header:?} but key {kid:?} is {key}")]
    AlgorithmMismatch {
        /// The key id.
        kid: String,
        /// The header's `alg`.
        header: String,
        /// The key's algorithm.
        key: KeyAlgorithm,
    },
    /// The signature does not verify (tampered header or claims, or a foreign key).
    #[error("the token signature is invalid")]
    InvalidSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `aud` is not this service.
    #[error("the token audience is wrong")]
    WrongAudience,
    /// `iss` is not the configured issuer.
    #[error("the token issuer is wrong")]
    WrongIssuer,
    /// An access token was presented where a refresh token was expected, or vice versa.
    #[error("expected a {expected} token, got a {found} token")]
    WrongTokenType {
        /// What the caller needed.
        expected: TokenType,
        /// What the token says.
        found: TokenType,
    },
    /// A required claim is missing.
    #[error("the token lacks the {claim} claim")]
    MissingClaim {
        /// The claim's name.
        claim: String,
    },
    /// An HS256 secret shorter than 256 bits.
    #[error("an HS256 secret needs at least 256 bits; this one has {bits}")]
    WeakSecret {
        /// Length of the refused secret, in bits.
        bits: usize,
    },
    /// A key could not be parsed.
    #[error("invalid {alg} key: {reason}")]
    InvalidKey {
        /// The key's algorithm.
        alg: KeyAlgorithm,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A verification key cannot replace or remove the signing key's.
    #[error("kid {kid:?} belongs to the signing key")]
    SigningKeyInUse {
        /// The signing key's id.
        kid: String,
    },
    /// Signing failed.
    #[error("signing the token failed")]
    Signing,
}

impl JwtError {
    /// The stable wire code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            JwtError::Expired => ErrorCode::TokenExpired,
            JwtError::Malformed
            | JwtError::AlgorithmNotAllowed { .. }
            | JwtError::MissingKid
            | JwtError::ForeignKeyParameter { .. }
            | JwtError::UnknownKid { .. }
            | JwtError::AlgorithmMismatch { .. }
            | JwtError::InvalidSignature
            | JwtError::NotYetValid
            | JwtError::WrongAudience
            | JwtError::WrongIssuer
            | JwtError::WrongTokenType { .. }
            | JwtError::MissingClaim { .. } => ErrorCode::Unauthorized,
            JwtError::WeakSecret { .. }
            | JwtError::InvalidKey { .. }
            | JwtError::SigningKeyInUse { .. }
            | JwtError::Signing => ErrorCode::InternalError,
        }
    }
}

/// Issuer, audience and lifetimes of tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// `iss` written and required.
    pub issuer: String,
    /// `aud` written and required.
    pub audience: String,
    /// Lifetime of access tokens (15 minutes by default).
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens (7 days by default).
    pub refresh_ttl: Duration,
    /// Clock skew tolerated on `exp` and `nbf` (30 seconds by default).
    pub leeway: Duration,
}

impl JwtConfig {
    /// Default access TTL: 15 minutes.
    pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
    /// Default refresh TTL: 7 days.
    pub const REFRESH_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
    /// Default leeway: 30 seconds.
    pub const LEEWAY: Duration = Duration::from_secs(30);

    /// The defaults for `issuer` and `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            access_ttl: Self::ACCESS_TTL,
            refresh_ttl: Self::REFRESH_TTL,
            leeway: Self::LEEWAY,
        }
    }
}

/// Whether a token grants access or only obtains new tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Presented on API calls (short-lived).
    Access,
    /// Presented only to the refresh endpoint (rotated on each use).
    Refresh,
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        })
    }
}

/// The claims of every haven token. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: the user id.
    pub sub: Uuid,
    /// Expiry.
    pub exp: i64,
    /// Not before.
    pub nbf: i64,
    /// Issued at.
    pub iat: i64,
    /// Token id (deny-list key; for refresh tokens the rotation id).
    pub jti: Uuid,
    /// Access or refresh.
    pub typ: TokenType,
    /// The user's role when the token was issued.
    pub role: Role,
    /// The refresh-token family: on refresh tokens, and on access tokens bound to their
    /// session ([`Jwt::issue_session_access`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<Uuid>,
}

/// A signed token and its claims. `Debug` does not print the token.
#[derive(Clone)]
pub struct IssuedToken {
    token: String,
    claims: Claims,
}

impl IssuedToken {
    /// The compact JWT to hand to the client.
    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// The claims it carries.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The token and its claims.
    pub fn into_parts(self) -> (String, Claims) {
        (self.token, self.claims)
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Header parameters that point at keys outside the keyring; their presence alone
    /// refuses the token.
    #[serde(default)]
    jku: Option<serde_json::Value>,
    #[serde(default)]
    jwk: Option<serde_json::Value>,
    #[serde(default)]
    x5u: Option<serde_json::Value>,
    #[serde(default)]
    x5c: Option<serde_json::Value>,
}

impl RawHeader {
    /// The first key-locating parameter the header carries (`jku`, `jwk`, `x5u`, `x5c`).
    fn foreign_key_parameter(&self) -> Option<&'static str> {
        [
            ("jku", &self.jku),
            ("jwk", &self.jwk),
            ("x5u", &self.x5u),
            ("x5c", &self.x5c),
        ]
        .into_iter()
        .find_map(|(name, value)| value.is_some().then_some(name))
    }
}

/// Issues and verifies haven tokens under a [`JwtConfig`] and a [`Keyring`].
#[derive(Debug, Clone)]
pub struct Jwt {
    config: JwtConfig,
    keyring: Keyring,
}

impl Jwt {
    /// Tokens under `config`, signed and verified with `keyring`.
    pub fn new(config: JwtConfig, keyring: Keyring) -> Self {
        Self { config, keyring }
    }

    /// The configuration.
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// The keys.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The keys, for rotation.
    pub fn keyring_mut(&mut self) -> &mut Keyring {
        &mut self.keyring
    }

    /// An access token for `sub` with a fresh `jti`, valid for the access TTL from `now`.
    pub fn issue_access(
        &self,
        sub: Uuid,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, JwtError> {
        self.issue(
            TokenType::Access,
            sub,
            role,
            Uuid::new_v4(),
            None,
            self.config.access_ttl,
            now,
        )
    }

    /// An access token bound to a session: `fam` names the refresh family, so a verifier can
    /// refuse it as soon as that session is revoked (guardian tokens work this way).
    pub fn issue_session_access(
        &self,
        sub: Uuid,
        role: Role,
        family: Uuid,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, JwtError> {
        self.issue(
            TokenType::Access,
            sub,
            role,
            Uuid::new_v4(),
            Some(family),
            self.config.access_ttl,
            now,
        )
    }

    /// A refresh token of `family` whose `jti` is the one the session store handed out.
    pub fn issue_refresh(
        &self,
        sub: Uuid,
        role: Role,
        family: Uuid,
        jti: Uuid,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, JwtError> {
        self.issue(
            TokenType::Refresh,
            sub,
            role,
            jti,
            Some(family),
            self.config.refresh_ttl,
            now,
        )
    }

    /// Signs arbitrary `claims` with the current signing key, as they are. For issuing use
    /// [`issue_access`](Self::issue_access) / [`issue_refresh`](Self::issue_refresh).
    pub fn sign(&self, claims: &Claims) -> Result<String, JwtError> {
        let signing = self.keyring.signing_key();
        let mut header = Header::new(signing.alg.jsonwebtoken());
        header.kid = Some(signing.kid.clone());
        jsonwebtoken::encode(&header, claims, &signing.encoding).map_err(|_| JwtError::Signing)
    }

    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        typ: TokenType,
        sub: Uuid,
        role: Role,
        jti: Uuid,
        fam: Option<Uuid>,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, JwtError> {
        let iat = now.timestamp();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            sub,
            exp: iat.saturating_add(ttl),
            nbf: iat,
            iat,
            jti,
            typ,
            role,
            fam,
        };
        let token = self.sign(&claims)?;
        Ok(IssuedToken { token, claims })
    }

    /// Verifies `token` now and that it is of type `expected`.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, JwtError> {
        self.verify_at(token, expected, Utc::now())
    }

    /// Verifies `token` as of `now`: no `jku`, `jwk`, `x5u` or `x5c` in the header,
    /// allow-listed `alg`, known `kid` whose key has exactly
    /// that algorithm, signature, `iss`, `aud`, `exp`, `nbf` (with the leeway), `typ`, and
    /// `fam` on refresh tokens.
    pub fn verify_at(
        &self,
        token: &str,
        expected: TokenType,
        now: DateTime<Utc>,
    ) -> Result<Claims, JwtError> {
        let header = parse_header(token)?;
        if let Some(parameter) = header.foreign_key_parameter() {
            return Err(JwtError::ForeignKeyParameter { parameter });
        }
        let Some(alg) = KeyAlgorithm::from_header(&header.alg) else {
            return Err(JwtError::AlgorithmNotAllowed { alg: header.alg });
        };
        let kid = header.kid.ok_or(JwtError::MissingKid)?;
        let key = self
            .keyring
            .verification_key(&kid)
            .ok_or_else(|| JwtError::UnknownKid { kid: kid.clone() })?;
        if key.alg != alg {
            return Err(JwtError::AlgorithmMismatch {
                kid,
                header: header.alg,
                key: key.alg,
            });
        }

        let mut validation = Validation::new(key.alg.jsonwebtoken());
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        // Time is checked below against the caller's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|e| match e.into_kind() {
                ErrorKind::InvalidSignature => JwtError::InvalidSignature,
                ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
                ErrorKind::InvalidAudience => JwtError::WrongAudience,
                ErrorKind::MissingRequiredClaim(claim) => JwtError::MissingClaim { claim },
                ErrorKind::InvalidAlgorithm => JwtError::AlgorithmMismatch {
                    kid: key.kid.clone(),
                    header: alg.as_str().to_owned(),
                    key: key.alg,
                },
                // The remaining kinds (base64, JSON, UTF-8, claim formats, …) all mean the
                // token is not one we issued; the kind enum is foreign and non-exhaustive.
                _ => JwtError::Malformed,
            })?
            .claims;

        let leeway = i64::try_from(self.config.leeway.as_secs()).unwrap_or(i64::MAX);
        let now = now.timestamp();
        if now >= claims.exp.saturating_add(leeway) {
            return Err(JwtError::Expired);
        }
        if claims.nbf > now.saturating_add(leeway) {
            return Err(JwtError::NotYetValid);
        }
        if claims.typ != expected {
            return Err(JwtError::WrongTokenType {
                expected,
                found: claims.typ,
            });
        }
        if claims.typ == TokenType::Refresh && claims.fam.is_none() {
            return Err(JwtError::MissingClaim {
                claim: "fam".to_owned(),
            });
        }
        Ok(claims)
    }
}

fn parse_header(token: &str) -> Result<RawHeader, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn jwt() -> Jwt {
        let key = SigningKey::generate_ed25519("k1").unwrap();
        Jwt::new(JwtConfig::new("haven", "haven-api"), Keyring::new(key))
    }

    #[test]
    fn defaults_follow_the_issue() {
        let config = JwtConfig::new("i", "a");
        assert_eq!(config.access_ttl, Duration::from_secs(900));
        assert_eq!(config.refresh_ttl, Duration::from_secs(604_800));
    }

    #[test]
    fn access_tokens_round_trip_with_every_claim() {
        let jwt = jwt();
        let now = Utc::now();
        let user = Uuid::new_v4();
        let issued = jwt.issue_access(user, Role::Operator, now).unwrap();
        let claims = jwt.verify(issued.as_str(), TokenType::Access).unwrap();
        assert_eq!(&claims, issued.claims());
        assert_eq!(claims.iss, "haven");
        assert_eq!(claims.aud, "haven-api");
        assert_eq!(claims.sub, user);
        assert_eq!(claims.iat, now.timestamp());
        assert_eq!(claims.nbf, now.timestamp());
        assert_eq!(claims.exp, now.timestamp() + 900);
        assert_eq!(claims.role, Role::Operator);
        assert_eq!(claims.typ, TokenType::Access);
        assert_eq!(claims.fam, None);
        assert!(!format!("{issued:?}").contains(issued.as_str()));
        let header = jsonwebtoken::decode_header(issued.as_str()).unwrap();
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.alg, Algorithm::EdDSA);
    }

    #[test]
    fn refresh_tokens_carry_the_family() {
        let jwt = jwt();
        let (fam, jti) = (Uuid::new_v4(), Uuid::new_v4());
        let issued = jwt
            .issue_refresh(Uuid::new_v4(), Role::Viewer, fam, jti, Utc::now())
            .unwrap();
        let claims = jwt.verify(issued.as_str(), TokenType::Refresh).unwrap();
        assert_eq!(claims.fam, Some(fam));
        assert_eq!(claims.jti, jti);
        assert_eq!(claims.exp - claims.iat, 7 * 24 * 3600);
    }

    #[test]
    fn hs256_works_with_a_256_bit_secret_and_refuses_shorter() {
        assert_eq!(
            SigningKey::hs256("h", &[1u8; 31]).err(),
            Some(JwtError::WeakSecret { bits: 248 })
        );
        assert_eq!(
            VerificationKey::hs256("h", &[1u8; 16]).err(),
            Some(JwtError::WeakSecret { bits: 128 })
        );
        let jwt = Jwt::new(
            JwtConfig::new("haven", "haven-api"),
            Keyring::new(SigningKey::hs256("h", &[1u8; 32]).unwrap()),
        );
        let issued = jwt
            .issue_access(Uuid::new_v4(), Role::Admin, Utc::now())
            .unwrap();
        assert!(jwt.verify(issued.as_str(), TokenType::Access).is_ok());
    }

    #[test]
    fn leeway_tolerates_small_skew_only() {
        let jwt = jwt();
        let now = Utc::now();
        let issued = jwt.issue_access(Uuid::new_v4(), Role::Admin, now).unwrap();
        let token = issued.as_str();
        let at = |secs: i64| now + chrono::Duration::seconds(secs);
        assert!(jwt.verify_at(token, TokenType::Access, at(-29)).is_ok());
        assert_eq!(
            jwt.verify_at(token, TokenType::Access, at(-31)).err(),
            Some(JwtError::NotYetValid)
        );
        assert!(
            jwt.verify_at(token, TokenType::Access, at(900 + 29))
                .is_ok()
        );
        assert_eq!(
            jwt.verify_at(token, TokenType::Access, at(900 + 30)).err(),
            Some(JwtError::Expired)
        );
    }

    #[test]
    fn the_signing_key_cannot_be_removed_or_shadowed() {
        let mut keyring = Keyring::new(SigningKey::generate_ed25519("k1").unwrap());
        assert!(matches!(
            keyring.remove_verification_key("k1"),
            Err(JwtError::SigningKeyInUse { .. })
        ));
        let other = VerificationKey::hs256("k1", &[0u8; 32]).unwrap();
        assert!(matches!(
            keyring.add_verification_key(other),
            Err(JwtError::SigningKeyInUse { .. })
        ));
        assert_eq!(keyring.verification_kids().collect::<Vec<_>>(), ["k1"]);
    }

    #[test]
    fn malformed_tokens_and_keys_are_refused() {
        let jwt = jwt();
        for token in ["", "a.b", "a.b.c.d", "!!!.e30.x", "e30.e30.x"] {
            let err = jwt.verify(token, TokenType::Access).unwrap_err();
            assert!(
                matches!(
                    err,
                    JwtError::Malformed | JwtError::AlgorithmNotAllowed { .. }
                ),
                "{token:?} -> {err:?}"
            );
        }
        assert!(matches!(
            VerificationKey::ed25519("x", &[0u8; 31]),
            Err(JwtError::InvalidKey { .. })
        ));
        assert!(matches!(
            SigningKey::ed25519_from_pkcs8("x", b"not a key"),
            Err(JwtError::InvalidKey { .. })
        ));
    }

    /// A token that names its own key (`jku`, `jwk`, `x5u`, `x5c`) is refused even when its
    /// signature holds under the keyring's key.
    #[test]
    fn headers_naming_foreign_keys_are_refused() {
        let secret = [7u8; 32];
        let jwt = Jwt::new(
            JwtConfig::new("haven", "haven-api"),
            Keyring::new(SigningKey::hs256("k1", &secret).unwrap()),
        );
        let claims = jwt
            .issue_access(Uuid::new_v4(), Role::Admin, Utc::now())
            .unwrap()
            .claims()
            .clone();
        let sign = |header: &Header| {
            jsonwebtoken::encode(header, &claims, &EncodingKey::from_secret(&secret)).unwrap()
        };
        let mut plain = Header::new(Algorithm::HS256);
        plain.kid = Some("k1".into());
        assert!(jwt.verify(&sign(&plain), TokenType::Access).is_ok());
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(serde_json::json!({
            "kty": "oct", "k": "AAAA"
        }))
        .unwrap();
        let variants: [(&str, Header); 4] = [
            (
                "jku",
                Header {
                    jku: Some("https://evil.example/keys".into()),
                    ..plain.clone()
                },
            ),
            (
                "jwk",
                Header {
                    jwk: Some(jwk),
                    ..plain.clone()
                },
            ),
            (
                "x5u",
                Header {
                    x5u: Some("https://evil.example/cert".into()),
                    ..plain.clone()
                },
            ),
            (
                "x5c",
                Header {
                    x5c: Some(vec!["MIIB".into()]),
                    ..plain.clone()
                },
            ),
        ];
        for (parameter, header) in variants {
            let err = jwt.verify(&sign(&header), TokenType::Access).unwrap_err();
            assert_eq!(
                err,
                JwtError::ForeignKeyParameter { parameter },
                "{parameter}"
            );
            assert_eq!(err.code(), ErrorCode::Unauthorized);
        }
    }
}
