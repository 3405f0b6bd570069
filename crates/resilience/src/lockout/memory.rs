use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{FailureOutcome, FailureTracker, LockoutPolicy};
use crate::{Clock, Result, SystemClock};

/// Subjects kept before forgotten ones are swept on the next failure.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

impl Entry {
    /// Whether the entry says nothing any more: window over and no block left.
    fn expired(&self, now: Instant, window: Duration) -> bool {
        now.saturating_duration_since(self.last_failure) >= window
            && self.blocked_until.is_none_or(|until| until <= now)
    }
}

/// An in-process [`FailureTracker`]: one replica's view. Use it alone in single-process
/// deployments and tests, or as the fallback of a shared tracker while Redis is down.
#[derive(Debug, Clone)]
pub struct MemoryFailureTracker {
    policy: LockoutPolicy,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    clock: Arc<dyn Clock>,
}

impl MemoryFailureTracker {
    /// A tracker on the system clock.
    pub fn new(policy: LockoutPolicy) -> Result<Self> {
        Self::with_clock(policy, Arc::new(SystemClock))
    }

    /// A tracker on an injected clock (tests use [`crate::ManualClock`]).
    pub fn with_clock(policy: LockoutPolicy, clock: Arc<dyn Clock>) -> Result<Self> {
        policy.validate()?;
        Ok(Self {
            policy,
            entries: Arc::default(),
            clock,
        })
    }

    /// Subjects currently remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no subject is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl FailureTracker for MemoryFailureTracker {
    fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    async fn blocked(&self, subjects: &[String]) -> Result<Option<Duration>> {
        let now = self.clock.now();
        let entries = self.lock();
        Ok(subjects
            .iter()
            .filter_map(|s| entries.get(s)?.blocked_until)
            .filter_map(|until| until.checked_duration_since(now))
            .filter(|left| !left.is_zero())
            .max())
    }

    async fn record_failure(&self, subjects: &[String]) -> Result<FailureOutcome> {
        let now = self.clock.now();
        let window = self.policy.window;
        let mut entries = self.lock();
        if entries.len() > SWEEP_ABOVE {
            entries.retain(|_, e| !e.expired(now, window));
        }
        let mut outcome = FailureOutcome::default();
        for subject in subjects {
            let entry = entries.entry(subject.clone()).or_insert(Entry {
                failures: 0,
                last_failure: now,
                blocked_until: None,
            });
            if entry.expired(now, window) {
                *entry = Entry {
                    failures: 0,
                    last_failure: now,
                    blocked_until: None,
                };
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            if let Some(block) = self.policy.block_after(entry.failures) {
                let until = now + block;
                entry.blocked_until = Some(entry.blocked_until.map_or(until, |u| u.max(until)));
            }
            outcome.failures = outcome.failures.max(entry.failures);
            outcome.banned_now |= entry.failures == self.policy.ban_after;
            let left = entry
                .blocked_until
                .and_then(|until| until.checked_duration_since(now))
                .filter(|left| !left.is_zero());
            outcome.blocked_for = outcome.blocked_for.max(left);
        }
        Ok(outcome)
    }

    async fn reset(&self, subject: &str) -> Result<()> {
        self.lock().remove(subject);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn tracker(clock: &Arc<ManualClock>) -> MemoryFailureTracker {
        MemoryFailureTracker::with_clock(LockoutPolicy::default(), clock.clone()).unwrap()
    }

    fn subjects(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn blocks_grow_then_ban_and_expire() {
        let clock = Arc::new(ManualClock::new());
        let t = tracker(&clock);
        let ip = subjects(&["ip:a"]);
        for _ in 0..3 {
            assert_eq!(t.record_failure(&ip).await.unwrap().blocked_for, None);
        }
        assert_eq!(t.blocked(&ip).await.unwrap(), None);
        let fourth = t.record_failure(&ip).await.unwrap();
        assert_eq!(fourth.blocked_for, Some(Duration::from_secs(1)));
        assert_eq!(t.blocked(&ip).await.unwrap(), Some(Duration::from_secs(1)));
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            t.blocked(&ip).await.unwrap(),
            None,
            "the block ends on time"
        );
        assert_eq!(
            t.record_failure(&ip).await.unwrap().blocked_for,
            Some(Duration::from_secs(2))
        );
        for _ in 6..10 {
            let outcome = t.record_failure(&ip).await.unwrap();
            assert!(!outcome.banned_now);
        }
        let ban = t.record_failure(&ip).await.unwrap();
        assert_eq!((ban.failures, ban.banned_now), (10, true));
        assert_eq!(ban.blocked_for, Some(Duration::from_secs(900)));
        // The ban outlasts the failure window only by its own length.
        clock.advance(Duration::from_secs(899));
        assert!(t.blocked(&ip).await.unwrap().is_some());
        clock.advance(Duration::from_secs(1));
        assert_eq!(t.blocked(&ip).await.unwrap(), None);
        // A window without failures forgets the count.
        assert_eq!(t.record_failure(&ip).await.unwrap().failures, 1);
    }

    #[tokio::test]
    async fn subjects_are_independent_and_reset_forgets() {
        let clock = Arc::new(ManualClock::new());
        let t = tracker(&clock);
        let both = subjects(&["ip:a", "account:x"]);
        for _ in 0..4 {
            t.record_failure(&both).await.unwrap();
        }
        assert!(t.blocked(&subjects(&["ip:a"])).await.unwrap().is_some());
        assert!(t.blocked(&subjects(&["ip:b"])).await.unwrap().is_none());
        t.reset("account:x").await.unwrap();
        assert!(
            t.blocked(&subjects(&["account:x"]))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            t.blocked(&both).await.unwrap().is_some(),
            "the ip stays blocked"
        );
        let outcome = t.record_failure(&subjects(&["account:x"])).await.unwrap();
        assert_eq!(outcome.failures, 1);
    }
}
