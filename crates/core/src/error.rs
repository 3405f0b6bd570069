use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::redact::redact;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = ($status:expr, $wire:literal, $user:literal),)+) => {
        /// Stable, SCREAMING_SNAKE error codes shared by every haven binary.
        ///
        /// The wire name and HTTP status of a code never change once released; new codes
        /// may be added, hence `#[non_exhaustive]`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* #[serde(rename = $wire)] $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// HTTP status the code is answered with.
            pub const fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)+ }
            }

            /// The SCREAMING_SNAKE wire name.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $wire,)+ }
            }

            /// A message safe to show an end user when the caller has none better.
            pub const fn default_user_message(self) -> &'static str {
                match self { $(ErrorCode::$variant => $user,)+ }
            }
        }
    };
}

error_codes! {
    /// A request field failed validation.
    ValidationError = (400, "VALIDATION_ERROR", "Some fields are invalid."),
    /// The body is not well-formed JSON or does not match the expected shape.
    InvalidJson = (400, "INVALID_JSON", "The request body is not valid JSON."),
    /// A query string could not be parsed.
    InvalidQuery = (400, "INVALID_QUERY", "The query string is invalid."),
    /// A path parameter could not be parsed.
    InvalidPath = (400, "INVALID_PATH", "The request path is invalid."),
    /// A blockchain address failed validation.
    InvalidAddress = (400, "INVALID_ADDRESS", "The address is not valid."),
    /// The chain named in a request is not supported.
    UnsupportedChain = (400, "UNSUPPORTED_CHAIN", "This chain is not supported."),
    /// An amount is malformed, negative or out of range.
    InvalidAmount = (400, "INVALID_AMOUNT", "The amount is not valid."),
    /// The `Idempotency-Key` does not follow the grammar.
    InvalidIdempotencyKey = (400, "INVALID_IDEMPOTENCY_KEY", "The idempotency key is invalid."),
    /// The endpoint requires an `Idempotency-Key`.
    IdempotencyKeyRequired = (400, "IDEMPOTENCY_KEY_REQUIRED", "This request needs an idempotency key."),
    /// A webhook carried malformed signature headers.
    MalformedWebhook = (400, "MALFORMED_WEBHOOK", "The webhook headers are malformed."),
    /// No or invalid credentials.
    Unauthorized = (401, "UNAUTHORIZED", "Authentication is required."),
    /// The credentials are valid but expired.
    TokenExpired = (401, "TOKEN_EXPIRED", "Your session has expired."),
    /// A webhook signature did not verify.
    InvalidSignature = (401, "INVALID_SIGNATURE", "The signature is not valid."),
    /// The principal lacks the permission.
    Forbidden = (403, "FORBIDDEN", "You are not allowed to do this."),
    /// No such route or object.
    NotFound = (404, "NOT_FOUND", "The requested resource was not found."),
    /// The route exists but not for this method.
    MethodNotAllowed = (405, "METHOD_NOT_ALLOWED", "This method is not allowed here."),
    /// The state of the object forbids the operation.
    Conflict = (409, "CONFLICT", "The request conflicts with the current state."),
    /// A request with the same idempotency key is still in flight.
    IdempotencyKeyInUse = (409, "IDEMPOTENCY_KEY_IN_USE", "A request with this idempotency key is in progress."),
    /// The transaction id was already used for a different request.
    DuplicateTransaction = (409, "DUPLICATE_TRANSACTION", "This transaction was already submitted."),
    /// A webhook id was replayed with a different body.
    WebhookReplayConflict = (409, "WEBHOOK_REPLAY_CONFLICT", "This webhook was already received with different content."),
    /// The wallet was revoked or rotated and cannot sign.
    WalletNotActive = (409, "WALLET_NOT_ACTIVE", "This wallet can no longer sign."),
    /// The change would leave no active administrator.
    LastAdmin = (409, "LAST_ADMIN", "The last administrator cannot be demoted or disabled."),
    /// The transaction is not in a state that may be submitted again.
    TransactionNotRetryable = (409, "TRANSACTION_NOT_RETRYABLE", "This transaction cannot be retried in its current state."),
    /// The body exceeds the size limit.
    PayloadTooLarge = (413, "PAYLOAD_TOO_LARGE", "The request body is too large."),
    /// The `Content-Type` is not accepted.
    UnsupportedMediaType = (415, "UNSUPPORTED_MEDIA_TYPE", "The content type is not supported."),
    /// The same idempotency key was used with a different body.
    IdempotencyKeyReused = (422, "IDEMPOTENCY_KEY_REUSED", "This idempotency key was used for a different request."),
    /// The balance does not cover the operation.
    InsufficientBalance = (422, "INSUFFICIENT_BALANCE", "The balance is insufficient."),
    /// An illegal state transition was requested.
    InvalidTransition = (422, "INVALID_TRANSITION", "This change is not allowed from the current state."),
    /// A partner event's payload is missing a field or holds a value the rules refuse.
    InvalidPayload = (422, "INVALID_PAYLOAD", "The event payload is not valid."),
    /// Too many requests.
    RateLimited = (429, "RATE_LIMITED", "Too many requests; please retry later."),
    /// An unexpected failure; details are only in the server log.
    InternalError = (500, "INTERNAL_ERROR", "Something went wrong on our side."),
    /// The database failed.
    DatabaseError = (500, "DATABASE_ERROR", "Something went wrong on our side."),
    /// A blockchain node or transaction failed.
    BlockchainError = (502, "BLOCKCHAIN_ERROR", "The blockchain network could not process the request."),
    /// An upstream dependency answered with an error.
    UpstreamError = (502, "UPSTREAM_ERROR", "A service we depend on failed."),
    /// A circuit breaker is open; the dependency is not being called.
    CircuitOpen = (503, "CIRCUIT_OPEN", "This service is temporarily unavailable; please retry later."),
    /// A dependency (database, cache, node) is unavailable.
    ServiceUnavailable = (503, "SERVICE_UNAVAILABLE", "This service is temporarily unavailable; please retry later."),
    /// No current price could be had (every source failed, the cached one is past its bound).
    PriceUnavailable = (503, "PRICE_UNAVAILABLE", "No current price is available; please retry later."),
    /// This server is not configured for the operation (e.g. an api without the custody
    /// master keys asked to create a wallet); retrying here does not help.
    NotConfigured = (503, "NOT_CONFIGURED", "This operation is not configured on this server."),
    /// The operation timed out.
    Timeout = (504, "TIMEOUT", "The request took too long; please retry later."),
}

impl ErrorCode {
    /// Whether the code is a server-side (5xx) failure whose details stay in the log.
    pub const fn is_server_error(self) -> bool {
        self.status() >= 500
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified failure on its way to the wire: a code, a developer-facing message, an
/// optional user-facing message and structured details.
///
/// Domain crates keep their own error enums; the binaries map them into a `Problem` in one
/// explicit `match`. The `source` is kept for the log, never serialized.
#[derive(Debug)]
pub struct Problem {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for developers. Redacted before it leaves the process.
    pub message: String,
    /// What to tell an end user; defaults to the code's message.
    pub user_message: Option<String>,
    /// Structured context (field errors, limits, …). Dropped for 5xx.
    pub details: Map<String, Value>,
    /// The underlying cause, for logs only.
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Problem {
    /// A problem with a code and a developer-facing message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            user_message: None,
            details: Map::new(),
            source: None,
        }
    }

    /// An internal error that keeps `source` for the log and tells the client nothing.
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::new(ErrorCode::InternalError, "internal error").with_source(source)
    }

    /// Sets the user-facing message.
    pub fn with_user_message(mut self, message: impl Into<String>) -> Self {
        self.user_message = Some(message.into());
        self
    }

    /// Adds one detail.
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Keeps the cause for the log.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The whole cause chain as one line, for the log (not for clients).
    pub fn cause_chain(&self) -> String {
        match self.source.as_deref() {
            Some(source) => format!("{}: {}", self.message, error_chain(source)),
            None => self.message.clone(),
        }
    }
}

/// An error and its sources as one line, `outer: inner: innermost`, for logs (not for
/// clients: pass it through [`redact`](crate::redact) before it leaves the process).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(err) = next {
        out.push_str(": ");
        out.push_str(&err.to_string());
        next = err.source();
    }
    out
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Problem {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<ErrorCode> for Problem {
    fn from(code: ErrorCode) -> Self {
        Problem::new(code, code.default_user_message())
    }
}

/// The JSON error body every haven HTTP response carries on failure:
/// `{error, message, user_message, error_id, request_id, timestamp, details}`.
///
/// Built with [`ErrorBody::from_problem`], which guarantees that a 5xx body says nothing
/// internal and that every message is redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code.
    pub error: ErrorCode,
    /// Developer-facing message (generic for 5xx).
    pub message: String,
    /// End-user-facing message.
    pub user_message: String,
    /// Unique id of this occurrence; for 5xx the same id is written to `error_logs`.
    pub error_id: Uuid,
    /// The request id (`X-Request-ID`) of the request that failed.
    pub request_id: Option<String>,
    /// When the error happened, RFC 3339 UTC.
    #[serde(with = "rfc3339")]
    pub timestamp: DateTime<Utc>,
    /// Structured context; always empty for 5xx.
    pub details: Map<String, Value>,
}

impl ErrorBody {
    /// Builds the outward body of `problem`. Server errors get the code's generic message and
    /// no details; client errors keep theirs, redacted.
    pub fn from_problem(problem: &Problem, request_id: Option<String>) -> Self {
        let code = problem.code;
        let (message, user_message, details) = if code.is_server_error() {
            (
                code.default_user_message().to_owned(),
                code.default_user_message().to_owned(),
                Map::new(),
            )
        } else {
            let user = problem
                .user_message
                .as_deref()
                .unwrap_or(code.default_user_message());
            (
                redact(&problem.message),
                redact(user),
                redact_json_map(&problem.details),
            )
        };
        Self {
            error: code,
            message,
            user_message,
            error_id: Uuid::new_v4(),
            request_id,
            timestamp: Utc::now(),
            details,
        }
    }

    /// Shorthand for a body with only a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>, request_id: Option<String>) -> Self {
        Self::from_problem(&Problem::new(code, message), request_id)
    }

    /// HTTP status of the body's code.
    pub fn status(&self) -> u16 {
        self.error.status()
    }
}

fn redact_json_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| (k.clone(), redact_json(v)))
        .collect()
}

fn redact_json(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(redact(s)),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        Value::Object(map) => Value::Object(redact_json_map(map)),
        Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
    }
}

mod rfc3339 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&ts.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_screaming_snake_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let name = code.as_str();
            assert!(
                name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{name}"
            );
            assert!(seen.insert(name), "duplicate {name}");
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert!((400..600).contains(&code.status()));
        }
    }

    #[test]
    fn server_errors_reveal_nothing() {
        let problem = Problem::new(
            ErrorCode::DatabaseError,
            "relation \"users\" does not exist at /srv/haven/src/db.rs:42",
        )
        .with_detail("sql", "SELECT * FROM users");
        let body = ErrorBody::from_problem(&problem, Some("r1".into()));
        let json = serde_json::to_string(&body).unwrap();
        assert!(!json.contains("users"), "{json}");
        assert!(!json.contains("db.rs"), "{json}");
        assert!(body.details.is_empty());
        assert_eq!(body.status(), 500);
    }

    #[test]
    fn client_errors_keep_redacted_details() {
        let problem = Problem::new(ErrorCode::InvalidAddress, "bad checksum")
            .with_detail("address", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
        let body = ErrorBody::from_problem(&problem, None);
        assert_eq!(body.details["address"], "[REDACTED_ADDRESS]");
        assert_eq!(body.message, "bad checksum");
    }

    #[test]
    fn body_round_trips_with_all_fields() {
        let body = ErrorBody::new(ErrorCode::NotFound, "no route", Some("abc".into()));
        let value = serde_json::to_value(&body).unwrap();
        for key in [
            "error",
            "message",
            "user_message",
            "error_id",
            "request_id",
            "timestamp",
            "details",
        ] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
        let back: ErrorBody = serde_json::from_value(value).unwrap();
        assert_eq!(back.error, ErrorCode::NotFound);
    }

    #[test]
    fn cause_chain_walks_sources() {
        let io = std::io::Error::other("disk full");
        let p = Problem::internal(io);
        assert_eq!(p.cause_chain(), "internal error: disk full");
    }
}
