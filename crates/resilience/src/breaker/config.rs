use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which recent calls the failure and slow-call rates are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "size")]
pub enum SlidingWindow {
    /// The last `n` recorded calls.
    Count(u32),
    /// The calls recorded in the last `n` whole seconds.
    Time(u32),
}

/// Slow-call detection: calls at least `duration` long count as slow, and a slow-call rate
/// of at least `rate_threshold` percent opens the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SlowCallConfig {
    /// A call taking this long or longer is slow.
    pub duration: Duration,
    /// Percentage (0, 100] of slow calls in the window that opens the breaker.
    pub rate_threshold: f64,
}

/// Circuit breaker settings. [`BreakerConfig::default`] uses the seed defaults: 5 consecutive
/// failures open it, it stays OPEN for 30 s, HALF_OPEN admits 2 probes and 2 successes close it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerConfig {
    /// The window rates are computed over.
    pub window: SlidingWindow,
    /// Calls needed in the window before a rate is computed (capped at a count window's size).
    pub minimum_calls: u32,
    /// Percentage (0, 100] of failed calls that opens the breaker; `None` disables rate tripping.
    pub failure_rate_threshold: Option<f64>,
    /// Slow-call detection; `None` disables it.
    pub slow_calls: Option<SlowCallConfig>,
    /// This many failures in a row open the breaker; `None` disables the rule.
    pub consecutive_failures: Option<u32>,
    /// How long the breaker stays OPEN before it admits probes.
    pub open_timeout: Duration,
    /// Probes HALF_OPEN admits at once; further calls are rejected.
    pub half_open_permits: u32,
    /// Probe successes that close the breaker.
    pub success_threshold: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: SlidingWindow::Count(100),
            minimum_calls: 100,
            failure_rate_threshold: Some(50.0),
            slow_calls: None,
            consecutive_failures: Some(5),
            open_timeout: Duration::from_secs(30),
            half_open_permits: 2,
            success_threshold: 2,
        }
    }
}

impl BreakerConfig {
    /// Checks every field; called by the breaker constructors.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason| Err(Error::InvalidConfig { field, reason });
        match self.window {
            SlidingWindow::Count(0) | SlidingWindow::Time(0) => {
                return invalid("window", "size must be at least 1");
            }
            SlidingWindow::Time(n) if n > 3600 => {
                return invalid("window", "a time window is at most 3600 seconds");
            }
            _ => {}
        }
        if self.minimum_calls == 0 {
            return invalid("minimum_calls", "must be at least 1");
        }
        if let Some(t) = self.failure_rate_threshold
            && !(t > 0.0 && t <= 100.0)
        {
            return invalid("failure_rate_threshold", "must be in (0, 100]");
        }
        if let Some(slow) = &self.slow_calls {
            if !(slow.rate_threshold > 0.0 && slow.rate_threshold <= 100.0) {
                return invalid("slow_calls.rate_threshold", "must be in (0, 100]");
            }
            if slow.duration.is_zero() {
                return invalid("slow_calls.duration", "must be positive");
            }
        }
        if self.consecutive_failures == Some(0) {
            return invalid("consecutive_failures", "must be at least 1");
        }
        if self.half_open_permits == 0 {
            return invalid("half_open_permits", "must be at least 1");
        }
        if self.success_threshold == 0 {
            return invalid("success_threshold", "must be at least 1");
        }
        Ok(())
    }

    /// `minimum_calls`, capped at the window size for count windows (a larger value could
    /// never be reached).
    pub fn effective_minimum_calls(&self) -> u32 {
        match self.window {
            SlidingWindow::Count(n) => self.minimum_calls.min(n),
            SlidingWindow::Time(_) => self.minimum_calls,
        }
    }
}
