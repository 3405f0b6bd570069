//! Back-off and temporary bans after repeated failures (failed logins, bad API keys).
//!
//! A [`LockoutPolicy`] turns a count of recent failures into a block: the first
//! `free_failures` cost nothing, each further one blocks the subject for twice as long as the
//! previous (`base_delay`, `2 × base_delay`, … capped at `max_delay`), and from `ban_after`
//! failures on the subject is banned for `ban_for`. Failures are forgotten once `window` has
//! passed without a new one, or when the caller [`resets`](FailureTracker::reset) the
//! subject after a success.
//!
//! A [`FailureTracker`] keeps the counts: [`MemoryFailureTracker`] in process, and with the
//! `redis` feature `RedisFailureTracker`, shared by every replica (one Lua call per
//! operation, on the Redis server's clock).
//!
//! ```
//! use std::time::Duration;
//! use haven_resilience::{FailureTracker, LockoutPolicy, MemoryFailureTracker};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let policy = LockoutPolicy { free_failures: 2, ..LockoutPolicy::default() };
//! let tracker = MemoryFailureTracker::new(policy)?;
//! let subjects = ["ip:203.0.113.7".to_owned(), "account:alice".to_owned()];
//!
//! assert!(tracker.record_failure(&subjects).await?.blocked_for.is_none());
//! assert!(tracker.record_failure(&subjects).await?.blocked_for.is_none());
//! // The third failure in a row blocks both subjects for `base_delay` (1 s by default).
//! let third = tracker.record_failure(&subjects).await?;
//! assert_eq!(third.blocked_for, Some(Duration::from_secs(1)));
//! assert!(tracker.blocked(&subjects[..1]).await?.is_some());
//! # Ok::<_, haven_resilience::Error>(())
//! # }).unwrap();
//! ```

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use memory::MemoryFailureTracker;
#[cfg(feature = "redis")]
pub use redis::RedisFailureTracker;

use crate::{Error, Result};

/// How failures turn into blocks. The defaults suit interactive logins: 3 free attempts,
/// then 1 s, 2 s, 4 s … up to 5 min, and a 15-minute ban from the 10th failure within 15
/// minutes of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutPolicy {
    /// Failures that cost nothing.
    pub free_failures: u32,
    /// The block after the first failure past the free ones; each further one doubles it.
    pub base_delay: Duration,
    /// The longest back-off block (a ban may be longer).
    pub max_delay: Duration,
    /// From this many failures on, the subject is banned for [`ban_for`](Self::ban_for).
    pub ban_after: u32,
    /// How long a ban lasts.
    pub ban_for: Duration,
    /// Failures are forgotten when this long passes without a new one.
    pub window: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            free_failures: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            ban_after: 10,
            ban_for: Duration::from_secs(900),
            window: Duration::from_secs(900),
        }
    }
}

impl LockoutPolicy {
    /// Checks the values are usable: a ban after at least one failure, positive delays no
    /// longer than a day, `max_delay ≥ base_delay`.
    pub fn validate(&self) -> Result<()> {
        const DAY: Duration = Duration::from_secs(86_400);
        let invalid = |field, reason| Err(Error::InvalidConfig { field, reason });
        if self.ban_after == 0 {
            return invalid("ban_after", "must be at least 1");
        }
        if self.base_delay.is_zero() || self.base_delay > DAY {
            return invalid("base_delay", "must be between 1 ms and one day");
        }
        if self.max_delay < self.base_delay || self.max_delay > DAY {
            return invalid("max_delay", "must be between base_delay and one day");
        }
        if self.ban_for.is_zero() || self.ban_for > DAY {
            return invalid("ban_for", "must be between 1 ms and one day");
        }
        if self.window.is_zero() || self.window > DAY {
            return invalid("window", "must be between 1 ms and one day");
        }
        Ok(())
    }

    /// How long a subject is blocked right after its `failures`-th failure.
    pub fn block_after(&self, failures: u32) -> Option<Duration> {
        if failures >= self.ban_after {
            return Some(self.ban_for);
        }
        let over = failures.checked_sub(self.free_failures)?.checked_sub(1)?;
        let factor = 1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX);
        Some(
            self.base_delay
                .checked_mul(factor)
                .map_or(self.max_delay, |d| d.min(self.max_delay)),
        )
    }

    /// Whether `failures` reach a ban.
    pub fn is_ban(&self, failures: u32) -> bool {
        failures >= self.ban_after
    }
}

/// What recording a failure did (the default: nothing counted, nobody blocked).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureOutcome {
    /// The highest failure count among the subjects, this failure included.
    pub failures: u32,
    /// How long the most blocked subject stays blocked from now, if any.
    pub blocked_for: Option<Duration>,
    /// Whether this failure banned a subject (it reached `ban_after` just now).
    pub banned_now: bool,
}

/// Counts failures per subject (`"ip:…"`, `"account:…"`) and says who is blocked.
///
/// **Invariants:** every failure of a subject within its window counts exactly once, also
/// when several replicas record at the same time; a block only ever grows while it lasts
/// (a later, shorter back-off never shortens a ban).
#[async_trait]
pub trait FailureTracker: Send + Sync {
    /// The policy in force.
    fn policy(&self) -> &LockoutPolicy;

    /// How long the most blocked of `subjects` stays blocked, `None` when none is.
    async fn blocked(&self, subjects: &[String]) -> Result<Option<Duration>>;

    /// Records one failure against every subject and returns the worst resulting state.
    async fn record_failure(&self, subjects: &[String]) -> Result<FailureOutcome>;

    /// Forgets a subject's failures and block (after a successful login, or by an operator).
    async fn reset(&self, subject: &str) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_cap_then_bans() {
        let policy = LockoutPolicy::default();
        let blocks: Vec<_> = (1..=11).map(|n| policy.block_after(n)).collect();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(
            blocks,
            vec![
                None,
                None,
                None,
                secs(1),
                secs(2),
                secs(4),
                secs(8),
                secs(16),
                secs(32),
                secs(900),
                secs(900)
            ]
        );
        assert!(!policy.is_ban(9));
        assert!(policy.is_ban(10));
    }

    #[test]
    fn huge_counts_saturate_at_the_cap() {
        let policy = LockoutPolicy {
            ban_after: u32::MAX,
            ..LockoutPolicy::default()
        };
        assert_eq!(policy.block_after(40), Some(policy.max_delay));
        assert_eq!(policy.block_after(u32::MAX - 1), Some(policy.max_delay));
        assert_eq!(policy.block_after(u32::MAX), Some(policy.ban_for));
    }

    #[test]
    fn invalid_policies_are_refused() {
        let ok = LockoutPolicy::default();
        assert!(ok.validate().is_ok());
        for bad in [
            LockoutPolicy { ban_after: 0, ..ok },
            LockoutPolicy {
                base_delay: Duration::ZERO,
                ..ok
            },
            LockoutPolicy {
                max_delay: Duration::from_millis(1),
                ..ok
            },
            LockoutPolicy {
                window: Duration::ZERO,
                ..ok
            },
            LockoutPolicy {
                ban_for: Duration::from_secs(200_000),
                ..ok
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidConfig { .. })),
                "{bad:?}"
            );
        }
    }
}
