//! Integration tests of haven-rewards: amounts, payloads, pricing under the shipped and
//! custom rules, the ledger vocabulary, rules validation, and property tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod amounts;
mod ledger;
mod payloads;
mod pricing;
mod properties;
mod rules;

use haven_rewards::{Decision, EventName, Hnv, PayloadError, Rules, quote};

/// The event of a `source/name` path.
pub fn event(path: &str) -> EventName {
    path.parse().unwrap()
}

/// The shipped rules' decision on `payload`, which must be valid.
pub fn decided(path: &str, payload: &str) -> Decision {
    decided_by(&Rules::shipped(), path, payload)
}

/// `rules`' decision on `payload`, which must be valid.
pub fn decided_by(rules: &Rules, path: &str, payload: &str) -> Decision {
    quote(rules, event(path), payload.as_bytes())
        .unwrap_or_else(|e| panic!("{path} {payload}: {e}"))
}

/// The refusal of `payload` under the shipped rules.
pub fn refused(path: &str, payload: &str) -> PayloadError {
    match quote(&Rules::shipped(), event(path), payload.as_bytes()) {
        Ok(decision) => panic!("{path} {payload} was accepted: {decision:?}"),
        Err(e) => e,
    }
}

/// An HNV amount from its text.
pub fn hnv(text: &str) -> Hnv {
    Hnv::parse(text).unwrap()
}
