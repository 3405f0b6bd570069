use haven_core::ErrorCode;
use haven_core::audit::AuditError;

use crate::canonical::CanonicalError;
use crate::policy::{OperationKind, PolicyError};
use crate::types::{DecisionKind, GuardianId, RequestId, RequestState, VaultId};

/// A failure of the storage behind [`crate::VaultStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or failed.
    #[error("vault store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The policy is not usable.
    #[error("invalid policy")]
    Policy(#[from] PolicyError),
    /// The vault name is empty or longer than 100 characters.
    #[error("a vault name is 1 to 100 characters")]
    InvalidName,
    /// The operation has no canonical form.
    #[error("invalid operation")]
    Operation(#[from] CanonicalError),
    /// The policy does not cover the operation: it needs no vault.
    #[error("the vault's policy does not cover this {kind} operation")]
    NotCovered {
        /// The operation's kind.
        kind: OperationKind,
    },
    /// Fewer guardians than the threshold are in the vault.
    #[error("the vault has {guardians} guardians, fewer than its threshold {threshold}")]
    NotEnoughGuardians {
        /// M.
        threshold: u32,
        /// N.
        guardians: usize,
    },
    /// No vault with this id.
    #[error("vault {id} not found")]
    VaultNotFound {
        /// The id asked for.
        id: VaultId,
    },
    /// No guardian with this id.
    #[error("guardian {id} not found")]
    GuardianNotFound {
        /// The id asked for.
        id: GuardianId,
    },
    /// No request with this id.
    #[error("request {id} not found")]
    RequestNotFound {
        /// The id asked for.
        id: RequestId,
    },
    /// No invitation has this code.
    #[error("unknown invitation code")]
    InvitationUnknown,
    /// The code was already used.
    #[error("the invitation code was already used")]
    InvitationUsed,
    /// The code expired.
    #[error("the invitation code has expired")]
    InvitationExpired,
    /// The code admits to another vault.
    #[error("the invitation code is for another vault")]
    InvitationForOtherVault,
    /// The device key already belongs to a guardian of the vault: one device counts once.
    #[error("this device key is already a guardian of the vault")]
    DeviceKeyInUse,
    /// The guardian was removed.
    #[error("guardian {id} was removed from its vault")]
    GuardianRemoved {
        /// The guardian.
        id: GuardianId,
    },
    /// The guardian belongs to another vault than the request.
    #[error("guardian {guardian} is not a guardian of vault {vault}")]
    NotAGuardianOfVault {
        /// The guardian.
        guardian: GuardianId,
        /// The request's vault.
        vault: VaultId,
    },
    /// The signature is not the guardian's device signature of this decision.
    #[error("the signature does not verify against the guardian's device key")]
    BadSignature,
    /// The request expired.
    #[error("request {id} has expired")]
    RequestExpired {
        /// The request.
        id: RequestId,
    },
    /// The request is no longer open.
    #[error("request {id} is {state}, no longer open")]
    RequestClosed {
        /// The request.
        id: RequestId,
        /// Where it stands.
        state: RequestState,
    },
    /// The guardian already decided the other way; a decision is not changed.
    #[error("the guardian already decided to {decided} this request")]
    AlreadyDecided {
        /// The recorded decision.
        decided: DecisionKind,
    },
    /// The store failed.
    #[error("store failure")]
    Store(#[from] StoreError),
    /// The audit log refused the event; the result was withheld.
    #[error("audit log unavailable")]
    Audit(#[source] AuditError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable wire code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Policy(_) | Error::InvalidName | Error::Operation(_) => {
                ErrorCode::ValidationError
            }
            Error::NotCovered { .. } => ErrorCode::ValidationError,
            Error::NotEnoughGuardians { .. } => ErrorCode::Conflict,
            Error::VaultNotFound { .. }
            | Error::GuardianNotFound { .. }
            | Error::RequestNotFound { .. } => ErrorCode::NotFound,
            Error::InvitationUnknown
            | Error::InvitationExpired
            | Error::InvitationForOtherVault => ErrorCode::Forbidden,
            Error::InvitationUsed | Error::DeviceKeyInUse => ErrorCode::Conflict,
            Error::GuardianRemoved { .. } | Error::NotAGuardianOfVault { .. } => {
                ErrorCode::Forbidden
            }
            Error::BadSignature => ErrorCode::InvalidSignature,
            Error::RequestExpired { .. }
            | Error::RequestClosed { .. }
            | Error::AlreadyDecided { .. } => ErrorCode::Conflict,
            Error::Store(_) => ErrorCode::ServiceUnavailable,
            Error::Audit(_) => ErrorCode::InternalError,
        }
    }

    /// A short snake_case name for the audit log.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Policy(_) => "invalid_policy",
            Error::InvalidName => "invalid_name",
            Error::Operation(_) => "invalid_operation",
            Error::NotCovered { .. } => "not_covered",
            Error::NotEnoughGuardians { .. } => "not_enough_guardians",
            Error::VaultNotFound { .. } => "vault_not_found",
            Error::GuardianNotFound { .. } => "guardian_not_found",
            Error::RequestNotFound { .. } => "request_not_found",
            Error::InvitationUnknown => "invitation_unknown",
            Error::InvitationUsed => "invitation_used",
            Error::InvitationExpired => "invitation_expired",
            Error::InvitationForOtherVault => "invitation_for_other_vault",
            Error::DeviceKeyInUse => "device_key_in_use",
            Error::GuardianRemoved { .. } => "guardian_removed",
            Error::NotAGuardianOfVault { .. } => "not_a_guardian_of_vault",
            Error::BadSignature => "bad_signature",
            Error::RequestExpired { .. } => "request_expired",
            Error::RequestClosed { .. } => "request_closed",
            Error::AlreadyDecided { .. } => "already_decided",
            Error::Store(_) => "store_unavailable",
            Error::Audit(_) => "audit_unavailable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_their_codes() {
        assert_eq!(Error::BadSignature.code(), ErrorCode::InvalidSignature);
        assert_eq!(Error::InvitationUsed.code().status(), 409);
        assert_eq!(
            Error::GuardianRemoved {
                id: GuardianId::generate()
            }
            .code()
            .status(),
            403
        );
        assert_eq!(
            Error::RequestExpired {
                id: RequestId::generate()
            }
            .kind(),
            "request_expired"
        );
    }
}
