use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock as GovernorClock, DefaultClock, Reference};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use super::{RateDecision, RateQuota};
use crate::Result;

type Inner<K, C> = RateLimiter<K, DashMapStateStore<K>, C, StateInformationMiddleware>;

/// An in-process GCRA limiter with one bucket per key.
///
/// governor's keyed store only grows; call [`KeyedLimiter::evict_idle`] periodically (or
/// [`KeyedLimiter::spawn_eviction`]) to drop keys whose bucket is full again, which is
/// indistinguishable from a key never seen.
pub struct KeyedLimiter<K: Hash + Eq + Clone, C: GovernorClock = DefaultClock> {
    limiter: Inner<K, C>,
    quota: RateQuota,
    interval: Duration,
    clock: C,
}

impl<K: Hash + Eq + Clone, C: GovernorClock> std::fmt::Debug for KeyedLimiter<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("quota", &self.quota)
            .field("keys", &self.limiter.len())
            .finish()
    }
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter on the default (monotonic) clock.
    pub fn new(quota: RateQuota) -> Result<Self> {
        Self::with_clock(quota, DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: GovernorClock + Clone> KeyedLimiter<K, C> {
    /// A limiter on an injected clock (tests use `governor::clock::FakeRelativeClock`).
    pub fn with_clock(quota: RateQuota, clock: C) -> Result<Self> {
        let interval = quota.emission_interval()?;
        let gquota = Quota::with_period(interval)
            .ok_or(crate::Error::InvalidConfig {
                field: "rate",
                reason: "the emission interval must be positive",
            })?
            .allow_burst(quota.burst);
        let limiter = RateLimiter::dashmap_with_clock(gquota, clock.clone())
            .with_middleware::<StateInformationMiddleware>();
        Ok(Self {
            limiter,
            quota,
            interval,
            clock,
        })
    }

    /// The quota.
    pub fn quota(&self) -> RateQuota {
        self.quota
    }

    /// Decides one request for `key`.
    pub fn check(&self, key: &K) -> RateDecision {
        let burst = self.quota.burst.get();
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                RateDecision {
                    allowed: true,
                    limit: burst,
                    remaining,
                    reset: self.interval * burst.saturating_sub(remaining),
                    retry_after: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                RateDecision {
                    allowed: false,
                    limit: burst,
                    remaining: 0,
                    reset: wait + self.interval * burst.saturating_sub(1),
                    retry_after: Some(wait),
                }
            }
        }
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }

    /// Drops every key whose bucket has refilled, then releases the freed capacity.
    pub fn evict_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

impl<K, C> KeyedLimiter<K, C>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    C: GovernorClock + Clone + Send + Sync + 'static,
    C::Instant: Reference,
{
    /// Runs [`KeyedLimiter::evict_idle`] every `every` until the limiter is dropped.
    pub fn spawn_eviction(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                match weak.upgrade() {
                    Some(limiter) => limiter.evict_idle(),
                    None => return,
                }
            }
        })
    }
}

/// Who a rate limit applies to; each class has its own quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyClass {
    /// A client IP address.
    Ip,
    /// An API key.
    ApiKey,
    /// An authenticated user.
    User,
}

/// Keyed limiters with a different quota per [`KeyClass`].
#[derive(Debug)]
pub struct ClassedLimiter<C: GovernorClock = DefaultClock> {
    limiters: HashMap<KeyClass, KeyedLimiter<String, C>>,
}

impl ClassedLimiter {
    /// Limiters for the given classes on the default clock; other classes are unlimited.
    pub fn new(quotas: impl IntoIterator<Item = (KeyClass, RateQuota)>) -> Result<Self> {
        Self::with_clock(quotas, DefaultClock::default())
    }
}

impl<C: GovernorClock + Clone> ClassedLimiter<C> {
    /// Limiters on an injected clock.
    pub fn with_clock(
        quotas: impl IntoIterator<Item = (KeyClass, RateQuota)>,
        clock: C,
    ) -> Result<Self> {
        let limiters = quotas
            .into_iter()
            .map(|(class, quota)| Ok((class, KeyedLimiter::with_clock(quota, clock.clone())?)))
            .collect::<Result<_>>()?;
        Ok(Self { limiters })
    }

    /// Decides one request of `class` for `key`; `None` if the class has no quota.
    pub fn check(&self, class: KeyClass, key: &str) -> Option<RateDecision> {
        self.limiters.get(&class).map(|l| l.check(&key.to_owned()))
    }

    /// Evicts idle keys of every class.
    pub fn evict_idle(&self) {
        self.limiters.values().for_each(KeyedLimiter::evict_idle);
    }

    /// Keys tracked across all classes.
    pub fn len(&self) -> usize {
        self.limiters.values().map(KeyedLimiter::len).sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn nz(n: u32) -> std::num::NonZeroU32 {
        std::num::NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn classes_have_their_own_quota() {
        let clock = FakeRelativeClock::default();
        let per_min = |n| RateQuota::new(nz(n), Duration::from_secs(60)).unwrap();
        let limiter = ClassedLimiter::with_clock(
            [(KeyClass::Ip, per_min(1)), (KeyClass::User, per_min(3))],
            clock,
        )
        .unwrap();
        assert!(limiter.check(KeyClass::Ip, "k").unwrap().allowed);
        assert!(!limiter.check(KeyClass::Ip, "k").unwrap().allowed);
        for _ in 0..3 {
            assert!(limiter.check(KeyClass::User, "k").unwrap().allowed);
        }
        assert!(!limiter.check(KeyClass::User, "k").unwrap().allowed);
        assert!(limiter.check(KeyClass::ApiKey, "k").is_none());
    }
}
