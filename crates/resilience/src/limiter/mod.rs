//! Rate limiting: a keyed in-process GCRA limiter on `governor` and, with the `redis`
//! feature, a distributed GCRA limiter doing one Lua call per decision.

#[cfg(feature = "redis")]
mod distributed;
mod local;

use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[cfg(feature = "redis")]
pub use distributed::{DistributedLimiter, LeaseConfig};
pub use local::{ClassedLimiter, KeyClass, KeyedLimiter};

use crate::{Error, Result};

/// A GCRA quota: `rate` requests per `period` on average, with up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateQuota {
    /// Requests replenished per `period`.
    pub rate: NonZeroU32,
    /// The period `rate` refers to.
    pub period: Duration,
    /// Requests that may pass back to back on a full bucket.
    pub burst: NonZeroU32,
}

impl RateQuota {
    /// `rate` per `period`, with a burst of `rate`.
    pub fn new(rate: NonZeroU32, period: Duration) -> Result<Self> {
        let quota = Self {
            rate,
            period,
            burst: rate,
        };
        quota.emission_interval()?;
        Ok(quota)
    }

    /// The same rate with another burst size.
    pub fn with_burst(self, burst: NonZeroU32) -> Self {
        Self { burst, ..self }
    }

    /// `period / rate`: the spacing of requests at the sustained rate.
    pub fn emission_interval(&self) -> Result<Duration> {
        let t = self.period / self.rate.get();
        if t < Duration::from_micros(1) {
            return Err(Error::InvalidConfig {
                field: "rate",
                reason: "the emission interval must be at least 1 µs",
            });
        }
        Ok(t)
    }
}

/// One limiter decision with everything the `Retry-After` and `RateLimit-*` headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateDecision {
    /// Whether the request may pass.
    pub allowed: bool,
    /// `RateLimit-Limit`: the burst size.
    pub limit: u32,
    /// `RateLimit-Remaining`: requests that would pass right now after this one.
    pub remaining: u32,
    /// Time until the bucket is full again (`RateLimit-Reset`).
    pub reset: Duration,
    /// For a refused request, time until one more would pass (`Retry-After`).
    pub retry_after: Option<Duration>,
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl RateDecision {
    /// `Retry-After` in whole seconds, rounded up (never 0 for a refusal).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(|d| ceil_secs(d).max(1))
    }

    /// `RateLimit-Reset` in whole seconds, rounded up.
    pub fn reset_secs(&self) -> u64 {
        ceil_secs(self.reset)
    }

    /// The response headers for this decision (`Retry-After` only on refusal).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("RateLimit-Limit", self.limit.to_string()),
            ("RateLimit-Remaining", self.remaining.to_string()),
            ("RateLimit-Reset", self.reset_secs().to_string()),
        ];
        if let Some(s) = self.retry_after_secs() {
            h.push(("Retry-After", s.to_string()));
        }
        h
    }

    /// `Ok(self)` if allowed, else [`Error::RateLimited`].
    pub fn into_result(self) -> Result<Self> {
        match self.retry_after {
            Some(retry_after) if !self.allowed => Err(Error::RateLimited { retry_after }),
            _ => Ok(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_up() {
        let d = RateDecision {
            allowed: false,
            limit: 10,
            remaining: 0,
            reset: Duration::from_millis(1500),
            retry_after: Some(Duration::from_millis(100)),
        };
        assert_eq!(d.retry_after_secs(), Some(1));
        assert_eq!(d.reset_secs(), 2);
        assert!(d.headers().contains(&("Retry-After", "1".to_owned())));
        assert!(matches!(d.into_result(), Err(Error::RateLimited { .. })));
    }
}
