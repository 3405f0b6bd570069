//! The breaker state machine, free of locks and clocks so it can be tested exhaustively.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::config::{BreakerConfig, SlidingWindow};
use super::state::{BreakerState, Outcome};

const FAILED: u8 = 1;
const SLOW: u8 = 2;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Totals {
    pub calls: u32,
    pub failures: u32,
    pub slow: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    second: u64,
    totals: Totals,
}

#[derive(Debug)]
enum Window {
    Count {
        size: usize,
        ring: VecDeque<u8>,
        totals: Totals,
    },
    Time {
        origin: Instant,
        buckets: Vec<Bucket>,
    },
}

impl Window {
    fn new(kind: SlidingWindow, origin: Instant) -> Self {
        match kind {
            SlidingWindow::Count(n) => Window::Count {
                size: n as usize,
                ring: VecDeque::with_capacity(n as usize),
                totals: Totals::default(),
            },
            SlidingWindow::Time(n) => Window::Time {
                origin,
                buckets: vec![Bucket::default(); n as usize],
            },
        }
    }

    fn record(&mut self, now: Instant, flags: u8) {
        match self {
            Window::Count { size, ring, totals } => {
                if ring.len() == *size
                    && let Some(old) = ring.pop_front()
                {
                    totals.calls -= 1;
                    totals.failures -= u32::from(old & FAILED != 0);
                    totals.slow -= u32::from(old & SLOW != 0);
                }
                ring.push_back(flags);
                totals.calls += 1;
                totals.failures += u32::from(flags & FAILED != 0);
                totals.slow += u32::from(flags & SLOW != 0);
            }
            Window::Time { origin, buckets } => {
                // Bucket 0 of second s is reused once s + len has passed, so stale counts are
                // reset on first touch instead of by a sweeper.
                let second = now.saturating_duration_since(*origin).as_secs() + 1;
                let len = buckets.len() as u64;
                let bucket = &mut buckets[(second % len) as usize];
                if bucket.second != second {
                    *bucket = Bucket {
                        second,
                        totals: Totals::default(),
                    };
                }
                bucket.totals.calls += 1;
                bucket.totals.failures += u32::from(flags & FAILED != 0);
                bucket.totals.slow += u32::from(flags & SLOW != 0);
            }
        }
    }

    fn totals(&self, now: Instant) -> Totals {
        match self {
            Window::Count { totals, .. } => *totals,
            Window::Time { origin, buckets } => {
                let second = now.saturating_duration_since(*origin).as_secs() + 1;
                let len = buckets.len() as u64;
                let mut sum = Totals::default();
                for b in buckets {
                    if b.second != 0 && b.second + len > second {
                        sum.calls += b.totals.calls;
                        sum.failures += b.totals.failures;
                        sum.slow += b.totals.slow;
                    }
                }
                sum
            }
        }
    }

    fn clear(&mut self) {
        match self {
            Window::Count { ring, totals, .. } => {
                ring.clear();
                *totals = Totals::default();
            }
            Window::Time { buckets, .. } => buckets.fill(Bucket::default()),
        }
    }
}

/// What an admitted call holds until its outcome is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admission {
    pub generation: u64,
    pub kind: AdmissionKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdmissionKind {
    Closed,
    Probe,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
}

#[derive(Debug)]
pub(crate) struct Core {
    config: BreakerConfig,
    state: BreakerState,
    /// Bumped on every transition; outcomes of calls admitted under an older generation
    /// are dropped so they cannot count twice or leak into a new state.
    generation: u64,
    opened_at: Option<Instant>,
    window: Window,
    consecutive_failures: u32,
    probes_in_flight: u32,
    probe_successes: u32,
}

impl Core {
    pub fn new(config: BreakerConfig, now: Instant) -> Self {
        Self {
            window: Window::new(config.window, now),
            config,
            state: BreakerState::Closed,
            generation: 0,
            opened_at: None,
            consecutive_failures: 0,
            probes_in_flight: 0,
            probe_successes: 0,
        }
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    pub fn probes_in_flight(&self) -> u32 {
        self.probes_in_flight
    }

    pub fn probe_successes(&self) -> u32 {
        self.probe_successes
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    pub fn totals(&self, now: Instant) -> Totals {
        self.window.totals(now)
    }

    pub fn open_remaining(&self, now: Instant) -> Option<Duration> {
        match (self.state, self.opened_at) {
            (BreakerState::Open, Some(at)) => {
                Some((at + self.config.open_timeout).saturating_duration_since(now))
            }
            _ => None,
        }
    }

    /// Rates in percent, once `minimum_calls` were seen.
    pub fn rates(&self, now: Instant) -> (Option<f64>, Option<f64>) {
        let t = self.window.totals(now);
        if t.calls == 0 || t.calls < self.config.effective_minimum_calls() {
            return (None, None);
        }
        let calls = f64::from(t.calls);
        (
            Some(f64::from(t.failures) * 100.0 / calls),
            Some(f64::from(t.slow) * 100.0 / calls),
        )
    }

    fn transition(&mut self, to: BreakerState, now: Instant) -> Transition {
        let from = self.state;
        self.state = to;
        self.generation += 1;
        self.window.clear();
        self.consecutive_failures = 0;
        self.probes_in_flight = 0;
        self.probe_successes = 0;
        self.opened_at = (to == BreakerState::Open).then_some(now);
        Transition { from, to }
    }

    /// Moves OPEN to HALF_OPEN once the open timeout has elapsed.
    pub fn poll(&mut self, now: Instant) -> Option<Transition> {
        match (self.state, self.opened_at) {
            (BreakerState::Open, Some(at)) if now >= at + self.config.open_timeout => {
                Some(self.transition(BreakerState::HalfOpen, now))
            }
            _ => None,
        }
    }

    /// Admits or rejects one call. `Err` carries the time until OPEN ends, if known.
    pub fn try_acquire(
        &mut self,
        now: Instant,
    ) -> (Result<Admission, Option<Duration>>, Option<Transition>) {
        let transition = self.poll(now);
        let generation = self.generation;
        let admitted = match self.state {
            BreakerState::Closed => Ok(AdmissionKind::Closed),
            BreakerState::Disabled => Ok(AdmissionKind::Disabled),
            BreakerState::ForcedOpen => Err(None),
            BreakerState::Open => Err(self.open_remaining(now)),
            BreakerState::HalfOpen => {
                if self.probes_in_flight < self.config.half_open_permits {
                    self.probes_in_flight += 1;
                    Ok(AdmissionKind::Probe)
                } else {
                    Err(None)
                }
            }
        };
        (
            admitted.map(|kind| Admission { generation, kind }),
            transition,
        )
    }

    /// Records the outcome of an admitted call that took `elapsed`.
    pub fn record(
        &mut self,
        now: Instant,
        admission: Admission,
        outcome: Outcome,
        elapsed: Duration,
    ) -> Option<Transition> {
        if admission.generation != self.generation {
            return None;
        }
        let slow = self
            .config
            .slow_calls
            .is_some_and(|s| elapsed >= s.duration);
        match (admission.kind, self.state) {
            (AdmissionKind::Closed, BreakerState::Closed) => {
                let failed = match outcome {
                    Outcome::Ignored => return None,
                    Outcome::Failure => true,
                    Outcome::Success => false,
                };
                let flags = (if failed { FAILED } else { 0 }) | (if slow { SLOW } else { 0 });
                self.window.record(now, flags);
                self.consecutive_failures = if failed {
                    self.consecutive_failures + 1
                } else {
                    0
                };
                self.should_trip(now)
                    .then(|| self.transition(BreakerState::Open, now))
            }
            (AdmissionKind::Probe, BreakerState::HalfOpen) => {
                self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
                match outcome {
                    Outcome::Ignored => None,
                    Outcome::Failure => Some(self.transition(BreakerState::Open, now)),
                    // A slow probe is a failed probe: the dependency has not recovered.
                    Outcome::Success if slow => Some(self.transition(BreakerState::Open, now)),
                    Outcome::Success => {
                        self.probe_successes += 1;
                        (self.probe_successes >= self.config.success_threshold)
                            .then(|| self.transition(BreakerState::Closed, now))
                    }
                }
            }
            _ => None,
        }
    }

    /// Releases an admitted call whose outcome will never be known (e.g. cancelled).
    pub fn abandon(&mut self, admission: Admission) {
        if admission.generation == self.generation
            && admission.kind == AdmissionKind::Probe
            && self.state == BreakerState::HalfOpen
        {
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
        }
    }

    fn should_trip(&self, now: Instant) -> bool {
        if self
            .config
            .consecutive_failures
            .is_some_and(|n| self.consecutive_failures >= n)
        {
            return true;
        }
        let (failure_rate, slow_rate) = self.rates(now);
        let failure_trip = matches!(
            (failure_rate, self.config.failure_rate_threshold),
            (Some(rate), Some(threshold)) if rate >= threshold
        );
        let slow_trip = matches!(
            (slow_rate, self.config.slow_calls),
            (Some(rate), Some(slow)) if rate >= slow.rate_threshold
        );
        failure_trip || slow_trip
    }

    /// Operator action: move to `to` (CLOSED resets, FORCED_OPEN, DISABLED, or OPEN).
    pub fn force(&mut self, to: BreakerState, now: Instant) -> Option<Transition> {
        if self.state == to && to != BreakerState::Closed {
            return None;
        }
        let t = self.transition(to, now);
        (t.from != t.to).then_some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            window: SlidingWindow::Count(4),
            minimum_calls: 4,
            failure_rate_threshold: Some(50.0),
            slow_calls: None,
            consecutive_failures: None,
            open_timeout: Duration::from_secs(1),
            half_open_permits: 1,
            success_threshold: 1,
        }
    }

    #[test]
    fn count_window_forgets_oldest() {
        let now = Instant::now();
        let mut core = Core::new(cfg(), now);
        for outcome in [Outcome::Failure, Outcome::Success, Outcome::Success] {
            let (a, _) = core.try_acquire(now);
            assert!(
                core.record(now, a.unwrap(), outcome, Duration::ZERO)
                    .is_none()
            );
        }
        // Window: F S S S -> 25 %; then the F drops out.
        let (a, _) = core.try_acquire(now);
        assert!(
            core.record(now, a.unwrap(), Outcome::Success, Duration::ZERO)
                .is_none()
        );
        assert_eq!(core.totals(now).failures, 1);
        let (a, _) = core.try_acquire(now);
        core.record(now, a.unwrap(), Outcome::Success, Duration::ZERO);
        assert_eq!(core.totals(now).failures, 0);
        assert_eq!(core.totals(now).calls, 4);
    }

    #[test]
    fn time_window_expires_old_seconds() {
        let now = Instant::now();
        let mut c = cfg();
        c.window = SlidingWindow::Time(2);
        c.minimum_calls = 100;
        let mut core = Core::new(c, now);
        let (a, _) = core.try_acquire(now);
        core.record(now, a.unwrap(), Outcome::Failure, Duration::ZERO);
        assert_eq!(core.totals(now + Duration::from_millis(1999)).calls, 1);
        assert_eq!(core.totals(now + Duration::from_secs(2)).calls, 0);
    }

    #[test]
    fn stale_generation_is_dropped() {
        let now = Instant::now();
        let mut core = Core::new(cfg(), now);
        let (old, _) = core.try_acquire(now);
        core.force(BreakerState::Closed, now);
        core.record(now, old.unwrap(), Outcome::Failure, Duration::ZERO);
        assert_eq!(core.totals(now).calls, 0);
    }
}
