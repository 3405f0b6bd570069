//! What a rule raises.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// How urgent an alert is. Stored lower case (`low`, `medium`, `high`, `critical`); TOML and
/// JSON also accept upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    #[serde(alias = "LOW")]
    Low,
    /// Review soon.
    #[serde(alias = "MEDIUM")]
    Medium,
    /// Review now.
    #[serde(alias = "HIGH")]
    High,
    /// Act now.
    #[serde(alias = "CRITICAL")]
    Critical,
}

impl Severity {
    /// The stored name, e.g. `high`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a stored name (either case).
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(raw))
    }
}

/// One detection: which rule fired for which subject because of which event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique id (UUID v7, so ids sort by creation).
    pub id: Uuid,
    /// The rule that fired.
    pub rule_id: String,
    /// What was detected, e.g. `velocity`, `amount_tier`, `gas_spike`, `gas_data_quality`;
    /// the `event_type` column of `transaction_monitoring`.
    pub event_type: String,
    /// How urgent it is.
    pub severity: Severity,
    /// What the cooldown is keyed on: a user, `principal:…`, `ip:…`, a chain, a transaction.
    pub subject: String,
    /// The user concerned, when there is one.
    pub user: Option<String>,
    /// One line for humans. Not yet redacted: sinks redact before sending.
    pub description: String,
    /// Structured context (counts, thresholds, amounts).
    pub metadata: Value,
    /// The event that triggered it.
    pub event_id: String,
    /// The event time of that event.
    pub event_ts: DateTime<Utc>,
    /// When the alert was raised (wall clock).
    pub created_at: DateTime<Utc>,
}
