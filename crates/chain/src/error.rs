use std::time::Duration;

use haven_core::ErrorCode;

use crate::store::TxStatus;

/// A boxed error from a storage backend or the RPC transport.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything the chain crate can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The RPC circuit breaker is open; the request was recorded (if it got that far) and
    /// is picked up by the monitoring cycle once the node answers again.
    #[error("circuit `{breaker}` is open")]
    CircuitOpen {
        /// Breaker name.
        breaker: String,
        /// When a call may be admitted again, if known.
        retry_after: Option<Duration>,
    },
    /// A JSON-RPC call failed.
    #[error("rpc `{method}` failed")]
    Rpc {
        /// The RPC method.
        method: &'static str,
        /// Transport or node error.
        #[source]
        source: BoxError,
    },
    /// The node rejected a signed transaction.
    #[error("node rejected transaction `{tx_id}`: {message}")]
    Rejected {
        /// The transaction's id.
        tx_id: String,
        /// The node's message.
        message: String,
    },
    /// A nonce lease could not be taken, committed or released.
    #[error("nonce management failed")]
    Nonce(#[from] haven_nonce::Error),
    /// Custody refused or failed to sign.
    #[error("signing failed")]
    Custody(#[from] haven_custody::Error),
    /// The transaction store failed.
    #[error("transaction store failed during `{operation}`")]
    Store {
        /// The store operation.
        operation: &'static str,
        /// Backend error.
        #[source]
        source: BoxError,
    },
    /// Another writer changed the record first (the store's version check refused the write).
    #[error("transaction `{tx_id}` was changed concurrently")]
    Conflict {
        /// The transaction's id.
        tx_id: String,
    },
    /// The tx_id exists with a different request (kind, recipient, holder or amount).
    #[error("tx_id `{tx_id}` was already used for a different request")]
    TxIdReused {
        /// The transaction's id.
        tx_id: String,
    },
    /// The request lacks a party its kind needs (a recipient, or the custodial holder of a
    /// `burn_from` / `transfer_from`); nothing was recorded.
    #[error("transaction `{tx_id}` is invalid: {reason}")]
    InvalidRequest {
        /// The transaction's id.
        tx_id: String,
        /// What is missing.
        reason: &'static str,
    },
    /// No transaction with this id.
    #[error("transaction `{tx_id}` not found")]
    NotFound {
        /// The transaction's id.
        tx_id: String,
    },
    /// The operation is not allowed in the record's current status.
    #[error("transaction `{tx_id}` is {status}; {operation} is not allowed")]
    InvalidTransition {
        /// The transaction's id.
        tx_id: String,
        /// Its status.
        status: TxStatus,
        /// What was attempted.
        operation: &'static str,
    },
    /// The submission was stopped by a fault hook (tests only).
    #[error("transaction `{tx_id}` interrupted after `{stage}`")]
    Interrupted {
        /// The transaction's id.
        tx_id: String,
        /// The stage after which it stopped.
        stage: &'static str,
    },
    /// Deploying the token failed.
    #[error("token deployment failed: {reason}")]
    Deploy {
        /// What went wrong.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
}

impl Error {
    /// The stable wire code this error maps to.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::CircuitOpen { .. } => ErrorCode::CircuitOpen,
            Error::Rpc { .. } => ErrorCode::BlockchainError,
            Error::Rejected { .. } => ErrorCode::BlockchainError,
            Error::Nonce(e) => e.code(),
            Error::Custody(e) => e.code(),
            Error::Store { .. } => ErrorCode::DatabaseError,
            Error::Conflict { .. } => ErrorCode::Conflict,
            Error::TxIdReused { .. } => ErrorCode::IdempotencyKeyReused,
            Error::InvalidRequest { .. } => ErrorCode::ValidationError,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::InvalidTransition { .. } => ErrorCode::InvalidTransition,
            Error::Interrupted { .. } => ErrorCode::InternalError,
            Error::Deploy { .. } => ErrorCode::BlockchainError,
            Error::InvalidConfig { .. } => ErrorCode::InternalError,
        }
    }

    pub(crate) fn rpc(method: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Rpc {
            method,
            source: source.into(),
        }
    }
}

impl From<haven_resilience::Error> for Error {
    fn from(e: haven_resilience::Error) -> Self {
        match e {
            haven_resilience::Error::CircuitOpen { name, retry_after } => Error::CircuitOpen {
                breaker: name,
                retry_after,
            },
            other => Error::Rpc {
                method: "breaker",
                source: Box::new(other),
            },
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
