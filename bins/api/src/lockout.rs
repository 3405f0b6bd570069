//! Back-off and temporary bans after failed authentication, and the fraud feed of those
//! failures.
//!
//! Every failed login counts against two subjects: the client IP (per /64 for IPv6, as the
//! rate limiter counts) and the account (a SHA-256 of the normalized e-mail, so no address is
//! written to Redis). Every rejected credential on an authenticated route (bad JWT, unknown
//! or revoked API key) counts against the client IP. The [`LockoutPolicy`] in
//! [`AuthConfig::lockout`](crate::config::auth::AuthConfig::lockout) turns counts into
//! blocks: by default 3 free failures, then 1 s, 2 s, 4 s … up to 5 min, and a 15-minute ban
//! from the 10th failure (failures are forgotten after 15 quiet minutes).
//!
//! While a subject is blocked:
//! - a login answers 429 `RATE_LIMITED` with `Retry-After` **before** the password is
//!   checked, so guesses made during a block are never evaluated;
//! - a request to an authenticated route from a blocked IP answers 429 once this replica
//!   has seen the block (the check costs no I/O: replicas learn blocks from the failures
//!   they record, and a valid credential is not refused on another replica's word).
//!
//! A successful login forgets the account's failures (not the IP's). Reaching the ban
//! writes a HIGH `auth.banned` audit row. Counts live in Redis ([`RedisFailureTracker`],
//! shared by every replica); while Redis is unreachable each replica counts on its own
//! ([`MemoryFailureTracker`]), so the protection degrades to per replica, never to none.
//!
//! Each failure is also sent, off the request path, to the fraud engine as an
//! `auth_failure` event (rules `auth_failures_principal` and `auth_failures_ip`); the
//! alerts it raises become rows of `transaction_monitoring`, which the worker delivers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use chrono::Utc;
use haven_core::ErrorCode;
use haven_fraud::{AlertStore, AuthFailureEvent, Engine, Event};
use haven_resilience::{
    FailureOutcome, FailureTracker, LockoutPolicy, MemoryFailureTracker, RedisFailureTracker,
};
use uuid::Uuid;

use crate::error::ApiError;
use crate::ratelimit::bucket_of;

/// How long a Redis call of the tracker may take before the replica counts on its own.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// Known blocks kept before expired ones are swept.
const KNOWN_BLOCKS_SWEEP_ABOVE: usize = 10_000;

/// The subject of an IP: `ip:<address or /64>`.
pub fn ip_subject(ip: IpAddr) -> String {
    format!("ip:{}", bucket_of(ip))
}

/// The subject of an account: `account:<first 128 bits of SHA-256(lower-cased e-mail)>`.
pub fn account_subject(email: &str) -> String {
    let normalized = email.trim().to_lowercase();
    let digest = ring::digest::digest(&ring::digest::SHA256, normalized.as_bytes());
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("account:{hex}")
}

/// Sends authentication failures to the fraud engine and stores the alerts it raises.
pub struct FraudFeed {
    engine: Engine,
    alerts: Arc<dyn AlertStore>,
}

impl std::fmt::Debug for FraudFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FraudFeed")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl FraudFeed {
    /// A feed evaluating with `engine` and storing alerts in `alerts`.
    pub fn new(engine: Engine, alerts: Arc<dyn AlertStore>) -> Self {
        Self { engine, alerts }
    }

    /// Evaluates one failure of `principal` from `ip` and stores the resulting alerts;
    /// returns how many were raised. Failures are logged, never raised: the feed must not
    /// decide whether a request succeeds.
    pub async fn report(&self, principal: String, ip: IpAddr) -> usize {
        let event = Event::AuthFailure(AuthFailureEvent {
            event_id: Uuid::now_v7().to_string(),
            principal,
            ip,
            ts: Utc::now(),
        });
        let alerts = match self.engine.evaluate(&event).await {
            Ok(alerts) => alerts,
            Err(error) => {
                tracing::warn!(%error, "fraud evaluation of an authentication failure failed");
                return 0;
            }
        };
        let mut stored = 0;
        for alert in &alerts {
            match self.alerts.insert(alert).await {
                Ok(_) => stored += 1,
                Err(error) => tracing::error!(
                    %error,
                    alert_id = %alert.id,
                    rule = %alert.rule_id,
                    "fraud alert for authentication failures could not be stored"
                ),
            }
        }
        stored
    }
}

/// The lockout state shared by every worker thread of the api.
pub struct AuthGuard {
    shared: Option<RedisFailureTracker>,
    local: MemoryFailureTracker,
    known_blocks: Mutex<HashMap<String, Instant>>,
    fraud: Option<Arc<FraudFeed>>,
}

impl std::fmt::Debug for AuthGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthGuard")
            .field("policy", self.local.policy())
            .field("shared", &self.shared.is_some())
            .field("fraud", &self.fraud.is_some())
            .finish_non_exhaustive()
    }
}

impl AuthGuard {
    /// A guard counting in Redis (`redis`: the pool and the key prefix, e.g.
    /// `haven:lockout:`), in process only when `redis` is `None`.
    pub fn new(
        policy: LockoutPolicy,
        redis: Option<(deadpool_redis::Pool, String)>,
        fraud: Option<FraudFeed>,
    ) -> anyhow::Result<Self> {
        let shared = redis
            .map(|(pool, prefix)| RedisFailureTracker::new(pool, prefix, policy, REDIS_TIMEOUT))
            .transpose()?;
        Ok(Self {
            shared,
            local: MemoryFailureTracker::new(policy)?,
            known_blocks: Mutex::default(),
            fraud: fraud.map(Arc::new),
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &LockoutPolicy {
        self.local.policy()
    }

    /// How long the most blocked of `subjects` stays blocked (asks Redis).
    pub async fn blocked(&self, subjects: &[String]) -> Option<Duration> {
        let left = match &self.shared {
            Some(shared) => match shared.blocked(subjects).await {
                Ok(left) => left,
                Err(error) => {
                    tracing::warn!(%error, "lockout store unavailable; counting per replica");
                    self.local.blocked(subjects).await.ok().flatten()
                }
            },
            None => self.local.blocked(subjects).await.ok().flatten(),
        };
        if let Some(left) = left {
            self.learn(subjects, left);
        }
        left
    }

    /// A block this replica already knows of for `subject` (no I/O).
    pub fn known_block(&self, subject: &str) -> Option<Duration> {
        let now = Instant::now();
        let known = self
            .known_blocks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        known
            .get(subject)?
            .checked_duration_since(now)
            .filter(|left| !left.is_zero())
    }

    /// Records a failure of `principal` from `ip` against `subjects`, and sends it to the
    /// fraud feed in the background.
    pub async fn failed(
        &self,
        subjects: &[String],
        principal: String,
        ip: IpAddr,
    ) -> FailureOutcome {
        let outcome = match &self.shared {
            Some(shared) => match shared.record_failure(subjects).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::warn!(%error, "lockout store unavailable; counting per replica");
                    self.record_locally(subjects).await
                }
            },
            None => self.record_locally(subjects).await,
        };
        if let Some(left) = outcome.blocked_for {
            self.learn(subjects, left);
            tracing::warn!(
                security_event = if outcome.banned_now { "auth_ban" } else { "auth_backoff" },
                failures = outcome.failures,
                blocked_secs = left.as_secs_f64(),
                %ip,
                "repeated authentication failures; blocked"
            );
        }
        if let Some(feed) = &self.fraud {
            let feed = feed.clone();
            tokio::spawn(async move {
                feed.report(principal, ip).await;
            });
        }
        outcome
    }

    /// Forgets `subject`'s failures (after a successful login).
    pub async fn succeeded(&self, subject: &str) {
        if let Some(shared) = &self.shared
            && let Err(error) = shared.reset(subject).await
        {
            tracing::warn!(%error, "lockout store unavailable; the account's failures stay counted");
        }
        let _ = self.local.reset(subject).await;
        self.known_blocks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(subject);
    }

    async fn record_locally(&self, subjects: &[String]) -> FailureOutcome {
        self.local
            .record_failure(subjects)
            .await
            .unwrap_or_default()
    }

    fn learn(&self, subjects: &[String], left: Duration) {
        let now = Instant::now();
        let until = now + left;
        let mut known = self
            .known_blocks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if known.len() > KNOWN_BLOCKS_SWEEP_ABOVE {
            known.retain(|_, until| *until > now);
        }
        for subject in subjects {
            let entry = known.entry(subject.clone()).or_insert(until);
            *entry = (*entry).max(until);
        }
    }
}

/// 429 `RATE_LIMITED` with `Retry-After` for a blocked caller.
pub fn blocked_response(left: Duration) -> HttpResponse {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    let secs = secs.max(1);
    let mut response = ApiError::new(
        ErrorCode::RateLimited,
        format!("too many failed authentication attempts; retry in {secs} s"),
    )
    .error_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_subjects_ignore_case_and_spaces_and_hide_the_address() {
        let a = account_subject(" Alice@Example.com ");
        assert_eq!(a, account_subject("alice@example.com"));
        assert_ne!(a, account_subject("bob@example.com"));
        assert!(!a.contains("alice"));
        assert_eq!(a.len(), "account:".len() + 32);
    }

    #[test]
    fn ipv6_clients_share_a_subject_per_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(ip_subject(a), ip_subject(b));
        assert_eq!(
            ip_subject("203.0.113.7".parse().unwrap()),
            "ip:203.0.113.7/32"
        );
    }

    #[tokio::test]
    async fn a_recorded_block_is_known_without_io() {
        let guard = AuthGuard::new(LockoutPolicy::default(), None, None).unwrap();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let subjects = vec![ip_subject(ip)];
        for _ in 0..3 {
            assert!(
                guard
                    .failed(&subjects, "x".into(), ip)
                    .await
                    .blocked_for
                    .is_none()
            );
        }
        assert!(guard.known_block(&subjects[0]).is_none());
        assert!(
            guard
                .failed(&subjects, "x".into(), ip)
                .await
                .blocked_for
                .is_some()
        );
        assert!(guard.known_block(&subjects[0]).is_some());
        assert!(guard.blocked(&subjects).await.is_some());
    }

    #[test]
    fn blocked_responses_carry_retry_after_rounded_up() {
        let response = blocked_response(Duration::from_millis(1500));
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers().get(RETRY_AFTER).unwrap(), "2");
    }
}
