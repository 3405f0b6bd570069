use haven_core::ErrorCode;

use crate::api_key::ApiKeyError;
use crate::jwt::JwtError;
use crate::password::PasswordError;
use crate::rbac::AuthzError;
use crate::session::SessionError;

/// Any failure of this crate: one variant per area, each keeping its typed error.
///
/// Callers usually match on the area error they got from the call they made; this enum is
/// for code that funnels several areas through one `?`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An API key was malformed, or the hasher could not be built.
    #[error(transparent)]
    ApiKey(#[from] ApiKeyError),
    /// A password was refused or could not be hashed.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A JWT was refused, or a key could not be built.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// A principal lacks a permission, or a scope string is unknown.
    #[error(transparent)]
    Authz(#[from] AuthzError),
    /// A session operation failed.
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl Error {
    /// The stable wire code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::ApiKey(e) => e.code(),
            Error::Password(e) => e.code(),
            Error::Jwt(e) => e.code(),
            Error::Authz(e) => e.code(),
            Error::Session(e) => e.code(),
        }
    }
}

/// `Result` with this crate's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
