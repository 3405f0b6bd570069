//! The HAVEN rewards core: a partner's webhook payload becomes a typed, validated
//! [`PartnerEvent`], and versioned [`Rules`] price it into a [`Decision`] — how many HNV the
//! member earns, under which once-only [`BusinessKey`], and what else the ledger must do.
//!
//! Pure functions over exact decimals: no floats, no clock, no storage. Storage, HTTP and
//! the chain consume this API elsewhere.
//!
//! ```
//! use haven_rewards::{Effect, EventName, RewardKind, Rules, quote};
//!
//! let rules = Rules::shipped();
//!
//! // 2 HNV per CAD, +20 % for more than one night; camelCase and `id` are accepted.
//! let decision = quote(
//!     &rules,
//!     EventName::BookingCreated,
//!     br#"{"data":{"id":"b-1","guestId":"g-1","totalPrice":99.99,"nights":3}}"#,
//! )?;
//! assert!(decision.reward);
//! assert_eq!(decision.amount.to_string(), "239.976");
//! assert_eq!(decision.kind, Some(RewardKind::Booking));
//! let key = decision.business_key.as_ref().unwrap();
//! assert_eq!(key.as_string(), "aurora:booking:b-1");
//! assert!(key.tx_id().starts_with("rw-"));
//! assert_eq!(decision.rules_version, rules.version());
//! assert_eq!(
//!     decision.quote_json()["amount_base_units"],
//!     "239976000000000000000"
//! );
//!
//! // A cancellation reverses the booking's rewards.
//! let decision = quote(&rules, EventName::BookingCancelled, br#"{"booking_id":"b-1","guest_id":"g-1"}"#)?;
//! assert_eq!(decision.effect, Effect::ReverseBooking { booking_id: "b-1".into() });
//!
//! // Invalid payloads name the field.
//! let err = quote(&rules, EventName::BookingCreated, br#"{"id":"b-1","guest_id":"g-1","total_price":-5,"nights":2}"#)
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "field `total_price`: must be positive");
//! assert_eq!(err.code(), haven_core::ErrorCode::InvalidPayload);
//! # Ok::<(), haven_rewards::PayloadError>(())
//! ```
//!
//! The pieces: [`parse_event`] (payload → event; field-name variants, exact numbers),
//! [`Rules`] (the TOML rules, [`DEFAULT_RULES`] shipped), [`decide`] / [`try_decide`]
//! (event → decision), [`quote`] (both), [`Hnv`] and [`Decimal`] (exact amounts), and the
//! ledger's vocabulary: [`RewardKind`], [`BusinessKey`], [`RewardState`]. The tokenomics,
//! the rounding rule and the accepted field names are in `docs/REWARDS.md`.
//!
//! ## Features
//! None: the crate has no optional parts. It depends on no web, database, job or CLI
//! framework.

mod amount;
mod decision;
mod event;
mod ledger;
mod payload;
mod rules;
mod staking;

pub use amount::{AmountError, Decimal, Hnv, MAX_INPUT_LEN};
pub use decision::{Decision, Effect, decide, quote, try_decide};
pub use event::{EventName, EventSubject, MemberRef, PartnerEvent, Source, UnknownName};
pub use ledger::{BusinessKey, RewardKind, RewardState};
pub use payload::{MAX_ID_CHARS, PayloadError, parse_event};
pub use rules::{DEFAULT_RULES, Rules, RulesError, StakingRules};
pub use staking::{
    DAYS_PER_YEAR, IsoWeek, WeekError, active_days, staking_interest, weekly_accrual,
};

/// The README's example runs as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Any error of this crate, for callers that handle them together.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An amount's text was refused.
    #[error(transparent)]
    Amount(#[from] AmountError),
    /// A payload was refused.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// A rules document was refused.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// A name is not part of the vocabulary.
    #[error(transparent)]
    UnknownName(#[from] UnknownName),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
