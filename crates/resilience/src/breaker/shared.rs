//! A circuit breaker whose state lives in Redis and is shared by every replica.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use deadpool_redis::Pool;
use redis::Script;
use tokio::sync::{Notify, broadcast};

use super::local::EVENT_CAPACITY;
use super::shared_lua;
use super::{
    Breaker, BreakerConfig, BreakerPermit, BreakerState, BreakerStatus, CircuitBreaker, Outcome,
    SlidingWindow, StateChange,
};
use crate::{Error, Result};

/// Settings of the Redis side of a [`SharedBreaker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedBreakerConfig {
    /// Prefix of the three Redis keys the breaker uses.
    pub key_prefix: String,
    /// How often the local copy of the state is refreshed (and outcomes flushed); at most 250 ms.
    pub refresh_interval: Duration,
    /// Flush outcomes as soon as this many are pending.
    pub max_batch: usize,
    /// Limit for one Redis round trip; beyond it Redis counts as unreachable.
    pub redis_timeout: Duration,
    /// A HALF_OPEN probe lease expires after this long, freeing the slot of a crashed replica.
    pub probe_lease_ttl: Duration,
}

impl Default for SharedBreakerConfig {
    fn default() -> Self {
        Self {
            key_prefix: "haven:breaker:".to_owned(),
            refresh_interval: Duration::from_millis(200),
            max_batch: 64,
            redis_timeout: Duration::from_millis(250),
            probe_lease_ttl: Duration::from_secs(10),
        }
    }
}

impl SharedBreakerConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason| Err(Error::InvalidConfig { field, reason });
        if self.refresh_interval.is_zero() || self.refresh_interval > Duration::from_millis(250) {
            return invalid("refresh_interval", "must be in (0, 250 ms]");
        }
        if self.max_batch == 0 {
            return invalid("max_batch", "must be at least 1");
        }
        if self.redis_timeout.is_zero() {
            return invalid("redis_timeout", "must be positive");
        }
        if self.probe_lease_ttl < Duration::from_millis(1) {
            return invalid("probe_lease_ttl", "must be at least 1 ms");
        }
        Ok(())
    }
}

struct Scripts {
    record: Script,
    acquire: Script,
    probe: Script,
    force: Script,
}

impl Scripts {
    fn new() -> Self {
        let with = |body: &str| Script::new(&format!("{}{}", shared_lua::PRELUDE, body));
        Self {
            record: with(shared_lua::RECORD),
            acquire: with(shared_lua::ACQUIRE),
            probe: with(shared_lua::PROBE),
            force: with(shared_lua::FORCE),
        }
    }
}

type SnapshotReply = (
    String,
    u64,
    i64,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    i64,
    String,
    u8,
);

#[derive(Debug, Clone)]
struct Snapshot {
    state: BreakerState,
    generation: u64,
    open_remaining: Option<Duration>,
    calls: u32,
    failures: u32,
    slow: u32,
    consecutive_failures: u32,
    probes_in_flight: u32,
    probe_successes: u32,
    last_change: Option<(Duration, BreakerState)>,
    granted: u8,
}

fn parse_state(s: &str) -> Option<BreakerState> {
    Some(match s {
        "CLOSED" => BreakerState::Closed,
        "OPEN" => BreakerState::Open,
        "HALF_OPEN" => BreakerState::HalfOpen,
        "FORCED_OPEN" => BreakerState::ForcedOpen,
        "DISABLED" => BreakerState::Disabled,
        _ => return None,
    })
}

impl Snapshot {
    fn parse(reply: SnapshotReply, script: &'static str) -> Result<Self> {
        let (state, generation, remaining, calls, failures, slow, consec, in_flight, succ) = (
            reply.0, reply.1, reply.2, reply.3, reply.4, reply.5, reply.6, reply.7, reply.8,
        );
        let (ago, from, granted) = (reply.9, reply.10, reply.11);
        let state = parse_state(&state).ok_or(Error::UnexpectedReply { script })?;
        let last_change = match (u64::try_from(ago), parse_state(&from)) {
            (Ok(ago), Some(from)) => Some((Duration::from_millis(ago), from)),
            _ => None,
        };
        Ok(Self {
            state,
            generation,
            open_remaining: u64::try_from(remaining).ok().map(Duration::from_millis),
            calls,
            failures,
            slow,
            consecutive_failures: consec,
            probes_in_flight: in_flight,
            probe_successes: succ,
            last_change,
            granted,
        })
    }
}

#[derive(Debug)]
struct Cached {
    snapshot: Snapshot,
    open_until: Option<Instant>,
    degraded: bool,
}

#[derive(Debug, Default)]
struct Pending {
    generation: u64,
    outcomes: String,
}

/// A circuit breaker shared by every replica through Redis.
///
/// State and counters live in Redis and change only inside Lua scripts (one round trip
/// each). The CLOSED fast path never waits on Redis: outcomes are buffered and flushed in
/// batches, and the state is read from a local copy refreshed every `refresh_interval`
/// (≤ 250 ms), so a trip on one replica reaches the others within about one interval.
/// Only OPEN→HALF_OPEN probing goes to Redis per call.
///
/// **Invariant:** across all replicas at most `half_open_permits` probes hold a lease at
/// once; a lease expires after `probe_lease_ttl` so a crashed replica cannot hold a slot.
///
/// **Invariant:** when Redis is unreachable the breaker keeps serving from a local
/// [`CircuitBreaker`] seeded with the last known state and reports `degraded: true`.
#[derive(Debug, Clone)]
pub struct SharedBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    config: BreakerConfig,
    shared: SharedBreakerConfig,
    pool: Pool,
    keys: [String; 3],
    scripts: Scripts,
    config_args: Vec<String>,
    cached: Mutex<Cached>,
    pending: Mutex<Pending>,
    fallback: CircuitBreaker,
    events: broadcast::Sender<StateChange>,
    flush: Arc<Notify>,
    exchanges: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBreaker")
            .field("name", &self.name)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl SharedBreaker {
    /// Creates the breaker, reads the shared state once and starts the background refresh.
    /// If Redis is unreachable it starts `degraded` instead of failing. Must be called
    /// inside a Tokio runtime.
    pub async fn connect(
        name: impl Into<String>,
        config: BreakerConfig,
        shared: SharedBreakerConfig,
        pool: Pool,
    ) -> Result<Self> {
        let breaker = Self::build(name.into(), config, shared, pool)?;
        // Starting degraded is allowed: the replica must come up even if Redis is down.
        let _ = breaker.sync().await;
        let flush = Arc::clone(&breaker.inner.flush);
        tokio::spawn(refresh_loop(Arc::downgrade(&breaker.inner), flush));
        Ok(breaker)
    }

    /// [`SharedBreaker::connect`] for callers that cannot wait: the first read of the shared
    /// state runs in the background right away, and until it answers the breaker is CLOSED.
    /// Must be called inside a Tokio runtime.
    pub fn start(
        name: impl Into<String>,
        config: BreakerConfig,
        shared: SharedBreakerConfig,
        pool: Pool,
    ) -> Result<Self> {
        let breaker = Self::build(name.into(), config, shared, pool)?;
        let inner = Arc::downgrade(&breaker.inner);
        let flush = Arc::clone(&breaker.inner.flush);
        tokio::spawn(async move {
            if let Some(first) = inner.upgrade() {
                let _ = first.sync().await;
            }
            refresh_loop(inner, flush).await;
        });
        Ok(breaker)
    }

    fn build(
        name: String,
        config: BreakerConfig,
        shared: SharedBreakerConfig,
        pool: Pool,
    ) -> Result<Self> {
        config.validate()?;
        shared.validate()?;
        let base = format!("{}{{{}}}", shared.key_prefix, name);
        let (kind, size) = match config.window {
            SlidingWindow::Count(n) => ("c", n),
            SlidingWindow::Time(n) => ("t", n),
        };
        let config_args = vec![
            kind.to_owned(),
            size.to_string(),
            config.effective_minimum_calls().to_string(),
            config.failure_rate_threshold.unwrap_or(-1.0).to_string(),
            config
                .slow_calls
                .map_or(-1.0, |s| s.rate_threshold)
                .to_string(),
            config.consecutive_failures.unwrap_or(0).to_string(),
            millis(config.open_timeout).to_string(),
            config.half_open_permits.to_string(),
            config.success_threshold.to_string(),
            millis(shared.probe_lease_ttl).to_string(),
        ];
        let fallback = CircuitBreaker::new(name.clone(), config.clone())?;
        let events = broadcast::channel(EVENT_CAPACITY).0;
        // Decisions made locally while degraded are state changes too; the relay ends when
        // the fallback (owned by this breaker) is dropped.
        tokio::spawn(relay(fallback.subscribe(), events.clone()));
        let flush = Arc::new(Notify::new());
        let inner = Arc::new(Inner {
            keys: [
                format!("{base}:state"),
                format!("{base}:window"),
                format!("{base}:probes"),
            ],
            name,
            config,
            shared,
            pool,
            scripts: Scripts::new(),
            config_args,
            cached: Mutex::new(Cached {
                snapshot: Snapshot {
                    state: BreakerState::Closed,
                    generation: 0,
                    open_remaining: None,
                    calls: 0,
                    failures: 0,
                    slow: 0,
                    consecutive_failures: 0,
                    probes_in_flight: 0,
                    probe_successes: 0,
                    last_change: None,
                    granted: 0,
                },
                open_until: None,
                degraded: false,
            }),
            pending: Mutex::new(Pending::default()),
            fallback,
            events,
            flush,
            exchanges: tokio::sync::Mutex::new(()),
        });
        Ok(Self { inner })
    }

    /// Flushes pending outcomes and refreshes the local copy now (one round trip).
    pub async fn sync(&self) -> Result<()> {
        self.inner.sync().await
    }

    /// Whether Redis is currently unreachable and decisions are local.
    pub fn is_degraded(&self) -> bool {
        lock(&self.inner.cached).degraded
    }

    /// The Redis keys this breaker uses (state, window, probe leases).
    pub fn keys(&self) -> &[String; 3] {
        &self.inner.keys
    }

    async fn acquire_remote(&self) -> Result<BreakerPermit> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let reply = self
            .inner
            .exchange(&self.inner.scripts.acquire, "acquire", &[&token])
            .await;
        let snapshot = match reply {
            Ok(s) => s,
            Err(e) => {
                self.inner.enter_degraded(&e);
                return self.inner.fallback.try_acquire().map(BreakerPermit::from);
            }
        };
        let granted = snapshot.granted;
        let generation = snapshot.generation;
        let remaining = snapshot.open_remaining;
        match granted {
            1 => Ok(SharedPermit::probe(&self.inner, token, generation).into()),
            2 => Ok(SharedPermit::closed(&self.inner, generation).into()),
            _ => Err(Error::CircuitOpen {
                name: self.inner.name.clone(),
                retry_after: remaining,
            }),
        }
    }

    async fn force_state(&self, to: BreakerState) -> Result<()> {
        self.inner
            .exchange(&self.inner.scripts.force, "force", &[to.as_str()])
            .await?;
        Ok(())
    }
}

enum Decision {
    Fallback,
    Closed(u64),
    Reject(Option<Duration>),
    Remote,
}

impl Inner {
    async fn invoke(
        &self,
        script: &Script,
        name: &'static str,
        extra: &[&str],
    ) -> Result<Snapshot> {
        let call = async {
            let mut conn = self.pool.get().await?;
            let mut invocation = script.prepare_invoke();
            for key in &self.keys {
                invocation.key(key);
            }
            for arg in &self.config_args {
                invocation.arg(arg);
            }
            for arg in extra {
                invocation.arg(*arg);
            }
            let reply: SnapshotReply = invocation.invoke_async(&mut conn).await?;
            Snapshot::parse(reply, name)
        };
        match tokio::time::timeout(self.shared.redis_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Error::RedisTimeout {
                after: self.shared.redis_timeout,
            }),
        }
    }

    /// Runs `script` and applies the snapshot it answers. One exchange at a time per
    /// breaker, so an older answer (a refresh sent before an operator action) is never
    /// applied over a newer one.
    async fn exchange(
        &self,
        script: &Script,
        name: &'static str,
        extra: &[&str],
    ) -> Result<Snapshot> {
        let _one_at_a_time = self.exchanges.lock().await;
        let snapshot = self.invoke(script, name, extra).await?;
        self.apply(snapshot.clone());
        Ok(snapshot)
    }

    async fn sync(&self) -> Result<()> {
        let (generation, batch) = {
            let mut p = lock(&self.pending);
            (p.generation, std::mem::take(&mut p.outcomes))
        };
        let generation = generation.to_string();
        match self
            .exchange(&self.scripts.record, "record", &[&generation, &batch])
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                // The batch is dropped: outcomes recorded while Redis was away are judged by
                // the local fallback instead.
                self.enter_degraded(&e);
                Err(e)
            }
        }
    }

    fn enter_degraded(&self, error: &Error) {
        let mut cached = lock(&self.cached);
        if cached.degraded {
            return;
        }
        cached.degraded = true;
        let last = cached.snapshot.state;
        drop(cached);
        tracing::warn!(breaker = %self.name, error = %error, "redis unreachable; shared breaker degraded to local state");
        // Seed the fallback with the last shared state, so an open dependency stays protected.
        match last {
            BreakerState::Open | BreakerState::HalfOpen => self.fallback.force(BreakerState::Open),
            other => self.fallback.force(other),
        }
    }

    fn apply(&self, snapshot: Snapshot) {
        let now = Instant::now();
        let mut cached = lock(&self.cached);
        let from = cached.snapshot.state;
        let to = snapshot.state;
        if cached.degraded {
            tracing::info!(breaker = %self.name, "redis reachable again; shared breaker restored");
        }
        cached.degraded = false;
        cached.open_until = snapshot.open_remaining.map(|r| now + r);
        let newer = snapshot.generation;
        cached.snapshot = snapshot;
        drop(cached);
        {
            // Generations restart at 0 if Redis lost its data, so any change (not only an
            // increase) makes the buffered outcomes obsolete.
            let mut p = lock(&self.pending);
            if p.generation != newer {
                p.generation = newer;
                p.outcomes.clear();
            }
        }
        if from != to {
            let _ = self.events.send(StateChange {
                breaker: self.name.clone(),
                from,
                to,
                at: Utc::now(),
            });
        }
    }

    fn decide(&self, now: Instant) -> Decision {
        let cached = lock(&self.cached);
        if cached.degraded {
            return Decision::Fallback;
        }
        match cached.snapshot.state {
            BreakerState::Closed | BreakerState::Disabled => {
                Decision::Closed(cached.snapshot.generation)
            }
            BreakerState::ForcedOpen => Decision::Reject(None),
            BreakerState::Open => match cached.open_until {
                Some(until) if now < until => Decision::Reject(Some(until - now)),
                _ => Decision::Remote,
            },
            BreakerState::HalfOpen => Decision::Remote,
        }
    }

    fn push_outcome(&self, generation: u64, code: char) {
        let mut p = lock(&self.pending);
        // Only outcomes of calls admitted under the current shared generation count.
        if generation != p.generation {
            return;
        }
        // Bounded even if flushes keep failing; the oldest outcomes matter least.
        if p.outcomes.len() >= self.shared.max_batch * 16 {
            p.outcomes.remove(0);
        }
        p.outcomes.push(code);
        if p.outcomes.len() >= self.shared.max_batch {
            self.flush.notify_one();
        }
    }
}

async fn relay(mut from: broadcast::Receiver<StateChange>, to: broadcast::Sender<StateChange>) {
    loop {
        match from.recv().await {
            Ok(change) => {
                let _ = to.send(change);
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn refresh_loop(inner: Weak<Inner>, flush: Arc<Notify>) {
    loop {
        let interval = match inner.upgrade() {
            Some(i) => i.shared.refresh_interval,
            None => return,
        };
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = flush.notified() => {}
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let _ = inner.sync().await;
    }
}

/// Admission granted by a [`SharedBreaker`] from its Redis state.
#[derive(Debug)]
pub(crate) struct SharedPermit {
    inner: Option<Arc<Inner>>,
    kind: SharedPermitKind,
    generation: u64,
    started: Instant,
}

#[derive(Debug)]
enum SharedPermitKind {
    Closed,
    Probe { token: String },
}

impl SharedPermit {
    fn closed(inner: &Arc<Inner>, generation: u64) -> Self {
        Self {
            inner: Some(Arc::clone(inner)),
            kind: SharedPermitKind::Closed,
            generation,
            started: Instant::now(),
        }
    }

    fn probe(inner: &Arc<Inner>, token: String, generation: u64) -> Self {
        Self {
            inner: Some(Arc::clone(inner)),
            kind: SharedPermitKind::Probe { token },
            generation,
            started: Instant::now(),
        }
    }

    pub(crate) fn record(mut self, outcome: Outcome) {
        if let Some(inner) = self.inner.take() {
            self.finish(inner, outcome);
        }
    }

    fn finish(&mut self, inner: Arc<Inner>, outcome: Outcome) {
        let slow = inner
            .config
            .slow_calls
            .is_some_and(|s| self.started.elapsed() >= s.duration);
        match &self.kind {
            SharedPermitKind::Closed => {
                let code = match (outcome, slow) {
                    (Outcome::Ignored, _) => return,
                    (Outcome::Success, false) => '0',
                    (Outcome::Failure, false) => '1',
                    (Outcome::Success, true) => '2',
                    (Outcome::Failure, true) => '3',
                };
                inner.push_outcome(self.generation, code);
            }
            SharedPermitKind::Probe { token } => {
                let code = match (outcome, slow) {
                    (Outcome::Ignored, _) => "i",
                    (Outcome::Success, false) => "s",
                    (Outcome::Failure, _) | (Outcome::Success, true) => "f",
                };
                let token = token.clone();
                let generation = self.generation.to_string();
                // Without a runtime the lease simply expires after its TTL.
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    handle.spawn(async move {
                        match inner
                            .exchange(&inner.scripts.probe, "probe", &[&token, &generation, code])
                            .await
                        {
                            Ok(_) => {}
                            Err(e) => inner.enter_degraded(&e),
                        }
                    });
                }
            }
        }
    }
}

impl Drop for SharedPermit {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            self.finish(inner, Outcome::Ignored);
        }
    }
}

#[async_trait]
impl Breaker for SharedBreaker {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn acquire(&self) -> Result<BreakerPermit> {
        match self.inner.decide(Instant::now()) {
            Decision::Fallback => self.inner.fallback.try_acquire().map(BreakerPermit::from),
            Decision::Closed(generation) => {
                Ok(SharedPermit::closed(&self.inner, generation).into())
            }
            Decision::Reject(retry_after) => Err(Error::CircuitOpen {
                name: self.inner.name.clone(),
                retry_after,
            }),
            Decision::Remote => self.acquire_remote().await,
        }
    }

    fn status(&self) -> BreakerStatus {
        let cached = lock(&self.inner.cached);
        if cached.degraded {
            drop(cached);
            return self.inner.fallback.status_with(true);
        }
        let s = &cached.snapshot;
        let min = self.inner.config.effective_minimum_calls();
        let rate = |n: u32| {
            (s.calls > 0 && s.calls >= min).then(|| f64::from(n) * 100.0 / f64::from(s.calls))
        };
        BreakerStatus {
            name: self.inner.name.clone(),
            state: s.state,
            degraded: false,
            shared: true,
            calls: s.calls,
            failures: s.failures,
            slow_calls: s.slow,
            failure_rate: rate(s.failures),
            slow_call_rate: rate(s.slow),
            consecutive_failures: s.consecutive_failures,
            probes_in_flight: s.probes_in_flight,
            probe_successes: s.probe_successes,
            open_remaining_ms: cached
                .open_until
                .map(|u| millis(u.saturating_duration_since(Instant::now()))),
            last_transition: s.last_change.map(|(ago, from)| StateChange {
                breaker: self.inner.name.clone(),
                from,
                to: s.state,
                at: Utc::now()
                    - chrono::Duration::from_std(ago).unwrap_or(chrono::Duration::zero()),
            }),
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<StateChange> {
        self.inner.events.subscribe()
    }

    async fn force_open(&self) -> Result<()> {
        self.force_state(BreakerState::ForcedOpen).await
    }

    async fn disable(&self) -> Result<()> {
        self.force_state(BreakerState::Disabled).await
    }

    async fn reset(&self) -> Result<()> {
        self.force_state(BreakerState::Closed).await
    }
}
