//! The circuit breakers' Prometheus series, recorded through the [`metrics`] facade into
//! whatever recorder the process installed (none: nothing is recorded).
//!
//! | name | type | labels | recorded by |
//! |---|---|---|---|
//! | `haven_breaker_state` | gauge | `breaker` | [`record_states`]: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled |
//! | `haven_breaker_shared` | gauge | `breaker` | the same: 1 while the state is shared through Redis, 0 while local |
//! | `haven_breaker_transitions_total` | counter | `breaker`, `from`, `to` | [`count_transitions`]: each state change the process saw |

use tokio::sync::broadcast::error::RecvError;

use crate::{BreakerRegistry, BreakerState};

/// Circuit breaker state by `breaker` (0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled).
pub const STATE: &str = "haven_breaker_state";
/// 1 while a breaker's state is shared through Redis, 0 while it is local, by `breaker`.
pub const SHARED: &str = "haven_breaker_shared";
/// Circuit breaker state changes the process saw, by `breaker`, `from` and `to`.
pub const TRANSITIONS: &str = "haven_breaker_transitions_total";

/// Describes the series to the installed recorder.
pub fn describe() {
    metrics::describe_gauge!(
        STATE,
        "Circuit breaker state: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled."
    );
    metrics::describe_gauge!(
        SHARED,
        "1 while a breaker's state is shared through Redis, 0 while it is local to this process."
    );
    metrics::describe_counter!(
        TRANSITIONS,
        "Circuit breaker state changes this process saw, by breaker, from and to."
    );
}

/// The gauge value of a breaker state.
pub fn state_value(state: BreakerState) -> f64 {
    match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
        BreakerState::ForcedOpen => 3.0,
        BreakerState::Disabled => 4.0,
    }
}

/// Sets the state and shared gauges of every breaker in `registry` (call it at each scrape).
pub fn record_states(registry: &BreakerRegistry) {
    for status in registry.statuses() {
        metrics::gauge!(STATE, "breaker" => status.name.clone()).set(state_value(status.state));
        metrics::gauge!(SHARED, "breaker" => status.name).set(if status.shared {
            1.0
        } else {
            0.0
        });
    }
}

/// Counts every state change of the breakers now in `registry` from now on (one task per
/// breaker, ending with it; must be called inside a Tokio runtime). A shared breaker's
/// changes made by another replica count too: each process counts the changes it sees.
pub fn count_transitions(registry: &BreakerRegistry) {
    for breaker in registry.breakers() {
        let mut changes = breaker.subscribe();
        tokio::spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(change) => metrics::counter!(
                        TRANSITIONS,
                        "breaker" => change.breaker,
                        "from" => change.from.as_str(),
                        "to" => change.to.as_str()
                    )
                    .increment(1),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }
}
