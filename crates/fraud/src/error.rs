use haven_core::ErrorCode;
use haven_core::audit::AuditError;
use uuid::Uuid;

use crate::event::EventError;
use crate::review::ReviewState;
use crate::rules::RulesError;
use crate::sink::DeliveryError;
use crate::window::StoreError;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The event is malformed.
    #[error("invalid event")]
    Event(#[from] EventError),
    /// The rules document is invalid.
    #[error("invalid rules")]
    Rules(#[from] RulesError),
    /// The window or alert store failed.
    #[error("store failure")]
    Store(#[from] StoreError),
    /// The principal may not perform the review action.
    #[error("{reviewer} may not {action} alerts")]
    Forbidden {
        /// The principal.
        reviewer: String,
        /// What was attempted, e.g. `acknowledge`.
        action: &'static str,
    },
    /// The review state does not allow the transition.
    #[error("an alert cannot go from {from} to {to}")]
    InvalidTransition {
        /// The current state.
        from: ReviewState,
        /// The requested state.
        to: ReviewState,
    },
    /// No alert with this id.
    #[error("alert {id} not found")]
    NotFound {
        /// The id asked for.
        id: Uuid,
    },
    /// A note is empty or too long.
    #[error("note must be 1..={max} characters")]
    InvalidNote {
        /// The longest note accepted.
        max: usize,
    },
    /// The audit log refused the event recording a review transition.
    #[error("audit log unavailable")]
    Audit(#[source] AuditError),
    /// A sink could not deliver an alert.
    #[error("delivery through {sink} failed")]
    Delivery {
        /// The sink name.
        sink: &'static str,
        /// Why.
        #[source]
        source: DeliveryError,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable wire code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Event(EventError::Amount(_)) => ErrorCode::InvalidAmount,
            Error::Event(EventError::Json(_)) => ErrorCode::InvalidJson,
            Error::Event(_) => ErrorCode::ValidationError,
            Error::Rules(_) => ErrorCode::ValidationError,
            Error::Store(_) => ErrorCode::ServiceUnavailable,
            Error::Forbidden { .. } => ErrorCode::Forbidden,
            Error::InvalidTransition { .. } => ErrorCode::InvalidTransition,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::InvalidNote { .. } => ErrorCode::ValidationError,
            Error::Audit(_) => ErrorCode::InternalError,
            Error::Delivery { .. } => ErrorCode::UpstreamError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::AmountError;

    #[test]
    fn amounts_map_to_invalid_amount_and_reviews_to_their_codes() {
        assert_eq!(
            Error::Event(EventError::Amount(AmountError::Exponent)).code(),
            ErrorCode::InvalidAmount
        );
        assert_eq!(
            Error::InvalidTransition {
                from: ReviewState::Resolved,
                to: ReviewState::Open
            }
            .code()
            .status(),
            422
        );
        assert_eq!(
            Error::Forbidden {
                reviewer: "v".into(),
                action: "resolve"
            }
            .code()
            .status(),
            403
        );
    }
}
