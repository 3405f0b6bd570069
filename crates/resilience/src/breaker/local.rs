use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::broadcast;

use super::core::{Admission, Core, Transition};
use super::{
    Breaker, BreakerConfig, BreakerPermit, BreakerState, BreakerStatus, Outcome, StateChange,
};
use crate::clock::{Clock, SystemClock};
use crate::{CallError, Error, Result};

/// Capacity of the state-change channel; slow subscribers miss old events, never block calls.
pub(crate) const EVENT_CAPACITY: usize = 64;

/// An in-process circuit breaker.
///
/// **Invariant:** while the breaker is OPEN or FORCED_OPEN the protected operation is never
/// called, and in HALF_OPEN at most `half_open_permits` probes run at once.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    core: Mutex<Core>,
    clock: Arc<dyn Clock>,
    events: broadcast::Sender<StateChange>,
    last_transition: Mutex<Option<StateChange>>,
}

impl Inner {
    fn core(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock cannot leave Core half-updated in a way that
        // matters more than refusing all calls would.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, transition: Option<Transition>) {
        if let Some(t) = transition {
            let change = StateChange {
                breaker: self.name.clone(),
                from: t.from,
                to: t.to,
                at: Utc::now(),
            };
            tracing::info!(breaker = %self.name, from = %t.from, to = %t.to, "circuit breaker state change");
            *self
                .last_transition
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(change.clone());
            // No subscriber is not an error.
            let _ = self.events.send(change);
        }
    }
}

impl CircuitBreaker {
    /// A breaker on the system clock.
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Result<Self> {
        Self::with_clock(name, config, Arc::new(SystemClock))
    }

    /// A breaker on an injected clock (tests use [`ManualClock`](crate::ManualClock)).
    pub fn with_clock(
        name: impl Into<String>,
        config: BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        config.validate()?;
        let now = clock.now();
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.into(),
                core: Mutex::new(Core::new(config, now)),
                clock,
                events: broadcast::channel(EVENT_CAPACITY).0,
                last_transition: Mutex::new(None),
            }),
        })
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The configuration.
    pub fn config(&self) -> BreakerConfig {
        self.inner.core().config().clone()
    }

    /// The current state (moving OPEN to HALF_OPEN if the open timeout elapsed).
    pub fn state(&self) -> BreakerState {
        let now = self.inner.clock.now();
        let (state, t) = {
            let mut core = self.inner.core();
            let t = core.poll(now);
            (core.state(), t)
        };
        self.inner.publish(t);
        state
    }

    /// Admits one call or rejects it with [`Error::CircuitOpen`]. The returned permit must
    /// be completed with [`Permit::record`]; dropping it releases a probe slot unrecorded.
    pub fn try_acquire(&self) -> Result<Permit> {
        let now = self.inner.clock.now();
        let (admitted, t) = self.inner.core().try_acquire(now);
        self.inner.publish(t);
        match admitted {
            Ok(admission) => Ok(Permit {
                breaker: Some(Arc::clone(&self.inner)),
                admission,
                started: now,
            }),
            Err(retry_after) => Err(Error::CircuitOpen {
                name: self.inner.name.clone(),
                retry_after,
            }),
        }
    }

    /// Runs `operation` if admitted; `Err` counts as a failure, `Ok` as a success.
    pub async fn call<T, E, F, Fut>(&self, operation: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_classified(super::classify_by_result, operation)
            .await
    }

    /// Runs `operation` if admitted and records what `classify` says about its result
    /// (e.g. a 4xx from a dependency is [`Outcome::Ignored`], not a failure).
    pub async fn call_classified<T, E, F, Fut, C>(
        &self,
        classify: C,
        operation: F,
    ) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: FnOnce(&Result<T, E>) -> Outcome,
    {
        let permit = self.try_acquire()?;
        let result = operation().await;
        permit.record(classify(&result));
        result.map_err(CallError::Operation)
    }

    /// A serializable snapshot.
    pub fn status(&self) -> BreakerStatus {
        self.status_with(false)
    }

    pub(crate) fn status_with(&self, degraded: bool) -> BreakerStatus {
        let now = self.inner.clock.now();
        let (status, t) = {
            let mut core = self.inner.core();
            let t = core.poll(now);
            let totals = core.totals(now);
            let (failure_rate, slow_call_rate) = core.rates(now);
            let status = BreakerStatus {
                name: self.inner.name.clone(),
                state: core.state(),
                degraded,
                shared: false,
                calls: totals.calls,
                failures: totals.failures,
                slow_calls: totals.slow,
                failure_rate,
                slow_call_rate,
                consecutive_failures: core.consecutive_failures(),
                probes_in_flight: core.probes_in_flight(),
                probe_successes: core.probe_successes(),
                open_remaining_ms: core
                    .open_remaining(now)
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                last_transition: None,
            };
            (status, t)
        };
        self.inner.publish(t);
        BreakerStatus {
            last_transition: self
                .inner
                .last_transition
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            ..status
        }
    }

    /// State changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StateChange> {
        self.inner.events.subscribe()
    }

    /// Operator action: reject every call until [`CircuitBreaker::reset`].
    pub fn force_open(&self) {
        self.force(BreakerState::ForcedOpen);
    }

    /// Operator action: admit every call and record nothing until [`CircuitBreaker::reset`].
    pub fn disable(&self) {
        self.force(BreakerState::Disabled);
    }

    /// Operator action: back to CLOSED with an empty window.
    pub fn reset(&self) {
        self.force(BreakerState::Closed);
    }

    /// Moves to OPEN as if it had tripped (used by a shared breaker's local fallback).
    pub(crate) fn force(&self, to: BreakerState) {
        let now = self.inner.clock.now();
        let t = self.inner.core().force(to, now);
        self.inner.publish(t);
    }
}

/// Admission to call the protected operation once.
#[derive(Debug)]
pub struct Permit {
    breaker: Option<Arc<Inner>>,
    admission: Admission,
    started: Instant,
}

impl Permit {
    /// Records the call's outcome; the elapsed time since admission decides slowness.
    pub fn record(mut self, outcome: Outcome) {
        if let Some(inner) = self.breaker.take() {
            let now = inner.clock.now();
            let elapsed = now.saturating_duration_since(self.started);
            let t = inner.core().record(now, self.admission, outcome, elapsed);
            inner.publish(t);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(inner) = self.breaker.take() {
            inner.core().abandon(self.admission);
        }
    }
}

#[async_trait]
impl Breaker for CircuitBreaker {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn acquire(&self) -> Result<BreakerPermit> {
        self.try_acquire().map(BreakerPermit::from)
    }

    fn status(&self) -> BreakerStatus {
        CircuitBreaker::status(self)
    }

    fn subscribe(&self) -> broadcast::Receiver<StateChange> {
        CircuitBreaker::subscribe(self)
    }

    async fn force_open(&self) -> Result<()> {
        CircuitBreaker::force_open(self);
        Ok(())
    }

    async fn disable(&self) -> Result<()> {
        CircuitBreaker::disable(self);
        Ok(())
    }

    async fn reset(&self) -> Result<()> {
        CircuitBreaker::reset(self);
        Ok(())
    }
}
