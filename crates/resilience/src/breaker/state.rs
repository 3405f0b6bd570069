use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Breaker states; FORCED_OPEN and DISABLED are set only by operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakerState {
    /// Calls pass; outcomes are recorded.
    Closed,
    /// Calls are rejected until the open timeout elapses.
    Open,
    /// A limited number of probes pass; their outcomes decide.
    HalfOpen,
    /// Calls are rejected until an operator resets the breaker.
    ForcedOpen,
    /// Calls pass and nothing is recorded.
    Disabled,
}

impl BreakerState {
    /// The SCREAMING_SNAKE name used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "CLOSED",
            BreakerState::Open => "OPEN",
            BreakerState::HalfOpen => "HALF_OPEN",
            BreakerState::ForcedOpen => "FORCED_OPEN",
            BreakerState::Disabled => "DISABLED",
        }
    }

    /// Whether the breaker can move from `self` to `to` on its own (recorded outcomes and
    /// elapsed time), without an operator.
    pub const fn is_automatic_transition(self, to: BreakerState) -> bool {
        matches!(
            (self, to),
            (BreakerState::Closed, BreakerState::Open)
                | (BreakerState::Open, BreakerState::HalfOpen)
                | (BreakerState::HalfOpen, BreakerState::Closed)
                | (BreakerState::HalfOpen, BreakerState::Open)
        )
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the caller classifies one finished call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The dependency worked.
    Success,
    /// The dependency failed (counts towards opening the breaker).
    Failure,
    /// Not the dependency's fault (e.g. a 4xx caused by the request); not recorded.
    Ignored,
}

/// A state change, published to [`subscribe`](super::Breaker::subscribe)rs for metrics and alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    /// Breaker name.
    pub breaker: String,
    /// Previous state.
    pub from: BreakerState,
    /// New state.
    pub to: BreakerState,
    /// Wall-clock time the change was made or observed.
    pub at: DateTime<Utc>,
}

/// A serializable snapshot of a breaker for `/health` and admin endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerStatus {
    /// Breaker name.
    pub name: String,
    /// Current state.
    pub state: BreakerState,
    /// True when a shared breaker lost Redis and decides with its local fallback.
    pub degraded: bool,
    /// True while the state lives in Redis and every replica sees it; false for an
    /// in-process breaker and for a shared one that lost Redis (`degraded`).
    #[serde(default)]
    pub shared: bool,
    /// Calls in the current window.
    pub calls: u32,
    /// Failed calls in the current window.
    pub failures: u32,
    /// Slow calls in the current window.
    pub slow_calls: u32,
    /// Failure percentage, once `minimum_calls` were recorded.
    pub failure_rate: Option<f64>,
    /// Slow-call percentage, once `minimum_calls` were recorded.
    pub slow_call_rate: Option<f64>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// HALF_OPEN probes running now.
    pub probes_in_flight: u32,
    /// HALF_OPEN probe successes so far.
    pub probe_successes: u32,
    /// Time left in OPEN, in milliseconds.
    pub open_remaining_ms: Option<u64>,
    /// The last state change.
    pub last_transition: Option<StateChange>,
}

impl BreakerStatus {
    /// Time left in OPEN.
    pub fn open_remaining(&self) -> Option<Duration> {
        self.open_remaining_ms.map(Duration::from_millis)
    }
}
