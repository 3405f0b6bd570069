use haven_core::ErrorCode;

use crate::NonceKey;

/// The boxed cause of an infrastructure failure, kept for the log.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while managing nonces.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store (Redis, Postgres) could not be reached or failed the operation. No nonce was
    /// handed out: stores never fall back to a local counter.
    #[error("nonce store {backend} is unavailable")]
    StoreUnavailable {
        /// Which backend, e.g. `redis`.
        backend: &'static str,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// The lease expired and its nonce was handed to another lease (or the lease was dropped by
    /// a forced reset). The caller must not broadcast a transaction signed with it.
    #[error("lease {lease_id} on nonce {nonce} of {key} was lost")]
    LeaseLost {
        /// The account.
        key: NonceKey,
        /// The nonce of the lost lease.
        nonce: u64,
        /// The lost lease.
        lease_id: crate::LeaseId,
    },
    /// `release` was called on a lease that is already committed; a committed nonce may have
    /// reached the chain and is never handed out again.
    #[error("nonce {nonce} of {key} is already committed and cannot be released")]
    AlreadyCommitted {
        /// The account.
        key: NonceKey,
        /// The committed nonce.
        nonce: u64,
    },
    /// `reset` without `force` while leases are outstanding.
    #[error("{count} lease(s) on {key} are outstanding; reset refused without force")]
    LeasesOutstanding {
        /// The account.
        key: NonceKey,
        /// How many unexpired leases there are.
        count: usize,
    },
    /// The store holds data this crate did not write (or a newer version wrote).
    #[error("nonce store {backend} returned malformed data for {key}: {detail}")]
    CorruptState {
        /// Which backend.
        backend: &'static str,
        /// The account.
        key: NonceKey,
        /// What was wrong.
        detail: &'static str,
    },
    /// A nonce the backend cannot represent exactly (Redis scripts compute in doubles).
    #[error("nonce {nonce} of {key} exceeds the store's limit {max}")]
    NonceOutOfRange {
        /// The account.
        key: NonceKey,
        /// The nonce.
        nonce: u64,
        /// The largest nonce the store accepts.
        max: u64,
    },
    /// The chain node could not tell the pending nonce.
    #[error("cannot read the pending nonce on chain {chain_id}")]
    ChainUnavailable {
        /// The chain.
        chain_id: u64,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// No chain nonce source is configured for the chain.
    #[error("no nonce source is configured for chain {chain_id}")]
    UnknownChain {
        /// The chain.
        chain_id: u64,
    },
    /// An address could not be parsed.
    #[error("invalid address {input:?}")]
    InvalidAddress {
        /// The input (at most 64 characters of it).
        input: String,
        /// Why.
        #[source]
        source: hex::FromHexError,
    },
}

impl Error {
    /// The stable wire code this error maps to.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::StoreUnavailable { .. } => ErrorCode::ServiceUnavailable,
            Error::LeaseLost { .. } => ErrorCode::Conflict,
            Error::AlreadyCommitted { .. } => ErrorCode::InvalidTransition,
            Error::LeasesOutstanding { .. } => ErrorCode::Conflict,
            Error::CorruptState { .. } => ErrorCode::InternalError,
            Error::NonceOutOfRange { .. } => ErrorCode::InternalError,
            Error::ChainUnavailable { .. } => ErrorCode::BlockchainError,
            Error::UnknownChain { .. } => ErrorCode::UnsupportedChain,
            Error::InvalidAddress { .. } => ErrorCode::InvalidAddress,
        }
    }

    /// Whether retrying the same call later may succeed (the failure was infrastructure).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::StoreUnavailable { .. } | Error::ChainUnavailable { .. }
        )
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
