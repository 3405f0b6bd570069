//! The crate's error type.

use haven_core::ErrorCode;
use haven_core::audit::AuditError;

use crate::types::{Chain, KeyStatus, WalletId};

/// A boxed error from a backend (store, HTTP client, signer).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What could not be decrypted. Never carries the bytes themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A wallet's private key (data-key layer).
    PrivateKey,
    /// A data key (KEK layer).
    DataKey,
}

impl std::fmt::Display for SecretKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretKind::PrivateKey => "private key",
            SecretKind::DataKey => "data key",
        })
    }
}

/// Why a master key list was rejected. Names the entry, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MasterKeyProblem {
    /// No keys were given.
    #[error("no master keys are configured")]
    Empty,
    /// An entry is not `v<N>:<base64>`.
    #[error("entry {index} is not of the form v<N>:<base64>")]
    Malformed {
        /// 0-based position in the list.
        index: usize,
    },
    /// A version appears twice.
    #[error("version {version} appears more than once")]
    DuplicateVersion {
        /// The version.
        version: u32,
    },
    /// The key is not valid base64.
    #[error("the key of version {version} is not valid base64")]
    BadBase64 {
        /// The version.
        version: u32,
    },
    /// The key does not decode to 32 bytes.
    #[error("the key of version {version} is {len} bytes, not 32")]
    WrongLength {
        /// The version.
        version: u32,
        /// Decoded length.
        len: usize,
    },
    /// `min_decryption_version` is above the newest key.
    #[error("min_decryption_version {min} is above the newest key version {newest}")]
    MinAboveNewest {
        /// The requested minimum.
        min: u32,
        /// The newest version configured.
        newest: u32,
    },
}

/// Everything that can go wrong in custody.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The wallet id does not follow the grammar.
    #[error("invalid wallet id: {reason}")]
    InvalidWalletId {
        /// What is wrong.
        reason: &'static str,
    },
    /// `create_wallet` with an id that is taken.
    #[error("wallet {id} already exists")]
    WalletExists {
        /// The id.
        id: WalletId,
    },
    /// No such wallet.
    #[error("wallet {id} not found")]
    WalletNotFound {
        /// The id.
        id: WalletId,
    },
    /// The wallet has no such key version.
    #[error("wallet {id} has no key version {version}")]
    KeyNotFound {
        /// The wallet.
        id: WalletId,
        /// The version asked for.
        version: u32,
    },
    /// The key is rotated or revoked and refuses to sign (or the wallet is revoked).
    #[error("wallet {id} key version {version} is {status} and cannot be used")]
    NotActive {
        /// The wallet.
        id: WalletId,
        /// The key version.
        version: u32,
        /// Why.
        status: KeyStatus,
    },
    /// The operation does not exist for this key family (e.g. an EVM transaction for Solana).
    #[error("{operation} is not supported for {chain} wallets")]
    UnsupportedOperation {
        /// The wallet's chain.
        chain: Chain,
        /// The operation.
        operation: &'static str,
    },
    /// A transaction could not be signed as given (e.g. its chain id differs from the signer's).
    #[error("invalid transaction: {reason}")]
    InvalidTransaction {
        /// What is wrong.
        reason: String,
    },
    /// Private key export is switched off in the configuration.
    #[error("private key export is disabled")]
    ExportDisabled,
    /// Export asked for without a reason.
    #[error("a reason is required to export a private key")]
    ReasonRequired,
    /// An authenticated decryption failed: wrong key, tampered or misplaced ciphertext.
    #[error(
        "could not decrypt the {what}: the ciphertext is corrupt, misplaced or under another key"
    )]
    Decryption {
        /// Which layer failed.
        what: SecretKind,
    },
    /// An encryption failed (a plaintext too long for AES-GCM; never expected).
    #[error("encryption failed")]
    Encryption,
    /// A stored record is malformed (wrong lengths, key bytes out of range).
    #[error("the stored key of wallet {id} version {version} is corrupt: {problem}")]
    CorruptKey {
        /// The wallet.
        id: WalletId,
        /// The key version.
        version: u32,
        /// What is wrong.
        problem: &'static str,
    },
    /// The data key is wrapped under a KEK version below `min_decryption_version`.
    #[error("KEK version {version} is below the minimum decryption version")]
    KekVersionRetired {
        /// The version of the ciphertext.
        version: u32,
    },
    /// The data key is wrapped under a KEK version the provider does not have.
    #[error("KEK version {version} is unknown to the key provider")]
    UnknownKekVersion {
        /// The version of the ciphertext.
        version: u32,
    },
    /// `rewrap_all` was asked for a version other than the provider's current one.
    #[error(
        "cannot rewrap to KEK version {requested}: the provider encrypts with version {current}"
    )]
    KekVersionMismatch {
        /// The requested target.
        requested: u32,
        /// What the provider encrypts with.
        current: u32,
    },
    /// The master key configuration is invalid.
    #[error("invalid master keys: {0}")]
    MasterKeys(#[from] MasterKeyProblem),
    /// A concurrent change won (rotation or rewrap raced); retry.
    #[error("wallet {id} changed concurrently")]
    Conflict {
        /// The wallet.
        id: WalletId,
    },
    /// [`Custody::rotate_wallet_from`](crate::Custody::rotate_wallet_from) named a key
    /// version that is no longer the current one: the wallet was rotated since (a retried
    /// request finds its own rotation done).
    #[error("wallet {id} is at key version {current}, not {expected}: it was rotated since")]
    VersionMismatch {
        /// The wallet.
        id: WalletId,
        /// The version the caller rotates from.
        expected: u32,
        /// The wallet's current version.
        current: u32,
    },
    /// The key provider answered with an error.
    #[error("key provider refused with status {status}: {}", errors.join("; "))]
    ProviderRefused {
        /// HTTP status.
        status: u16,
        /// The provider's error messages.
        errors: Vec<String>,
    },
    /// The key provider could not be reached or answered nonsense.
    #[error("key provider unavailable")]
    ProviderUnavailable(#[source] BoxError),
    /// The wallet store failed.
    #[error("wallet store failed")]
    Storage(#[source] BoxError),
    /// The audit event could not be written, so the operation's result was withheld.
    #[error("audit log append failed")]
    Audit(#[from] AuditError),
    /// The OS random number generator failed.
    #[error("the OS random number generator failed")]
    Random(#[source] BoxError),
    /// The signing primitive failed.
    #[error("signing failed")]
    Signing(#[source] BoxError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The wire code the binaries answer with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidWalletId { .. }
            | Error::ReasonRequired
            | Error::InvalidTransaction { .. }
            | Error::KekVersionMismatch { .. } => ErrorCode::ValidationError,
            Error::UnsupportedOperation { .. } => ErrorCode::UnsupportedChain,
            Error::WalletExists { .. } | Error::Conflict { .. } | Error::VersionMismatch { .. } => {
                ErrorCode::Conflict
            }
            Error::WalletNotFound { .. } | Error::KeyNotFound { .. } => ErrorCode::NotFound,
            Error::NotActive { .. } => ErrorCode::WalletNotActive,
            Error::ExportDisabled => ErrorCode::Forbidden,
            Error::Decryption { .. }
            | Error::Encryption
            | Error::CorruptKey { .. }
            | Error::KekVersionRetired { .. }
            | Error::UnknownKekVersion { .. }
            | Error::MasterKeys(_)
            | Error::Audit(_)
            | Error::Random(_)
            | Error::Signing(_) => ErrorCode::InternalError,
            Error::ProviderRefused { .. } => ErrorCode::UpstreamError,
            Error::ProviderUnavailable(_) => ErrorCode::ServiceUnavailable,
            Error::Storage(_) => ErrorCode::DatabaseError,
        }
    }

    /// A short stable name for the audit log and metrics, e.g. `not_active`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidWalletId { .. } => "invalid_wallet_id",
            Error::WalletExists { .. } => "wallet_exists",
            Error::WalletNotFound { .. } => "wallet_not_found",
            Error::KeyNotFound { .. } => "key_not_found",
            Error::NotActive { .. } => "not_active",
            Error::UnsupportedOperation { .. } => "unsupported_operation",
            Error::InvalidTransaction { .. } => "invalid_transaction",
            Error::ExportDisabled => "export_disabled",
            Error::ReasonRequired => "reason_required",
            Error::Decryption { .. } => "decryption_failed",
            Error::Encryption => "encryption_failed",
            Error::CorruptKey { .. } => "corrupt_key",
            Error::KekVersionRetired { .. } => "kek_version_retired",
            Error::UnknownKekVersion { .. } => "unknown_kek_version",
            Error::KekVersionMismatch { .. } => "kek_version_mismatch",
            Error::MasterKeys(_) => "master_keys",
            Error::Conflict { .. } => "conflict",
            Error::VersionMismatch { .. } => "version_mismatch",
            Error::ProviderRefused { .. } => "provider_refused",
            Error::ProviderUnavailable(_) => "provider_unavailable",
            Error::Storage(_) => "storage",
            Error::Audit(_) => "audit",
            Error::Random(_) => "random",
            Error::Signing(_) => "signing",
        }
    }
}
