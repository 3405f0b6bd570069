//! Outbound delivery rules as pure functions: signing headers, the attempt schedule with
//! jitter and `Retry-After`, dead letters and endpoint disabling. The worker owns the loop
//! and the storage; everything it decides comes from here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};
use rand::Rng as _;

use crate::error::Error;
use crate::secret::Secret;
use crate::verify::{
    Scheme, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, sign_header_rotating,
};

/// The waits after failed attempts 1‥7: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. The first
/// attempt is immediate, so a message gets 8 attempts over about 27.6 hours.
pub const DEFAULT_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// How long an endpoint may fail without a single success before it is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// The Standard Webhooks headers for one outbound message, signed with every active
/// secret of the endpoint (during a rotation receivers holding either secret verify).
pub fn signed_headers(
    secrets: &[Secret],
    id: &str,
    timestamp: i64,
    payload: &[u8],
    now: i64,
) -> Result<HeaderMap, Error> {
    let signature =
        sign_header_rotating(Scheme::Standard, secrets, Some(id), timestamp, payload, now)?;
    let mut headers = HeaderMap::new();
    let id_value =
        HeaderValue::from_str(id).map_err(|_| Error::InvalidHeaderValue { name: WEBHOOK_ID })?;
    headers.insert(WEBHOOK_ID, id_value);
    headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
    headers.insert(
        WEBHOOK_SIGNATURE,
        HeaderValue::from_str(&signature).map_err(|_| Error::InvalidHeaderValue {
            name: WEBHOOK_SIGNATURE,
        })?,
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(headers)
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The receiver answered 2xx: done.
    Delivered,
    /// Try again at `at`; `attempt_no` is the number of that next attempt.
    RetryAt {
        /// When.
        at: DateTime<Utc>,
        /// The next attempt's number (from 2).
        attempt_no: u32,
    },
    /// The last attempt failed: move to the dead-letter state, replayable by an operator.
    DeadLetter,
}

/// The attempt schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Waits after failed attempts 1, 2, …; its length + 1 is the number of attempts.
    pub delays: Vec<Duration>,
    /// Relative jitter applied to each wait (0.2 = ±20 %).
    pub jitter: f64,
    /// Shortest wait a `Retry-After` may ask for.
    pub retry_after_min: Duration,
    /// Longest wait a `Retry-After` may ask for; longer requests are cut to this.
    pub retry_after_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            delays: DEFAULT_SCHEDULE.to_vec(),
            jitter: 0.2,
            retry_after_min: Duration::from_secs(5),
            retry_after_max: Duration::from_secs(10 * 3600),
        }
    }
}

impl RetryPolicy {
    /// Total attempts, the first included.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX - 1)
            .saturating_add(1)
    }

    /// Decides after attempt `attempt_no` (from 1) that ended with `last_status` (`None`
    /// for a transport failure or timeout) and the receiver's `Retry-After`, using random
    /// jitter.
    pub fn next_attempt(
        &self,
        attempt_no: u32,
        last_status: Option<u16>,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
    ) -> Decision {
        let unit = rand::rng().random_range(-1.0..=1.0);
        self.next_attempt_with_jitter(attempt_no, last_status, retry_after, now, unit)
    }

    /// As [`RetryPolicy::next_attempt`] with the jitter given as `unit` in `[-1, 1]`
    /// (−1 = shortest, 1 = longest), for deterministic callers and tests.
    ///
    /// `Retry-After` is honoured only on 429 and 503, clamped to
    /// `[retry_after_min, retry_after_max]`, and replaces the scheduled wait.
    pub fn next_attempt_with_jitter(
        &self,
        attempt_no: u32,
        last_status: Option<u16>,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
        unit: f64,
    ) -> Decision {
        if last_status.is_some_and(|s| (200..300).contains(&s)) {
            return Decision::Delivered;
        }
        let attempt_no = attempt_no.max(1);
        let Some(scheduled) = usize::try_from(attempt_no - 1)
            .ok()
            .and_then(|i| self.delays.get(i))
        else {
            return Decision::DeadLetter;
        };
        let wait = match (last_status, retry_after) {
            (Some(429 | 503), Some(asked)) => asked.clamp(
                self.retry_after_min,
                self.retry_after_max.max(self.retry_after_min),
            ),
            _ => jittered(*scheduled, self.jitter, unit),
        };
        let at = chrono::Duration::from_std(wait)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Decision::RetryAt {
            at,
            attempt_no: attempt_no.saturating_add(1),
        }
    }
}

fn jittered(base: Duration, jitter: f64, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    base.mul_f64(1.0 + jitter * unit)
}

/// Parses `Retry-After`: delta-seconds or an HTTP date (relative to `now`; a past date is
/// zero). Anything else is ignored.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        date.with_timezone(&Utc)
            .signed_duration_since(now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// An endpoint's failure streak, kept with the endpoint row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndpointHealth {
    /// When the current run of failures began; `None` after a success.
    pub failing_since: Option<DateTime<Utc>>,
}

/// What the health rule says after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthVerdict {
    /// The last attempt succeeded.
    Healthy,
    /// Failing since `since`, not yet long enough to disable.
    Failing {
        /// Start of the streak.
        since: DateTime<Utc>,
    },
    /// Failing for at least the disable period: disable the endpoint and alert.
    Disable {
        /// Start of the streak.
        since: DateTime<Utc>,
    },
}

impl EndpointHealth {
    /// Records a delivered attempt: the streak ends.
    pub fn record_success(&mut self) -> HealthVerdict {
        self.failing_since = None;
        HealthVerdict::Healthy
    }

    /// Records a failed attempt at `now`; disables once the streak has lasted
    /// `disable_after` ([`DISABLE_AFTER`] by default).
    pub fn record_failure(&mut self, now: DateTime<Utc>, disable_after: Duration) -> HealthVerdict {
        let since = *self.failing_since.get_or_insert(now);
        let lasted = now
            .signed_duration_since(since)
            .to_std()
            .unwrap_or(Duration::ZERO);
        if lasted >= disable_after {
            HealthVerdict::Disable { since }
        } else {
            HealthVerdict::Failing { since }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn schedule_without_jitter_is_the_documented_one() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 8);
        for (i, d) in DEFAULT_SCHEDULE.iter().enumerate() {
            let attempt = i as u32 + 1;
            let got = p.next_attempt_with_jitter(attempt, Some(500), None, t0(), 0.0);
            assert_eq!(
                got,
                Decision::RetryAt {
                    at: t0() + chrono::Duration::from_std(*d).unwrap(),
                    attempt_no: attempt + 1
                }
            );
        }
        assert_eq!(
            p.next_attempt_with_jitter(8, Some(500), None, t0(), 0.0),
            Decision::DeadLetter
        );
        assert_eq!(
            p.next_attempt_with_jitter(3, None, None, t0(), 0.0),
            Decision::RetryAt {
                at: t0() + chrono::Duration::minutes(30),
                attempt_no: 4
            }
        );
    }

    #[test]
    fn success_is_delivered_at_any_attempt() {
        let p = RetryPolicy::default();
        for a in 1..=8 {
            assert_eq!(
                p.next_attempt_with_jitter(a, Some(204), None, t0(), 1.0),
                Decision::Delivered
            );
        }
    }

    #[test]
    fn retry_after_only_on_429_and_503_within_bounds() {
        let p = RetryPolicy::default();
        let at = |status, ra| match p.next_attempt_with_jitter(1, Some(status), ra, t0(), 0.0) {
            Decision::RetryAt { at, .. } => (at - t0()).num_seconds(),
            other => panic!("{other:?}"),
        };
        assert_eq!(at(429, Some(Duration::from_secs(120))), 120);
        assert_eq!(at(503, Some(Duration::from_secs(120))), 120);
        assert_eq!(at(500, Some(Duration::from_secs(120))), 5);
        assert_eq!(at(429, Some(Duration::ZERO)), 5);
        assert_eq!(at(429, Some(Duration::from_secs(u64::MAX))), 36_000);
        assert_eq!(at(429, None), 5);
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(
            parse_retry_after("120", t0()),
            Some(Duration::from_secs(120))
        );
        let later = (t0() + chrono::Duration::seconds(90)).to_rfc2822();
        assert_eq!(
            parse_retry_after(&later, t0()),
            Some(Duration::from_secs(90))
        );
        let past = (t0() - chrono::Duration::seconds(90)).to_rfc2822();
        assert_eq!(parse_retry_after(&past, t0()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", t0()), None);
        assert_eq!(parse_retry_after("-5", t0()), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", t0()),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn endpoint_is_disabled_after_five_days_of_failures_only() {
        let mut h = EndpointHealth::default();
        assert_eq!(
            h.record_failure(t0(), DISABLE_AFTER),
            HealthVerdict::Failing { since: t0() }
        );
        let almost = t0() + chrono::Duration::days(5) - chrono::Duration::seconds(1);
        assert_eq!(
            h.record_failure(almost, DISABLE_AFTER),
            HealthVerdict::Failing { since: t0() }
        );
        assert_eq!(h.record_success(), HealthVerdict::Healthy);
        let restart = t0() + chrono::Duration::days(5);
        assert_eq!(
            h.record_failure(restart, DISABLE_AFTER),
            HealthVerdict::Failing { since: restart }
        );
        assert_eq!(
            h.record_failure(restart + chrono::Duration::days(5), DISABLE_AFTER),
            HealthVerdict::Disable { since: restart }
        );
    }
}
