use std::fmt;
use std::time::Duration;

use haven_core::ErrorCode;

/// Everything the resilience layer itself can refuse or fail with.
///
/// Failures of the protected operation are not in here: wrappers return them untouched
/// inside [`CallError::Operation`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The breaker is OPEN, FORCED_OPEN or out of HALF_OPEN probe permits.
    #[error("circuit `{name}` is open")]
    CircuitOpen {
        /// Breaker name.
        name: String,
        /// When a call may be admitted again, if known.
        retry_after: Option<Duration>,
    },
    /// The bulkhead has no free slot.
    #[error("bulkhead `{name}` is full ({max_concurrent} calls in flight)")]
    BulkheadFull {
        /// Bulkhead name.
        name: String,
        /// Its configured limit.
        max_concurrent: usize,
    },
    /// The operation did not finish in time.
    #[error("operation timed out after {after:?}")]
    Timeout {
        /// The configured limit.
        after: Duration,
    },
    /// A rate limiter refused the request.
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited {
        /// How long until one more request would pass.
        retry_after: Duration,
    },
    /// No source answered and no cached value is within its staleness bound.
    #[error("`{resource}` is unavailable")]
    Unavailable {
        /// What was asked for, e.g. `price:ETH/USD`.
        resource: String,
    },
    /// A minimum interval between calls to an upstream has not elapsed yet.
    #[error("upstream `{upstream}` may be called again in {wait:?}")]
    IntervalNotElapsed {
        /// Upstream name.
        upstream: String,
        /// Time left until the next call is allowed.
        wait: Duration,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// An HTTP request to an upstream failed before a status was received.
    #[error("request to `{upstream}` failed")]
    Http {
        /// Upstream name.
        upstream: &'static str,
        /// Transport error (the HTTP client's own error type, boxed so the enum does not
        /// depend on the client).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An upstream's answer was longer than the client reads.
    #[error("`{upstream}` answered more than {limit} bytes")]
    ResponseTooLarge {
        /// Upstream name.
        upstream: &'static str,
        /// The most bytes read.
        limit: usize,
    },
    /// An upstream answered with a non-success status.
    #[error("`{upstream}` answered HTTP {status}")]
    UpstreamStatus {
        /// Upstream name.
        upstream: &'static str,
        /// HTTP status.
        status: u16,
        /// The upstream's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// An upstream answered with a body of the wrong shape.
    #[error("`{upstream}` answered an unexpected body")]
    Decode {
        /// Upstream name.
        upstream: &'static str,
        /// Parser error.
        #[source]
        source: serde_json::Error,
    },
    /// The upstream's answer did not contain the requested pair.
    #[error("`{upstream}` has no price for {pair}")]
    MissingPrice {
        /// Upstream name.
        upstream: &'static str,
        /// The requested pair.
        pair: String,
    },
    /// The upstream's price is not a finite positive number.
    #[error("`{upstream}` answered an invalid price for {pair}")]
    InvalidPrice {
        /// Upstream name.
        upstream: &'static str,
        /// The requested pair.
        pair: String,
    },
    /// A Redis command failed.
    #[cfg(feature = "redis")]
    #[error("redis command failed")]
    Redis {
        /// Driver error.
        #[source]
        source: redis::RedisError,
    },
    /// No Redis connection could be obtained.
    #[cfg(feature = "redis")]
    #[error("no redis connection")]
    RedisPool {
        /// Pool error.
        #[source]
        source: deadpool_redis::PoolError,
    },
    /// Redis did not answer within the configured time.
    #[cfg(feature = "redis")]
    #[error("redis did not answer within {after:?}")]
    RedisTimeout {
        /// The configured limit.
        after: Duration,
    },
    /// A Lua script answered with an unexpected shape.
    #[cfg(feature = "redis")]
    #[error("script `{script}` returned an unexpected reply")]
    UnexpectedReply {
        /// Script name.
        script: &'static str,
    },
}

impl Error {
    /// The stable wire code this error maps to.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::CircuitOpen { .. } => ErrorCode::CircuitOpen,
            Error::BulkheadFull { .. } => ErrorCode::ServiceUnavailable,
            Error::Timeout { .. } => ErrorCode::Timeout,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::Unavailable { .. } => ErrorCode::ServiceUnavailable,
            Error::IntervalNotElapsed { .. } => ErrorCode::ServiceUnavailable,
            Error::InvalidConfig { .. } => ErrorCode::InternalError,
            Error::Http { .. } => ErrorCode::UpstreamError,
            Error::UpstreamStatus { .. } => ErrorCode::UpstreamError,
            Error::ResponseTooLarge { .. } => ErrorCode::UpstreamError,
            Error::Decode { .. } => ErrorCode::UpstreamError,
            Error::MissingPrice { .. } => ErrorCode::UpstreamError,
            Error::InvalidPrice { .. } => ErrorCode::UpstreamError,
            #[cfg(feature = "redis")]
            Error::Redis { .. } => ErrorCode::ServiceUnavailable,
            #[cfg(feature = "redis")]
            Error::RedisPool { .. } => ErrorCode::ServiceUnavailable,
            #[cfg(feature = "redis")]
            Error::RedisTimeout { .. } => ErrorCode::ServiceUnavailable,
            #[cfg(feature = "redis")]
            Error::UnexpectedReply { .. } => ErrorCode::InternalError,
        }
    }

    /// A `Retry-After` hint for the caller, when the error carries one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::CircuitOpen { retry_after, .. } => *retry_after,
            Error::RateLimited { retry_after } => Some(*retry_after),
            Error::IntervalNotElapsed { wait, .. } => Some(*wait),
            Error::UpstreamStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(feature = "redis")]
impl From<redis::RedisError> for Error {
    fn from(source: redis::RedisError) -> Self {
        Error::Redis { source }
    }
}

#[cfg(feature = "redis")]
impl From<deadpool_redis::PoolError> for Error {
    fn from(source: deadpool_redis::PoolError) -> Self {
        Error::RedisPool { source }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The outcome of a wrapped call that failed: either the wrapper refused or aborted it,
/// or the operation itself failed.
#[derive(Debug)]
pub enum CallError<E> {
    /// The resilience layer refused or aborted the call (open circuit, timeout, full bulkhead…).
    Resilience(Error),
    /// The operation ran and returned this error.
    Operation(E),
}

impl<E> CallError<E> {
    /// The operation's own error, if it was the operation that failed.
    pub fn into_operation(self) -> Option<E> {
        match self {
            CallError::Operation(e) => Some(e),
            CallError::Resilience(_) => None,
        }
    }

    /// The resilience error, if the wrapper refused or aborted the call.
    pub fn as_resilience(&self) -> Option<&Error> {
        match self {
            CallError::Resilience(e) => Some(e),
            CallError::Operation(_) => None,
        }
    }
}

impl<E> From<Error> for CallError<E> {
    fn from(e: Error) -> Self {
        CallError::Resilience(e)
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Resilience(e) => e.fmt(f),
            CallError::Operation(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Resilience(e) => Some(e),
            CallError::Operation(e) => Some(e),
        }
    }
}
