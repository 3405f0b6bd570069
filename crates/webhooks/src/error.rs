use std::net::IpAddr;

use haven_core::ErrorCode;

/// Why an inbound webhook was not accepted.
///
/// Header problems (`MissingHeader`, `DuplicateHeader`, `MalformedHeader`) are the sender's
/// bug and map to 400; signature and timestamp problems map to 401; a `Duplicate` is a
/// redelivery the caller acknowledges without processing; a `Conflict` is a security event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent.
    #[error("missing header {name}")]
    MissingHeader {
        /// The header name, lower case.
        name: &'static str,
    },
    /// A header that must appear once appears several times.
    #[error("header {name} appears more than once")]
    DuplicateHeader {
        /// The header name, lower case.
        name: &'static str,
    },
    /// A header is present but does not follow its grammar.
    #[error("malformed header {name}: {reason}")]
    MalformedHeader {
        /// The header name, lower case.
        name: &'static str,
        /// What is wrong with it.
        reason: Malformed,
    },
    /// The timestamp is older than the tolerance allows.
    #[error("timestamp {timestamp} is too old (now {now}, max age {max_age_secs} s)")]
    TimestampTooOld {
        /// The signed timestamp (Unix seconds).
        timestamp: i64,
        /// The verifier's clock.
        now: i64,
        /// The configured maximum age.
        max_age_secs: i64,
    },
    /// The timestamp is further in the future than the allowed clock skew.
    #[error(
        "timestamp {timestamp} is too far in the future (now {now}, max skew {max_future_secs} s)"
    )]
    TimestampTooNew {
        /// The signed timestamp (Unix seconds).
        timestamp: i64,
        /// The verifier's clock.
        now: i64,
        /// The configured maximum skew.
        max_future_secs: i64,
    },
    /// No signature in the header matches any active secret.
    #[error("no signature matches an active secret")]
    BadSignature,
    /// The message id was already accepted with the same body: acknowledge, do not process.
    #[error("webhook {id} was already received")]
    Duplicate {
        /// The replay id (message id or signature-derived id).
        id: String,
    },
    /// The message id was already accepted with a different body.
    #[error("webhook {id} was already received with a different body")]
    Conflict {
        /// The replay id.
        id: String,
    },
    /// The replay store could not be consulted; nothing was accepted.
    #[error("replay store unavailable")]
    Store(#[source] StoreError),
}

impl VerifyError {
    /// The wire code the API answers with. `Duplicate` has no error code: the API answers
    /// it with 200 `{"status":"duplicate"}`; this returns [`ErrorCode::Conflict`] for it so
    /// that a caller that forgets the special case still does not process the message.
    pub fn code(&self) -> ErrorCode {
        match self {
            VerifyError::MissingHeader { .. }
            | VerifyError::DuplicateHeader { .. }
            | VerifyError::MalformedHeader { .. } => ErrorCode::MalformedWebhook,
            VerifyError::TimestampTooOld { .. }
            | VerifyError::TimestampTooNew { .. }
            | VerifyError::BadSignature => ErrorCode::InvalidSignature,
            VerifyError::Duplicate { .. } => ErrorCode::Conflict,
            VerifyError::Conflict { .. } => ErrorCode::WebhookReplayConflict,
            VerifyError::Store(_) => ErrorCode::ServiceUnavailable,
        }
    }

    /// Whether this is an accepted redelivery (answer 200, process nothing).
    pub fn is_duplicate(&self) -> bool {
        matches!(self, VerifyError::Duplicate { .. })
    }
}

/// What is wrong with a malformed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// The value is empty.
    #[error("empty")]
    Empty,
    /// The value is not visible ASCII.
    #[error("not visible ASCII")]
    NotAscii,
    /// The value exceeds the length limit.
    #[error("too long")]
    TooLong,
    /// The timestamp is not a canonical decimal integer that fits in 64 bits.
    #[error("timestamp is not a canonical 64-bit integer")]
    Timestamp,
    /// A signature entry does not follow `version,value` (or `k=v` for Stripe).
    #[error("signature entry is not well formed")]
    SignatureSyntax,
    /// A signature is not canonical base64 or lower-case hex of the right length.
    #[error("signature encoding is not canonical or has the wrong length")]
    SignatureEncoding,
    /// More signature entries than the verifier accepts.
    #[error("too many signatures")]
    TooManySignatures,
    /// The Stripe header lacks `t=` or has it twice, or it disagrees with a given timestamp.
    #[error("timestamp field missing, repeated or inconsistent")]
    TimestampField,
}

/// A key or secret that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret is empty.
    #[error("secret is empty")]
    Empty,
    /// The secret is not canonical base64.
    #[error("secret is not canonical base64")]
    Encoding,
    /// An ed25519 key does not have 32 bytes or is not a valid key.
    #[error("ed25519 key is invalid")]
    Ed25519Key,
    /// The key cannot be used with this scheme (e.g. an ed25519 key for Stripe).
    #[error("key type is not supported by the scheme")]
    WrongScheme,
    /// The key can verify but not sign (an ed25519 public key).
    #[error("key cannot sign")]
    CannotSign,
    /// The scheme requires a message id and none was given.
    #[error("the scheme requires a message id")]
    MissingId,
}

/// A storage backend failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or refused the operation.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A stored record could not be decoded.
    #[error("stored {what} is corrupt")]
    Corrupt {
        /// Which record.
        what: &'static str,
    },
}

/// Why an idempotent request cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdempotencyError {
    /// The key does not follow the grammar (8–64 of `[A-Za-z0-9_-]`).
    #[error("invalid idempotency key: {reason}")]
    InvalidKey {
        /// What is wrong.
        reason: KeyRejection,
    },
    /// The endpoint requires a key and none was sent.
    #[error("an idempotency key is required")]
    Required,
    /// A request with this key is still in flight.
    #[error("a request with this idempotency key is in flight")]
    InUse,
    /// The key was used with a different body.
    #[error("idempotency key reused with a different body")]
    Reused,
    /// The store failed.
    #[error("idempotency store unavailable")]
    Store(#[source] StoreError),
}

impl IdempotencyError {
    /// The wire code the API answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            IdempotencyError::InvalidKey { .. } => ErrorCode::InvalidIdempotencyKey,
            IdempotencyError::Required => ErrorCode::IdempotencyKeyRequired,
            IdempotencyError::InUse => ErrorCode::IdempotencyKeyInUse,
            IdempotencyError::Reused => ErrorCode::IdempotencyKeyReused,
            IdempotencyError::Store(_) => ErrorCode::ServiceUnavailable,
        }
    }
}

/// What is wrong with an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRejection {
    /// Fewer than 8 characters.
    #[error("shorter than 8 characters")]
    TooShort,
    /// More than 64 characters.
    #[error("longer than 64 characters")]
    TooLong,
    /// A character outside `[A-Za-z0-9_-]`.
    #[error("contains a character outside [A-Za-z0-9_-]")]
    Character,
    /// A quoted string is not closed, or the header value is not ASCII.
    #[error("header value is not a token or quoted string")]
    Syntax,
    /// The header appears more than once.
    #[error("header appears more than once")]
    Repeated,
    /// The body field is not a string.
    #[error("body field is not a string")]
    NotAString,
}

/// Why an outbound destination is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The URL is not absolute `http`/`https`, or has no host.
    #[error("not an absolute http(s) URL")]
    Url,
    /// Plain `http` while the policy requires `https`.
    #[error("https is required")]
    InsecureScheme,
    /// The URL carries credentials.
    #[error("URL contains credentials")]
    Credentials,
    /// The address is private, loopback, link-local or otherwise internal.
    #[error("address is not public and not allow-listed")]
    NonPublicAddress,
    /// The name resolved to no address.
    #[error("name resolved to no address")]
    Unresolved,
}

/// Any failure of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Inbound verification failed.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// An idempotent request cannot run.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// A secret cannot be used.
    #[error("invalid secret: {0}")]
    Secret(#[from] SecretError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value cannot be sent as the named header.
    #[error("value not allowed in header {name}")]
    InvalidHeaderValue {
        /// The header.
        name: &'static str,
    },
    /// An outbound destination is refused.
    #[error("destination {host} refused: {reason}")]
    DestinationRefused {
        /// The URL host.
        host: String,
        /// The offending address, when one was resolved.
        ip: Option<IpAddr>,
        /// Why.
        reason: Refusal,
    },
    /// The HTTP client could not be built.
    #[cfg(feature = "sender")]
    #[error("HTTP client setup failed")]
    Client(#[source] reqwest::Error),
}

impl Error {
    /// The wire code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Verify(e) => e.code(),
            Error::Idempotency(e) => e.code(),
            Error::Secret(_) => ErrorCode::ValidationError,
            Error::Store(_) => ErrorCode::ServiceUnavailable,
            Error::InvalidHeaderValue { .. } | Error::DestinationRefused { .. } => {
                ErrorCode::ValidationError
            }
            #[cfg(feature = "sender")]
            Error::Client(_) => ErrorCode::InternalError,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
