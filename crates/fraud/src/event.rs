//! The events rules are evaluated against, and their strict parsing from JSON.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::amount::{Amount, AmountError};

/// The longest identifier (event id, user, principal, chain, …) an event may carry.
pub const MAX_ID_LEN: usize = 256;

/// What a payment event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    /// A user bought tokens.
    Purchase,
    /// A user moved tokens to a destination address.
    Transfer,
    /// Tokens were minted for a user.
    Mint,
    /// A user redeemed tokens.
    Redeem,
    /// Tokens credited to a user were taken back (a cancelled reward). Rules see it only
    /// when they name `reversal` in their `events`.
    Reversal,
}

impl PaymentKind {
    /// The wire name, e.g. `purchase`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentKind::Purchase => "purchase",
            PaymentKind::Transfer => "transfer",
            PaymentKind::Mint => "mint",
            PaymentKind::Redeem => "redeem",
            PaymentKind::Reversal => "reversal",
        }
    }
}

/// A purchase, transfer, mint or redeem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEvent {
    /// Unique id; a repeated id is evaluated once.
    pub event_id: String,
    /// The user the payment belongs to.
    pub user: String,
    /// A positive amount with at most 18 decimals.
    pub amount: Amount,
    /// Currency code, e.g. `NGN` or `USDC` (ASCII upper case letters and digits).
    pub currency: String,
    /// The destination address, for transfers and redeems.
    #[serde(default)]
    pub destination: Option<String>,
    /// When it happened (event time, not arrival time).
    pub ts: DateTime<Utc>,
}

/// A failed authentication attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFailureEvent {
    /// Unique id.
    pub event_id: String,
    /// The principal that tried (user name, API key prefix, …).
    pub principal: String,
    /// The client address.
    pub ip: IpAddr,
    /// When it happened.
    pub ts: DateTime<Utc>,
}

/// A transaction observed still pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxPendingEvent {
    /// Unique id of the observation.
    pub event_id: String,
    /// The chain, e.g. `base` or `1`.
    pub chain: String,
    /// The transaction hash.
    pub tx_hash: String,
    /// The user it belongs to, when known.
    #[serde(default)]
    pub user: Option<String>,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// When it was observed still pending.
    pub ts: DateTime<Utc>,
}

/// A transaction that failed (reverted, dropped, or refused by the node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxFailedEvent {
    /// Unique id.
    pub event_id: String,
    /// The chain.
    pub chain: String,
    /// The transaction hash.
    pub tx_hash: String,
    /// The user it belongs to, when known.
    #[serde(default)]
    pub user: Option<String>,
    /// Why it failed, as reported (redacted before it leaves the process).
    #[serde(default)]
    pub reason: String,
    /// When it failed.
    pub ts: DateTime<Utc>,
}

/// One gas price observation. The value is signed on purpose: nonsense samples (zero,
/// negative, absurd) must reach the rules so that they raise a data-quality alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GasSampleEvent {
    /// Unique id.
    pub event_id: String,
    /// The chain.
    pub chain: String,
    /// The gas price in wei.
    pub wei: i128,
    /// When it was sampled.
    pub ts: DateTime<Utc>,
}

/// HTTP request counts of one service over one reporting interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpErrorsEvent {
    /// Unique id.
    pub event_id: String,
    /// The service, e.g. `api`.
    pub service: String,
    /// Requests answered in the interval.
    pub requests: u64,
    /// Of which answered with a 5xx status.
    pub server_errors: u64,
    /// End of the interval.
    pub ts: DateTime<Utc>,
}

/// Everything the rules look at. JSON form: an object with `"type"` naming the variant in
/// snake case, e.g. `{"type":"purchase","event_id":"e1","user":"u1","amount":"100",…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A purchase.
    Purchase(PaymentEvent),
    /// A transfer.
    Transfer(PaymentEvent),
    /// A mint.
    Mint(PaymentEvent),
    /// A redeem.
    Redeem(PaymentEvent),
    /// A reversal (a cancelled reward taken back).
    Reversal(PaymentEvent),
    /// A failed authentication.
    AuthFailure(AuthFailureEvent),
    /// A transaction seen pending.
    TxPending(TxPendingEvent),
    /// A failed transaction.
    TxFailed(TxFailedEvent),
    /// A gas price sample.
    GasSample(GasSampleEvent),
    /// HTTP error counts.
    HttpErrors(HttpErrorsEvent),
}

/// Why an event was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The JSON is malformed or does not have the shape of an event.
    #[error("event is not valid JSON of a known shape")]
    Json(#[source] serde_json::Error),
    /// The amount is not a valid decimal.
    #[error("invalid amount")]
    Amount(#[source] AmountError),
    /// A required identifier is empty, too long or contains control characters.
    #[error("field `{field}` must be 1..={MAX_ID_LEN} printable characters")]
    InvalidField {
        /// The field name.
        field: &'static str,
    },
    /// The event's time is further in the future than the engine tolerates: it could
    /// otherwise become the newest of its windows and make every later event "late".
    #[error("ts is {ahead_secs} s in the future; at most {max_secs} s of clock skew is accepted")]
    InFuture {
        /// How far ahead of the engine's clock the event is, in seconds.
        ahead_secs: i64,
        /// The tolerated skew.
        max_secs: u64,
    },
    /// HTTP counts where errors exceed requests.
    #[error("server_errors ({server_errors}) exceed requests ({requests})")]
    InconsistentCounts {
        /// Requests counted.
        requests: u64,
        /// 5xx responses counted.
        server_errors: u64,
    },
}

impl Event {
    /// Parses and validates an event from untrusted JSON. Amounts must be JSON strings.
    pub fn from_json(raw: &[u8]) -> Result<Event, EventError> {
        let raw: RawEvent = serde_json::from_slice(raw).map_err(EventError::Json)?;
        let event = raw.into_event()?;
        event.validate()?;
        Ok(event)
    }

    /// Checks identifiers, positive amounts and count consistency; [`Event::from_json`]
    /// calls it, callers that build events in code should too.
    pub fn validate(&self) -> Result<(), EventError> {
        check_id("event_id", self.event_id())?;
        match self {
            Event::Purchase(p)
            | Event::Transfer(p)
            | Event::Mint(p)
            | Event::Redeem(p)
            | Event::Reversal(p) => {
                check_id("user", &p.user)?;
                check_currency(&p.currency)?;
                if let Some(d) = &p.destination {
                    check_id("destination", d)?;
                }
                if p.amount.is_zero() {
                    return Err(EventError::Amount(AmountError::Zero));
                }
            }
            Event::AuthFailure(a) => check_id("principal", &a.principal)?,
            Event::TxPending(t) => {
                check_id("chain", &t.chain)?;
                check_id("tx_hash", &t.tx_hash)?;
                if let Some(u) = &t.user {
                    check_id("user", u)?;
                }
            }
            Event::TxFailed(t) => {
                check_id("chain", &t.chain)?;
                check_id("tx_hash", &t.tx_hash)?;
                if let Some(u) = &t.user {
                    check_id("user", u)?;
                }
            }
            Event::GasSample(g) => check_id("chain", &g.chain)?,
            Event::HttpErrors(h) => {
                check_id("service", &h.service)?;
                if h.server_errors > h.requests {
                    return Err(EventError::InconsistentCounts {
                        requests: h.requests,
                        server_errors: h.server_errors,
                    });
                }
            }
        }
        Ok(())
    }

    /// The event id.
    pub fn event_id(&self) -> &str {
        match self {
            Event::Purchase(p)
            | Event::Transfer(p)
            | Event::Mint(p)
            | Event::Redeem(p)
            | Event::Reversal(p) => &p.event_id,
            Event::AuthFailure(a) => &a.event_id,
            Event::TxPending(t) => &t.event_id,
            Event::TxFailed(t) => &t.event_id,
            Event::GasSample(g) => &g.event_id,
            Event::HttpErrors(h) => &h.event_id,
        }
    }

    /// The event time.
    pub fn ts(&self) -> DateTime<Utc> {
        match self {
            Event::Purchase(p)
            | Event::Transfer(p)
            | Event::Mint(p)
            | Event::Redeem(p)
            | Event::Reversal(p) => p.ts,
            Event::AuthFailure(a) => a.ts,
            Event::TxPending(t) => t.ts,
            Event::TxFailed(t) => t.ts,
            Event::GasSample(g) => g.ts,
            Event::HttpErrors(h) => h.ts,
        }
    }

    /// The wire name of the variant, e.g. `purchase`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::Purchase(_) => "purchase",
            Event::Transfer(_) => "transfer",
            Event::Mint(_) => "mint",
            Event::Redeem(_) => "redeem",
            Event::Reversal(_) => "reversal",
            Event::AuthFailure(_) => "auth_failure",
            Event::TxPending(_) => "tx_pending",
            Event::TxFailed(_) => "tx_failed",
            Event::GasSample(_) => "gas_sample",
            Event::HttpErrors(_) => "http_errors",
        }
    }

    /// The payment kind and body, for the payment variants.
    pub fn payment(&self) -> Option<(PaymentKind, &PaymentEvent)> {
        match self {
            Event::Purchase(p) => Some((PaymentKind::Purchase, p)),
            Event::Transfer(p) => Some((PaymentKind::Transfer, p)),
            Event::Mint(p) => Some((PaymentKind::Mint, p)),
            Event::Redeem(p) => Some((PaymentKind::Redeem, p)),
            Event::Reversal(p) => Some((PaymentKind::Reversal, p)),
            _ => None,
        }
    }

    /// The user the event belongs to, when there is one.
    pub fn user(&self) -> Option<&str> {
        match self {
            Event::Purchase(p)
            | Event::Transfer(p)
            | Event::Mint(p)
            | Event::Redeem(p)
            | Event::Reversal(p) => Some(&p.user),
            Event::TxPending(t) => t.user.as_deref(),
            Event::TxFailed(t) => t.user.as_deref(),
            Event::AuthFailure(_) | Event::GasSample(_) | Event::HttpErrors(_) => None,
        }
    }
}

fn check_id(field: &'static str, value: &str) -> Result<(), EventError> {
    if value.is_empty() || value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
        return Err(EventError::InvalidField { field });
    }
    Ok(())
}

fn check_currency(value: &str) -> Result<(), EventError> {
    let ok = (1..=16).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(EventError::InvalidField { field: "currency" })
    }
}

/// The JSON shape before the amount is parsed, so that a bad amount is a typed
/// [`EventError::Amount`] rather than a generic JSON error.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawEvent {
    Purchase(RawPayment),
    Transfer(RawPayment),
    Mint(RawPayment),
    Redeem(RawPayment),
    Reversal(RawPayment),
    AuthFailure(AuthFailureEvent),
    TxPending(TxPendingEvent),
    TxFailed(TxFailedEvent),
    GasSample(GasSampleEvent),
    HttpErrors(HttpErrorsEvent),
}

#[derive(Deserialize)]
struct RawPayment {
    event_id: String,
    user: String,
    amount: String,
    currency: String,
    #[serde(default)]
    destination: Option<String>,
    ts: DateTime<Utc>,
}

impl RawPayment {
    fn into_payment(self) -> Result<PaymentEvent, EventError> {
        Ok(PaymentEvent {
            amount: Amount::parse_positive(&self.amount).map_err(EventError::Amount)?,
            event_id: self.event_id,
            user: self.user,
            currency: self.currency,
            destination: self.destination,
            ts: self.ts,
        })
    }
}

impl RawEvent {
    fn into_event(self) -> Result<Event, EventError> {
        Ok(match self {
            RawEvent::Purchase(p) => Event::Purchase(p.into_payment()?),
            RawEvent::Transfer(p) => Event::Transfer(p.into_payment()?),
            RawEvent::Mint(p) => Event::Mint(p.into_payment()?),
            RawEvent::Redeem(p) => Event::Redeem(p.into_payment()?),
            RawEvent::Reversal(p) => Event::Reversal(p.into_payment()?),
            RawEvent::AuthFailure(a) => Event::AuthFailure(a),
            RawEvent::TxPending(t) => Event::TxPending(t),
            RawEvent::TxFailed(t) => Event::TxFailed(t),
            RawEvent::GasSample(g) => Event::GasSample(g),
            RawEvent::HttpErrors(h) => Event::HttpErrors(h),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purchase(amount: &str) -> String {
        format!(
            r#"{{"type":"purchase","event_id":"e1","user":"u1","amount":"{amount}","currency":"NGN","ts":"2026-01-02T10:00:00Z"}}"#
        )
    }

    #[test]
    fn parses_a_purchase() {
        let event = Event::from_json(purchase("100.5").as_bytes()).unwrap();
        let (kind, p) = event.payment().unwrap();
        assert_eq!(kind, PaymentKind::Purchase);
        assert_eq!(p.amount.to_string(), "100.5");
        let back = serde_json::to_string(&event).unwrap();
        assert_eq!(Event::from_json(back.as_bytes()).unwrap(), event);
    }

    #[test]
    fn numeric_json_amounts_are_refused() {
        let raw = purchase("1").replace(r#""amount":"1""#, r#""amount":1"#);
        assert!(matches!(
            Event::from_json(raw.as_bytes()),
            Err(EventError::Json(_))
        ));
    }

    #[test]
    fn zero_and_bad_amounts_are_typed() {
        for (amount, want) in [
            ("0", AmountError::Zero),
            ("-1", AmountError::Signed),
            ("1e3", AmountError::Exponent),
        ] {
            match Event::from_json(purchase(amount).as_bytes()) {
                Err(EventError::Amount(got)) => assert_eq!(got, want),
                other => panic!("{amount}: {other:?}"),
            }
        }
    }

    #[test]
    fn control_characters_in_ids_are_refused() {
        let raw = purchase("1").replace(r#""user":"u1""#, r#""user":"u\r\n1""#);
        assert!(matches!(
            Event::from_json(raw.as_bytes()),
            Err(EventError::InvalidField { field: "user" })
        ));
    }
}
