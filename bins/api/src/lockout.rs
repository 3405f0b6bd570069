//! Back-off and temporary bans after failed authentication, and the fraud feed of those
//! failures.
//!
//! Subjects (no e-mail address is ever written to Redis: accounts are a SHA-256 digest):
//!
//! | subject | counts | blocks |
//! |---|---|---|
//! | `ip:<network>` | every failed login and rejected credential from a client network (an IPv4 address, an IPv6 /56 by default) | every login and authenticated request from that network |
//! | `login:<account>:<network>` | failed logins for one account from one network | logins for that account from that network |
//!
//! There is deliberately no account-wide block: failures from other networks must not lock
//! the account's owner out of a correct login from a network that has not failed. Guessing
//! one account from many networks costs each network its own back-off, the password-hash
//! gate bounds the guesses per second, and the fraud rule `auth_failures_principal` counts
//! the account's failures across networks and raises an alert for operators.
//!
//! The [`LockoutPolicy`] in [`AuthConfig::lockout`](crate::config::auth::AuthConfig::lockout)
//! turns counts into blocks: by default 3 free failures, then 1 s, 2 s, 4 s … up to 5 min,
//! and a 15-minute ban from the 10th failure (failures are forgotten after 15 quiet
//! minutes). Logins from `HAVEN_AUTH_TRUSTED_NETWORKS` are never blocked (their failures
//! are still counted and reported), so an administrator can always log in from there.
//!
//! While a subject is blocked:
//! - a login answers 429 `RATE_LIMITED` with `Retry-After` **before** the password is
//!   checked, so guesses made during a block are never evaluated;
//! - a request to an authenticated route from a blocked network answers 429 once this
//!   replica has seen the block (no I/O: replicas learn blocks from the failures they
//!   record, and a valid credential is not refused on another replica's word).
//!
//! Each failure, and each attempt refused while blocked, is a signal for the fraud engine
//! (`auth_failure` events; rules `auth_failures_principal` and `auth_failures_ip`). Signals
//! go through a bounded in-process queue drained by one task ([`FraudQueue`]): a flood of
//! failures never spawns a task each, and beyond the queue's capacity signals are dropped
//! and counted. The alerts become rows of `transaction_monitoring`, which the worker
//! delivers.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
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
use ipnet::IpNet;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::error::ApiError;

/// How long a Redis call of the tracker may take before the replica counts on its own.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// Blocks this replica remembers without I/O; the oldest are forgotten first.
pub const KNOWN_BLOCKS_CAP: usize = 10_000;
/// Fraud signals waiting to be evaluated before new ones are dropped.
pub const FRAUD_QUEUE_CAPACITY: usize = 1_024;

/// The subject of a client network: `ip:<network>`.
pub fn ip_subject(net: IpNet) -> String {
    format!("ip:{net}")
}

/// The subject of an account: `account:<first 128 bits of SHA-256(lower-cased e-mail)>`.
pub fn account_subject(email: &str) -> String {
    format!("account:{}", email_digest(email))
}

/// The first 128 bits of SHA-256 of the trimmed, lower-cased e-mail, in hex: how failed
/// logins are recorded without the address itself.
pub fn email_digest(email: &str) -> String {
    let normalized = email.trim().to_lowercase();
    let digest = ring::digest::digest(&ring::digest::SHA256, normalized.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The subject of logins for one account from one network: `login:<digest>:<network>`.
pub fn login_subject(email: &str, net: IpNet) -> String {
    format!("login:{}:{net}", email_digest(email))
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

/// One authentication failure (or refused attempt) waiting for the fraud engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudSignal {
    /// Who the attempt claimed to be (an account digest, an API key prefix, `bearer:<net>`).
    pub principal: String,
    /// The client network's address.
    pub ip: IpAddr,
}

/// A bounded queue of fraud signals: [`FraudQueue::push`] never waits and never spawns;
/// when the queue is full the signal is dropped and counted.
#[derive(Debug)]
pub struct FraudQueue {
    tx: mpsc::Sender<FraudSignal>,
    dropped: AtomicU64,
}

impl FraudQueue {
    /// A queue of `capacity` signals and the receiver to drain it with
    /// ([`FraudQueue::drain`] or by hand).
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<FraudSignal>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                tx,
                dropped: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Queues a signal; `false` when the queue was full (or closed) and it was dropped.
    pub fn push(&self, signal: FraudSignal) -> bool {
        match self.tx.try_send(signal) {
            Ok(()) => true,
            Err(_) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                metrics::counter!(crate::metrics::FRAUD_SIGNALS_DROPPED).increment(1);
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped,
                        "fraud signal queue full; authentication failures dropped"
                    );
                }
                false
            }
        }
    }

    /// Signals dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Evaluates queued signals one at a time until every sender is gone.
    pub async fn drain(feed: FraudFeed, mut rx: mpsc::Receiver<FraudSignal>) {
        while let Some(signal) = rx.recv().await {
            feed.report(signal.principal, signal.ip).await;
        }
    }
}

/// Blocks this replica knows of, bounded: beyond [`KNOWN_BLOCKS_CAP`] subjects the oldest
/// learned is forgotten (each insertion evicts at most a few entries; nothing sweeps the
/// whole map).
#[derive(Debug, Default)]
struct KnownBlocks {
    until: HashMap<String, Instant>,
    learned: VecDeque<(String, Instant)>,
}

impl KnownBlocks {
    fn get(&self, subject: &str, now: Instant) -> Option<Duration> {
        self.until
            .get(subject)?
            .checked_duration_since(now)
            .filter(|left| !left.is_zero())
    }

    fn learn(&mut self, subject: &str, until: Instant, cap: usize) {
        let entry = self.until.entry(subject.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
        self.learned.push_back((subject.to_owned(), *entry));
        // `learned` may hold stale copies of re-learned subjects; an entry removes its
        // subject only while it is still the current one.
        while self.until.len() > cap || self.learned.len() > cap.saturating_mul(2) {
            let Some((old, at)) = self.learned.pop_front() else {
                break;
            };
            if self.until.get(&old) == Some(&at) {
                self.until.remove(&old);
            }
        }
    }

    fn forget(&mut self, subject: &str) {
        self.until.remove(subject);
    }

    fn len(&self) -> usize {
        self.until.len()
    }
}

/// The lockout state shared by every worker thread of the api.
pub struct AuthGuard {
    shared: Option<RedisFailureTracker>,
    local: MemoryFailureTracker,
    known_blocks: Mutex<KnownBlocks>,
    known_blocks_cap: usize,
    fraud: Option<FraudQueue>,
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
    /// `haven:lockout:`), in process only when `redis` is `None`. With a fraud feed, the
    /// task draining its queue is spawned on the current Tokio runtime.
    pub fn new(
        policy: LockoutPolicy,
        redis: Option<(deadpool_redis::Pool, String)>,
        fraud: Option<FraudFeed>,
    ) -> anyhow::Result<Self> {
        let shared = redis
            .map(|(pool, prefix)| RedisFailureTracker::new(pool, prefix, policy, REDIS_TIMEOUT))
            .transpose()?;
        let fraud = fraud.map(|feed| {
            let (queue, rx) = FraudQueue::new(FRAUD_QUEUE_CAPACITY);
            tokio::spawn(FraudQueue::drain(feed, rx));
            queue
        });
        Ok(Self {
            shared,
            local: MemoryFailureTracker::new(policy)?,
            known_blocks: Mutex::default(),
            known_blocks_cap: KNOWN_BLOCKS_CAP,
            fraud,
        })
    }

    /// Remembers at most `cap` known blocks (tests use a small cap).
    pub fn with_known_blocks_cap(mut self, cap: usize) -> Self {
        self.known_blocks_cap = cap.max(1);
        self
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
        self.known().get(subject, Instant::now())
    }

    /// How many blocks this replica remembers.
    pub fn known_blocks(&self) -> usize {
        self.known().len()
    }

    /// Records a failure against `subjects` and queues a fraud signal for `principal`.
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
        self.signal(principal, ip);
        outcome
    }

    /// Queues a fraud signal without counting a failure: an attempt refused while blocked
    /// or rate limited (no I/O; dropped when the queue is full).
    pub fn signal(&self, principal: String, ip: IpAddr) {
        if let Some(queue) = &self.fraud {
            queue.push(FraudSignal { principal, ip });
        }
    }

    /// Forgets `subject`'s failures (after a successful login).
    pub async fn succeeded(&self, subject: &str) {
        if let Some(shared) = &self.shared
            && let Err(error) = shared.reset(subject).await
        {
            tracing::warn!(%error, "lockout store unavailable; the subject's failures stay counted");
        }
        let _ = self.local.reset(subject).await;
        self.known().forget(subject);
    }

    async fn record_locally(&self, subjects: &[String]) -> FailureOutcome {
        self.local
            .record_failure(subjects)
            .await
            .unwrap_or_default()
    }

    fn known(&self) -> std::sync::MutexGuard<'_, KnownBlocks> {
        self.known_blocks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn learn(&self, subjects: &[String], left: Duration) {
        let until = Instant::now() + left;
        let mut known = self.known();
        for subject in subjects {
            known.learn(subject, until, self.known_blocks_cap);
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

    fn net(s: &str) -> IpNet {
        crate::ratelimit::network(s.parse().unwrap(), 56)
    }

    #[test]
    fn account_subjects_ignore_case_and_spaces_and_hide_the_address() {
        let a = account_subject(" Alice@Example.com ");
        assert_eq!(a, account_subject("alice@example.com"));
        assert_ne!(a, account_subject("bob@example.com"));
        assert!(!a.contains("alice"));
        assert_eq!(a.len(), "account:".len() + 32);
        let pair = login_subject("Alice@example.com", net("203.0.113.7"));
        assert_eq!(
            pair,
            format!("login:{}:203.0.113.7/32", email_digest("alice@example.com"))
        );
    }

    #[test]
    fn ipv6_clients_share_a_subject_per_56() {
        assert_eq!(
            ip_subject(net("2001:db8:1:2::1")),
            ip_subject(net("2001:db8:1:ff:ffff::9"))
        );
        assert_ne!(
            ip_subject(net("2001:db8:1:2::1")),
            ip_subject(net("2001:db8:1:100::1"))
        );
        assert_eq!(ip_subject(net("203.0.113.7")), "ip:203.0.113.7/32");
    }

    #[tokio::test]
    async fn a_recorded_block_is_known_without_io() {
        let guard = AuthGuard::new(LockoutPolicy::default(), None, None).unwrap();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let subjects = vec![ip_subject(net("203.0.113.7"))];
        for _ in 0..3 {
            let outcome = guard.failed(&subjects, "x".into(), ip).await;
            assert!(outcome.blocked_for.is_none());
        }
        assert!(guard.known_block(&subjects[0]).is_none());
        let outcome = guard.failed(&subjects, "x".into(), ip).await;
        assert!(outcome.blocked_for.is_some());
        assert!(guard.known_block(&subjects[0]).is_some());
        assert!(guard.blocked(&subjects).await.is_some());
    }

    /// The known-block map stays within its cap however many subjects fail, keeping the
    /// newest; re-learning a subject does not let stale copies evict it.
    #[test]
    fn known_blocks_are_bounded_and_keep_the_newest() {
        let mut known = KnownBlocks::default();
        let now = Instant::now();
        let until = now + Duration::from_secs(600);
        for i in 0..25_000 {
            known.learn(&format!("ip:{i}"), until, 1_000);
            if i % 7 == 0 {
                known.learn("ip:hot", until + Duration::from_secs(i), 1_000);
            }
        }
        assert!(known.len() <= 1_000, "{} known blocks", known.len());
        assert!(known.learned.len() <= 2_000);
        assert!(known.get("ip:24999", now).is_some(), "the newest is kept");
        assert!(known.get("ip:0", now).is_none(), "the oldest is forgotten");
        assert!(
            known.get("ip:hot", now).is_some(),
            "a re-learned subject stays"
        );
    }

    #[tokio::test]
    async fn the_guard_forgets_its_oldest_blocks_beyond_its_cap() {
        let policy = LockoutPolicy {
            free_failures: 0,
            ..LockoutPolicy::default()
        };
        let guard = AuthGuard::new(policy, None, None)
            .unwrap()
            .with_known_blocks_cap(100);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for i in 0..1_000 {
            guard.failed(&[format!("ip:{i}")], "x".into(), ip).await;
        }
        assert_eq!(guard.known_blocks(), 100);
        assert!(guard.known_block("ip:999").is_some());
    }

    /// The fraud feed is a queue with a cap: pushing past it drops and counts, nothing waits.
    #[test]
    fn the_fraud_queue_drops_beyond_its_capacity() {
        let (queue, mut rx) = FraudQueue::new(4);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let accepted = (0..100)
            .filter(|i| {
                queue.push(FraudSignal {
                    principal: format!("p{i}"),
                    ip,
                })
            })
            .count();
        assert_eq!(accepted, 4);
        assert_eq!(queue.dropped(), 96);
        assert_eq!(rx.try_recv().unwrap().principal, "p0");
    }

    #[test]
    fn blocked_responses_carry_retry_after_rounded_up() {
        let response = blocked_response(Duration::from_millis(1500));
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers().get(RETRY_AFTER).unwrap(), "2");
    }
}
