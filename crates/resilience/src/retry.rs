//! Retry with exponential backoff and full jitter.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{Error, Result};

/// Whether an operation may safely run more than once. Retrying is opt-in: only
/// [`Idempotency::Idempotent`] operations are ever retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Running it twice has the same effect as once.
    Idempotent,
    /// It must run at most once; failures are returned at once.
    NonIdempotent,
}

/// What the caller's classifier says about one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again; `after` is a server hint (e.g. `Retry-After`) to wait at least this long.
    Retry {
        /// Minimum wait requested by the dependency.
        after: Option<Duration>,
    },
    /// Give up and return this error.
    Stop,
}

impl RetryDecision {
    /// Retry without a hint.
    pub const RETRY: RetryDecision = RetryDecision::Retry { after: None };
}

/// Backoff settings. Defaults follow the price-feed seed: 3 attempts, 1 s base, 4 s cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first.
    pub max_attempts: u32,
    /// Cap of the first backoff; it doubles per attempt.
    pub base_delay: Duration,
    /// No single backoff exceeds this.
    pub max_delay: Duration,
    /// No retry starts after this much time since the first attempt (waits included).
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(4),
            max_elapsed: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason| Err(Error::InvalidConfig { field, reason });
        if self.max_attempts == 0 {
            return invalid("max_attempts", "must be at least 1");
        }
        if self.base_delay > self.max_delay {
            return invalid("base_delay", "must not exceed max_delay");
        }
        Ok(())
    }

    /// The upper bound of the backoff before retry number `retry` (0-based):
    /// `min(max_delay, base_delay * 2^retry)`.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }
}

/// Why [`Retry::run`] gave up.
#[derive(Debug)]
pub struct RetryError<E> {
    /// The last error the operation returned.
    pub last: E,
    /// How many times the operation ran.
    pub attempts: u32,
    /// Which limit stopped it.
    pub reason: GiveUp,
}

/// The limit that ended a retry loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The classifier said the error is not retryable.
    NotRetryable,
    /// The operation was declared [`Idempotency::NonIdempotent`].
    NotIdempotent,
    /// `max_attempts` reached.
    Attempts,
    /// The next wait would end beyond `max_elapsed` (or a `Retry-After` hint exceeds it).
    Elapsed,
}

impl<E: std::fmt::Display> std::fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "gave up after {} attempt(s) ({:?}): {}",
            self.attempts, self.reason, self.last
        )
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.last)
    }
}

/// Runs operations under a [`RetryPolicy`] with full jitter: the wait before retry `n` is
/// uniform in `[0, min(max_delay, base_delay·2ⁿ)]`, raised to a server's `Retry-After`.
#[derive(Debug)]
pub struct Retry {
    policy: RetryPolicy,
    rng: Mutex<StdRng>,
}

impl Retry {
    /// A retrier with OS-seeded jitter.
    pub fn new(policy: RetryPolicy) -> Result<Self> {
        policy.validate()?;
        Ok(Self {
            policy,
            rng: Mutex::new(StdRng::from_os_rng()),
        })
    }

    /// A retrier whose jitter sequence is reproducible.
    pub fn with_seed(policy: RetryPolicy, seed: u64) -> Result<Self> {
        policy.validate()?;
        Ok(Self {
            policy,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        })
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The jittered wait before retry number `retry` (0-based), without a hint.
    pub fn next_delay(&self, retry: u32) -> Duration {
        let cap = self.policy.backoff_cap(retry);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }

    /// Runs `operation` until it succeeds, `classify` says stop, or a limit is reached.
    /// Waits use Tokio's timer, so tests can run on paused time.
    pub async fn run<T, E, F, Fut, C>(
        &self,
        idempotency: Idempotency,
        classify: C,
        mut operation: F,
    ) -> Result<T, RetryError<E>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Fn(&E) -> RetryDecision,
    {
        let start = tokio::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match operation(attempt).await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            let give_up = |reason, last| RetryError {
                last,
                attempts: attempt,
                reason,
            };
            if idempotency == Idempotency::NonIdempotent {
                return Err(give_up(GiveUp::NotIdempotent, error));
            }
            let hint = match classify(&error) {
                RetryDecision::Stop => return Err(give_up(GiveUp::NotRetryable, error)),
                RetryDecision::Retry { after } => after,
            };
            if attempt >= self.policy.max_attempts {
                return Err(give_up(GiveUp::Attempts, error));
            }
            let jitter = self.next_delay(attempt - 1);
            let wait = hint.map_or(jitter, |h| h.max(jitter));
            if start.elapsed() + wait > self.policy.max_elapsed {
                return Err(give_up(GiveUp::Elapsed, error));
            }
            tokio::time::sleep(wait).await;
        }
    }
}
