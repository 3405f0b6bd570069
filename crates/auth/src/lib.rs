//! Framework-free authentication and authorization for haven: API keys, argon2id
//! passwords, JWTs with key rotation, role-based access control and refresh-token sessions.
//!
//! The crate knows nothing of HTTP or databases: the api binary extracts credentials from
//! requests and maps [`Error::code`] to the wire; `crates/db` implements [`SessionStore`] on
//! Postgres and runs the [`conformance`] suite against it.
//!
//! ```
//! use chrono::Utc;
//! use haven_auth::{
//!     ApiKey, Jwt, JwtConfig, KeyEnv, KeyHasher, Keyring, Permission, Principal, Role,
//!     SigningKey, TokenType,
//! };
//! use uuid::Uuid;
//!
//! # fn main() -> Result<(), haven_auth::Error> {
//! // API keys: show `key` once, store only the hash and the display prefix.
//! let hasher = KeyHasher::new(&[0x42; 32])?;
//! let key = ApiKey::generate(KeyEnv::Live)?;
//! let stored = hasher.hash(key.expose_secret());
//! assert_eq!(ApiKey::check_format(key.expose_secret())?, KeyEnv::Live); // no I/O
//! assert!(hasher.verify(key.expose_secret(), &stored));
//!
//! // JWTs: one signing key, several verification keys.
//! let jwt = Jwt::new(
//!     JwtConfig::new("haven", "haven-api"),
//!     Keyring::new(SigningKey::generate_ed25519("2026-11")?),
//! );
//! let user = Uuid::new_v4();
//! let access = jwt.issue_access(user, Role::Viewer, Utc::now())?;
//! let claims = jwt.verify(access.as_str(), TokenType::Access)?;
//!
//! // RBAC: one table.
//! let principal = Principal::User { id: claims.sub, role: claims.role };
//! assert!(principal.can(Permission::ReadTransactions));
//! assert!(principal.require(Permission::MintTokens).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//! - `test-utils`: the public [`conformance`] suite for any [`SessionStore`].

pub mod api_key;
#[cfg(feature = "test-utils")]
pub mod conformance;
mod error;
pub mod jwt;
pub mod password;
pub mod rbac;
pub mod session;

pub use api_key::{
    ApiKey, ApiKeyError, ApiKeyHash, KeyEnv, KeyHasher, MAX_CACHE_TTL, PlaintextApiKey,
    ValidationCache, display_prefix,
};
pub use error::{Error, Result};
pub use jwt::{
    Claims, IssuedToken, Jwt, JwtConfig, JwtError, KeyAlgorithm, Keyring, SigningKey, TokenType,
    VerificationKey,
};
pub use password::{HashMemory, PasswordError, Passwords, StoredHash};
pub use rbac::{AuthzError, Permission, Principal, Role, allows, parse_scopes};
pub use session::{
    Created, MemorySessionStore, NewSession, RevokeReason, Rotated, Session, SessionError,
    SessionPolicy, SessionStore,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_conformance_suite() {
        conformance::run_all(&MemorySessionStore::new()).await;
    }

    #[test]
    fn every_error_maps_to_a_code() {
        let cases: Vec<(Error, haven_core::ErrorCode)> = vec![
            (
                ApiKeyError::BadChecksum.into(),
                haven_core::ErrorCode::Unauthorized,
            ),
            (
                JwtError::Expired.into(),
                haven_core::ErrorCode::TokenExpired,
            ),
            (
                JwtError::InvalidSignature.into(),
                haven_core::ErrorCode::Unauthorized,
            ),
            (
                AuthzError::Forbidden {
                    permission: Permission::ManageUsers,
                }
                .into(),
                haven_core::ErrorCode::Forbidden,
            ),
            (
                PasswordError::TooShort { len: 1 }.into(),
                haven_core::ErrorCode::ValidationError,
            ),
            (
                SessionError::NotFound {
                    family_id: uuid::Uuid::nil(),
                }
                .into(),
                haven_core::ErrorCode::NotFound,
            ),
            (
                SessionError::ReuseDetected {
                    family_id: uuid::Uuid::nil(),
                    user_id: uuid::Uuid::nil(),
                }
                .into(),
                haven_core::ErrorCode::Unauthorized,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error}");
        }
    }
}
