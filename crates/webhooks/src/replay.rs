//! Replay protection for inbound webhooks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock};
use crate::error::StoreError;
use crate::fingerprint::Fingerprint;

/// What a replay store knew about a message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// First sighting: the id is now recorded with this body's fingerprint.
    First,
    /// Seen before with the same body: acknowledge without processing.
    Duplicate,
    /// Seen before with a different body: reject and log as a security event.
    Conflict,
}

/// Remembers which webhook ids of which source were accepted, with the body fingerprint.
///
/// **Invariant:** `record` is atomic per `(source, id)`: of any number of concurrent calls
/// for one id, exactly one returns [`ReplayOutcome::First`]; the others see the winner's
/// fingerprint. A record lives at least `ttl` (the verifier passes the tolerance window, so
/// a message cannot outlive its record and still pass the timestamp check).
#[async_trait]
pub trait ReplayStore: Send + Sync + std::fmt::Debug {
    /// Records `(source, id)` with `fingerprint` unless it is already present.
    async fn record(
        &self,
        source: &str,
        id: &str,
        fingerprint: &Fingerprint,
        ttl: Duration,
    ) -> Result<ReplayOutcome, StoreError>;
}

#[async_trait]
impl<T: ReplayStore + ?Sized> ReplayStore for Arc<T> {
    async fn record(
        &self,
        source: &str,
        id: &str,
        fingerprint: &Fingerprint,
        ttl: Duration,
    ) -> Result<ReplayOutcome, StoreError> {
        (**self).record(source, id, fingerprint, ttl).await
    }
}

/// Compares a stored fingerprint with a new one.
pub(crate) fn outcome_for(stored: &Fingerprint, new: &Fingerprint) -> ReplayOutcome {
    if stored == new {
        ReplayOutcome::Duplicate
    } else {
        ReplayOutcome::Conflict
    }
}

/// An in-process replay store (tests, single-instance deployments).
#[derive(Debug)]
pub struct MemoryReplayStore {
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<(String, String), (Fingerprint, Duration)>>,
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock::default()))
    }
}

impl MemoryReplayStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store on `clock` (e.g. a [`crate::ManualClock`]).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl ReplayStore for MemoryReplayStore {
    async fn record(
        &self,
        source: &str,
        id: &str,
        fingerprint: &Fingerprint,
        ttl: Duration,
    ) -> Result<ReplayOutcome, StoreError> {
        let now = self.clock.elapsed();
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| StoreError::Unavailable("replay store lock poisoned".into()))?;
        // Sweeping on every call would make each record O(n); once per 1024 entries keeps
        // memory bounded at a constant amortised cost.
        if entries.len() % 1024 == 1023 {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        let key = (source.to_owned(), id.to_owned());
        if let Some((stored, expires)) = entries.get(&key)
            && *expires > now
        {
            return Ok(outcome_for(stored, fingerprint));
        }
        entries.insert(key, (*fingerprint, now.saturating_add(ttl)));
        Ok(ReplayOutcome::First)
    }
}
