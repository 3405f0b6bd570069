//! Shared foundations of haven: the stable error vocabulary every binary speaks
//! ([`ErrorCode`], [`ErrorBody`], [`Problem`]) and the [`redact`] function that scrubs
//! secrets from logs and outward messages, the hash-chained [`audit`] log model and the
//! readiness [`Probe`] of a dependency.
//!
//! ```
//! use haven_core::{ErrorBody, ErrorCode, Problem};
//!
//! let problem = Problem::new(ErrorCode::ValidationError, "amount must be positive")
//!     .with_detail("field", "amount");
//! let body = ErrorBody::from_problem(&problem, Some("req-1".into()));
//! assert_eq!(body.error, ErrorCode::ValidationError);
//! assert_eq!(ErrorCode::ValidationError.status(), 400);
//!
//! let line = haven_core::redact("paid 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
//! assert_eq!(line, "paid [REDACTED_ADDRESS]");
//! ```
//!
//! ## Features
//! This crate has no optional features; it depends on no web, database or job framework.

pub mod audit;
mod error;
pub mod probe;
mod redact;

pub use error::{ErrorBody, ErrorCode, Problem, error_chain};
pub use probe::{Probe, ProbeError};
pub use redact::{REDACTION_MARKERS, contains_secret, redact};
