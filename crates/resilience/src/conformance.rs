//! Checks every implementation of this crate's traits must pass; run them from another
//! crate's tests against its own implementation (e.g. a Postgres-backed gate).
//!
//! Each check panics with a message naming the broken rule.

// Test support: failing loudly is the point.
#![allow(clippy::expect_used)]

use std::time::Duration;

use crate::{Breaker, BreakerState, Error, IntervalGate, Outcome};

/// An [`IntervalGate`] claims once per interval per upstream and reports the wait.
/// `upstream` must be a name no one else uses during the check.
pub async fn interval_gate(gate: &dyn IntervalGate, upstream: &str) {
    let interval = Duration::from_secs(30);
    let first = gate.try_claim(upstream, interval).await;
    assert!(first.is_ok(), "first claim must succeed: {first:?}");
    match gate.try_claim(upstream, interval).await {
        Err(Error::IntervalNotElapsed { wait, .. }) => {
            assert!(
                wait > Duration::ZERO && wait <= interval,
                "wait {wait:?} must be within (0, {interval:?}]"
            );
        }
        other => panic!("second claim within the interval must be refused: {other:?}"),
    }
    let other = format!("{upstream}:other");
    assert!(
        gate.try_claim(&other, interval).await.is_ok(),
        "upstreams must be gated independently"
    );
    let short = format!("{upstream}:short");
    let tiny = Duration::from_millis(50);
    assert!(gate.try_claim(&short, tiny).await.is_ok());
    tokio::time::sleep(tiny + Duration::from_millis(20)).await;
    assert!(
        gate.try_claim(&short, tiny).await.is_ok(),
        "a claim after the interval must succeed"
    );
}

/// A fresh, CLOSED [`Breaker`] obeys operator actions and records outcomes.
pub async fn breaker_operator_actions(breaker: &dyn Breaker) {
    assert_eq!(breaker.status().state, BreakerState::Closed);
    breaker
        .acquire()
        .await
        .expect("CLOSED admits")
        .record(Outcome::Success);

    breaker.force_open().await.expect("force_open");
    assert_eq!(breaker.status().state, BreakerState::ForcedOpen);
    assert!(
        matches!(breaker.acquire().await, Err(Error::CircuitOpen { .. })),
        "FORCED_OPEN must reject"
    );

    breaker.disable().await.expect("disable");
    assert_eq!(breaker.status().state, BreakerState::Disabled);
    for _ in 0..20 {
        breaker
            .acquire()
            .await
            .expect("DISABLED admits")
            .record(Outcome::Failure);
    }

    breaker.reset().await.expect("reset");
    let status = breaker.status();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.failures, 0, "reset must clear the window");
    assert!(!status.degraded);
}
