//! A1 and A2: exact threshold boundaries on an injected clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use haven_resilience::{
    BreakerConfig, BreakerRegistry, BreakerState, CallError, CircuitBreaker, Error, ManualClock,
    Outcome, SlidingWindow, SlowCallConfig,
};

fn rate_config() -> BreakerConfig {
    BreakerConfig {
        window: SlidingWindow::Count(100),
        minimum_calls: 100,
        failure_rate_threshold: Some(50.0),
        slow_calls: None,
        consecutive_failures: None,
        ..BreakerConfig::default()
    }
}

fn breaker(config: BreakerConfig) -> (CircuitBreaker, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let b = CircuitBreaker::with_clock("dep", config, clock.clone()).unwrap();
    (b, clock)
}

fn record(b: &CircuitBreaker, outcome: Outcome, n: usize) {
    for _ in 0..n {
        b.try_acquire().unwrap().record(outcome);
    }
}

#[test]
fn ninety_nine_failures_stay_closed_below_minimum_calls() {
    let (b, _) = breaker(rate_config());
    record(&b, Outcome::Failure, 99);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.status().failure_rate, None);
    record(&b, Outcome::Failure, 1);
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn fifty_failures_in_a_hundred_calls_open_and_forty_nine_do_not() {
    let (b, _) = breaker(rate_config());
    record(&b, Outcome::Success, 51);
    record(&b, Outcome::Failure, 49);
    let status = b.status();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.failure_rate, Some(49.0));

    let (b, _) = breaker(rate_config());
    record(&b, Outcome::Success, 50);
    record(&b, Outcome::Failure, 49);
    assert_eq!(b.state(), BreakerState::Closed);
    record(&b, Outcome::Failure, 1);
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn slow_call_rate_opens_at_threshold_exactly() {
    let config = BreakerConfig {
        failure_rate_threshold: None,
        slow_calls: Some(SlowCallConfig {
            duration: Duration::from_secs(1),
            rate_threshold: 50.0,
        }),
        ..rate_config()
    };
    let slow = |b: &CircuitBreaker, clock: &ManualClock, took: Duration| {
        let p = b.try_acquire().unwrap();
        clock.advance(took);
        p.record(Outcome::Success);
    };
    let (b, clock) = breaker(config.clone());
    record(&b, Outcome::Success, 51);
    for _ in 0..49 {
        slow(&b, &clock, Duration::from_secs(1));
    }
    let status = b.status();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.slow_calls, 49);
    assert_eq!(status.slow_call_rate, Some(49.0));

    let (b, clock) = breaker(config);
    record(&b, Outcome::Success, 49);
    // Just under the slow duration is not slow.
    slow(&b, &clock, Duration::from_millis(999));
    assert_eq!(b.status().slow_calls, 0);
    for _ in 0..49 {
        slow(&b, &clock, Duration::from_secs(1));
    }
    assert_eq!(b.state(), BreakerState::Closed);
    slow(&b, &clock, Duration::from_secs(1));
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn seed_config_opens_after_five_consecutive_failures() {
    let (b, _) = breaker(BreakerConfig::default());
    record(&b, Outcome::Failure, 4);
    record(&b, Outcome::Success, 1);
    record(&b, Outcome::Failure, 4);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.status().consecutive_failures, 4);
    record(&b, Outcome::Failure, 1);
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn ignored_outcomes_do_not_count() {
    let (b, _) = breaker(BreakerConfig::default());
    record(&b, Outcome::Failure, 4);
    record(&b, Outcome::Ignored, 10);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.status().calls, 4);
}

#[tokio::test]
async fn open_breaker_never_calls_the_operation() {
    let (b, clock) = breaker(BreakerConfig::default());
    let calls = AtomicU32::new(0);
    let failing = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>("down")
    };
    for _ in 0..5 {
        assert!(matches!(
            b.call(failing).await,
            Err(CallError::Operation("down"))
        ));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    for _ in 0..1000 {
        let r = b.call(failing).await;
        assert!(matches!(
            r,
            Err(CallError::Resilience(Error::CircuitOpen { .. }))
        ));
    }
    // Up to the last nanosecond of open_timeout it stays OPEN.
    clock.advance(Duration::from_secs(30) - Duration::from_nanos(1));
    assert!(b.call(failing).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    let err = b.try_acquire().unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_nanos(1)));
    assert_eq!(err.code(), haven_core::ErrorCode::CircuitOpen);
    clock.advance(Duration::from_nanos(1));
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

fn half_open(k: u32) -> (CircuitBreaker, Arc<ManualClock>) {
    let config = BreakerConfig {
        half_open_permits: k,
        success_threshold: k,
        consecutive_failures: Some(1),
        ..BreakerConfig::default()
    };
    let (b, clock) = breaker(config);
    record(&b, Outcome::Failure, 1);
    clock.advance(Duration::from_secs(30));
    assert_eq!(b.state(), BreakerState::HalfOpen);
    (b, clock)
}

#[test]
fn half_open_admits_exactly_k_probes_and_k_successes_close() {
    for k in [1, 2, 5] {
        let (b, _) = half_open(k);
        let probes: Vec<_> = (0..k).map(|_| b.try_acquire().unwrap()).collect();
        assert_eq!(b.status().probes_in_flight, k);
        assert!(matches!(b.try_acquire(), Err(Error::CircuitOpen { .. })));
        let mut probes = probes.into_iter();
        for _ in 0..k - 1 {
            probes.next().unwrap().record(Outcome::Success);
            assert_eq!(b.state(), BreakerState::HalfOpen);
        }
        probes.next().unwrap().record(Outcome::Success);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.try_acquire().is_ok());
    }
}

#[test]
fn one_probe_failure_reopens() {
    let (b, clock) = half_open(3);
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    p1.record(Outcome::Success);
    p2.record(Outcome::Failure);
    assert_eq!(b.state(), BreakerState::Open);
    assert!(b.try_acquire().is_err());
    clock.advance(Duration::from_secs(30));
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

#[test]
fn dropped_probe_frees_its_slot_and_late_outcomes_are_ignored() {
    let (b, _) = half_open(1);
    let p = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(p);
    let p = b.try_acquire().unwrap();
    p.record(Outcome::Success);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test]
async fn operators_force_open_disable_and_reset() {
    let (b, _) = breaker(BreakerConfig::default());
    let mut events = b.subscribe();
    b.force_open();
    assert!(b.try_acquire().is_err());
    b.disable();
    record(&b, Outcome::Failure, 50);
    assert_eq!(b.state(), BreakerState::Disabled);
    b.reset();
    assert_eq!(b.state(), BreakerState::Closed);
    let seen: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| (e.from, e.to))
        .collect();
    assert_eq!(
        seen,
        [
            (BreakerState::Closed, BreakerState::ForcedOpen),
            (BreakerState::ForcedOpen, BreakerState::Disabled),
            (BreakerState::Disabled, BreakerState::Closed),
        ]
    );
}

#[test]
fn status_serializes_for_health() {
    let (b, _) = breaker(BreakerConfig::default());
    record(&b, Outcome::Failure, 5);
    let json = serde_json::to_value(b.status()).unwrap();
    assert_eq!(json["state"], "OPEN");
    assert_eq!(json["name"], "dep");
    assert_eq!(json["degraded"], false);
    assert_eq!(json["last_transition"]["from"], "CLOSED");
    assert_eq!(json["open_remaining_ms"], 30_000);
}

#[tokio::test]
async fn registry_hands_out_one_breaker_per_name() {
    let registry = BreakerRegistry::new(BreakerConfig::default()).unwrap();
    let a = registry.get_or_create("chain").unwrap();
    let again = registry.get_or_create("chain").unwrap();
    assert!(Arc::ptr_eq(&a, &again));
    registry.get_or_create("coingecko").unwrap();
    a.force_open().await.unwrap();
    let statuses = registry.statuses();
    let names: Vec<_> = statuses.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["chain", "coingecko"]);
    assert_eq!(statuses[0].state, BreakerState::ForcedOpen);
    assert!(a.acquire().await.is_err());
}

#[test]
fn time_window_forgets_old_failures() {
    let config = BreakerConfig {
        window: SlidingWindow::Time(10),
        minimum_calls: 4,
        ..rate_config()
    };
    let (b, clock) = breaker(config);
    record(&b, Outcome::Failure, 1);
    record(&b, Outcome::Success, 2);
    clock.advance(Duration::from_secs(10));
    // The failure has left the window: one failure in four calls would be 25 %, not 50.
    record(&b, Outcome::Failure, 1);
    record(&b, Outcome::Success, 1);
    assert_eq!(b.status().calls, 2);
    record(&b, Outcome::Failure, 1);
    record(&b, Outcome::Success, 1);
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn invalid_configs_are_refused() {
    let bad = [
        BreakerConfig {
            half_open_permits: 0,
            ..BreakerConfig::default()
        },
        BreakerConfig {
            failure_rate_threshold: Some(0.0),
            ..BreakerConfig::default()
        },
        BreakerConfig {
            window: SlidingWindow::Count(0),
            ..BreakerConfig::default()
        },
    ];
    for config in bad {
        assert!(matches!(
            CircuitBreaker::new("x", config),
            Err(Error::InvalidConfig { .. })
        ));
    }
}

#[cfg(feature = "test-utils")]
#[tokio::test]
async fn local_breaker_passes_conformance() {
    let b = CircuitBreaker::new("conf", BreakerConfig::default()).unwrap();
    haven_resilience::conformance::breaker_operator_actions(&b).await;
}
