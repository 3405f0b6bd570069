//! A7: over random outcome sequences only legal transitions happen, and the breaker's
//! guarantees hold at every step.

use std::sync::Arc;
use std::time::Duration;

use haven_resilience::{
    BreakerConfig, BreakerState, CircuitBreaker, ManualClock, Outcome, Permit, SlidingWindow,
    SlowCallConfig,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    /// Acquire, take `millis`, record the outcome.
    Call(Outcome, u64),
    /// Acquire and hold the permit.
    Hold,
    /// Complete the oldest held permit.
    Complete(Outcome),
    /// Drop the oldest held permit unrecorded.
    Abandon,
    /// Let time pass.
    Wait(u64),
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => Just(Outcome::Failure),
        3 => Just(Outcome::Success),
        1 => Just(Outcome::Ignored),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (outcome(), 0u64..300).prop_map(|(o, ms)| Step::Call(o, ms)),
        2 => Just(Step::Hold),
        2 => outcome().prop_map(Step::Complete),
        1 => Just(Step::Abandon),
        2 => (0u64..3_000).prop_map(Step::Wait),
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    (
        prop_oneof![
            (1u32..20).prop_map(SlidingWindow::Count),
            (1u32..5).prop_map(SlidingWindow::Time)
        ],
        1u32..10,
        prop::option::of(10.0f64..=100.0),
        prop::option::of((50u64..250, 10.0f64..=100.0)),
        prop::option::of(1u32..6),
        500u64..2_000,
        1u32..4,
        1u32..4,
    )
        .prop_map(
            |(window, minimum_calls, rate, slow, consecutive, open_ms, permits, successes)| {
                BreakerConfig {
                    window,
                    minimum_calls,
                    failure_rate_threshold: rate,
                    slow_calls: slow.map(|(ms, t)| SlowCallConfig {
                        duration: Duration::from_millis(ms),
                        rate_threshold: t,
                    }),
                    consecutive_failures: consecutive,
                    open_timeout: Duration::from_millis(open_ms),
                    half_open_permits: permits,
                    success_threshold: successes,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn only_legal_transitions(config in config(), steps in prop::collection::vec(step(), 1..200)) {
        let clock = Arc::new(ManualClock::new());
        let breaker = CircuitBreaker::with_clock("p", config.clone(), clock.clone()).unwrap();
        let mut events = breaker.subscribe();
        let mut held: Vec<Permit> = Vec::new();
        let mut state = BreakerState::Closed;
        let mut opened_at = None;
        for step in steps {
            let state_before = breaker.state();
            match step {
                Step::Call(o, ms) => {
                    let admitted = breaker.try_acquire();
                    if matches!(state_before, BreakerState::Open) {
                        prop_assert!(admitted.is_err(), "OPEN admitted a call");
                    }
                    if let Ok(p) = admitted {
                        clock.advance(Duration::from_millis(ms));
                        p.record(o);
                    }
                }
                Step::Hold => {
                    if let Ok(p) = breaker.try_acquire() {
                        held.push(p);
                    }
                }
                Step::Complete(o) => {
                    if !held.is_empty() {
                        held.remove(0).record(o);
                    }
                }
                Step::Abandon => {
                    if !held.is_empty() {
                        drop(held.remove(0));
                    }
                }
                Step::Wait(ms) => clock.advance(Duration::from_millis(ms)),
            }
            let status = breaker.status();
            while let Ok(change) = events.try_recv() {
                prop_assert_eq!(change.from, state, "events must chain");
                prop_assert!(
                    change.from.is_automatic_transition(change.to),
                    "illegal transition {} -> {}", change.from, change.to
                );
                if change.to == BreakerState::Open {
                    opened_at = Some(clock.elapsed());
                }
                if change.from == BreakerState::Open {
                    let at = opened_at.unwrap();
                    prop_assert!(clock.elapsed() - at >= config.open_timeout, "left OPEN early");
                }
                state = change.to;
            }
            prop_assert_eq!(status.state, state);
            prop_assert!(status.probes_in_flight <= config.half_open_permits);
            if state == BreakerState::HalfOpen {
                prop_assert!(status.probe_successes < config.success_threshold);
            }
        }
    }
}
