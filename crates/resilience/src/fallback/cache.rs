use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::{Clock, SystemClock};
use crate::{Error, Result};

/// A value read from a [`TtlCache`].
#[derive(Debug, Clone, PartialEq)]
pub struct CachedValue<V> {
    /// The value.
    pub value: V,
    /// Time since it was stored.
    pub age: Duration,
    /// True once `age` passed `fresh_ttl`; such a value is only a fallback.
    pub stale: bool,
}

/// A cache whose entries are fresh for `fresh_ttl` and may be served as stale fallbacks
/// until `stale_ttl`.
///
/// **Invariant:** no value older than `stale_ttl` is ever returned; there is no unbounded
/// "last known good" value.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    fresh_ttl: Duration,
    stale_ttl: Duration,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    /// A cache on the system clock. `stale_ttl` must be at least `fresh_ttl`.
    pub fn new(fresh_ttl: Duration, stale_ttl: Duration) -> Result<Self> {
        Self::with_clock(fresh_ttl, stale_ttl, Arc::new(SystemClock))
    }

    /// A cache on an injected clock.
    pub fn with_clock(
        fresh_ttl: Duration,
        stale_ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        if stale_ttl < fresh_ttl {
            return Err(Error::InvalidConfig {
                field: "stale_ttl",
                reason: "must be at least fresh_ttl",
            });
        }
        Ok(Self {
            fresh_ttl,
            stale_ttl,
            clock,
            entries: Mutex::default(),
        })
    }

    /// Stores `value` as fresh now.
    pub fn insert(&self, key: K, value: V) {
        let now = self.clock.now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let stale_ttl = self.stale_ttl;
        entries.retain(|_, (_, at)| now.saturating_duration_since(*at) < stale_ttl);
        entries.insert(key, (value, now));
    }

    /// The value if it is fresh.
    pub fn get_fresh(&self, key: &K) -> Option<CachedValue<V>> {
        self.get(key).filter(|v| !v.stale)
    }

    /// The value if it is within `stale_ttl`, marked stale past `fresh_ttl`.
    pub fn get(&self, key: &K) -> Option<CachedValue<V>> {
        let now = self.clock.now();
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (value, at) = entries.get(key)?;
        let age = now.saturating_duration_since(*at);
        (age < self.stale_ttl).then(|| CachedValue {
            value: value.clone(),
            age,
            stale: age >= self.fresh_ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[test]
    fn fresh_then_stale_then_gone() {
        let clock = Arc::new(ManualClock::new());
        let cache = TtlCache::with_clock(
            Duration::from_secs(30),
            Duration::from_secs(120),
            clock.clone(),
        )
        .unwrap();
        cache.insert("k", 1);
        assert!(!cache.get(&"k").unwrap().stale);
        clock.advance(Duration::from_secs(30));
        assert!(cache.get(&"k").unwrap().stale);
        assert!(cache.get_fresh(&"k").is_none());
        clock.advance(Duration::from_secs(90) - Duration::from_nanos(1));
        assert!(cache.get(&"k").is_some());
        clock.advance(Duration::from_nanos(1));
        assert!(cache.get(&"k").is_none());
    }
}
