use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use deadpool_redis::Pool;
use redis::Script;

use super::{RateDecision, RateQuota};
use crate::{Error, Result};

/// GCRA for up to ARGV[3] requests in one call. KEYS[1] = theoretical arrival time (µs,
/// server clock); ARGV[1] = emission interval (µs), ARGV[2] = burst, ARGV[3] = requests
/// wanted. Grants as many of them as the bucket holds right now (the j-th of a batch passes
/// when `tat + (j - 1) * interval - tau <= now`, exactly as j single calls would).
/// Returns {granted, remaining, retry_after_us, reset_us}.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local tau = interval * (burst - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tau
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
local granted = math.floor((now - allow_at) / interval) + 1
if granted > wanted then granted = wanted end
local new_tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
local remaining = math.floor((now + tau - new_tat) / interval) + 1
if remaining < 0 then remaining = 0 end
return {granted, remaining, 0, new_tat - now}
"#;

/// How a [`DistributedLimiter`] batches: each replica takes several requests' worth from the
/// shared bucket in one call and admits them locally.
///
/// A key starts at one request per call (exactly the unbatched behaviour and cost); each
/// time a replica uses up its lease before `ttl` the next call asks for twice as many, up to
/// the cap (`max`, and never more than a tenth of the burst), and halves again when a lease
/// expires unused.
///
/// **Tolerance.** Requests are charged to the shared bucket *before* they are admitted, so
/// over any long window the cluster never exceeds the quota's rate. Because a leased request
/// may be admitted up to `ttl` after it was charged, a window of length `w` can admit at
/// most `burst + w / interval` plus the leases outstanding — at most `replicas × cap` more.
/// Leased requests a replica does not use within `ttl` are lost, never returned: the other
/// replicas may see up to `replicas × (cap − 1)` fewer than the bound, never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The most requests one call takes (before the tenth-of-the-burst cap).
    pub max: u32,
    /// How long leased requests may wait to be admitted before they are dropped.
    pub ttl: Duration,
}

impl Default for LeaseConfig {
    /// Up to 64 requests per call, kept for 1 s.
    fn default() -> Self {
        Self {
            max: 64,
            ttl: Duration::from_secs(1),
        }
    }
}

/// One key's lease on this replica.
#[derive(Debug)]
struct Lease {
    /// Requests charged to the shared bucket and not admitted yet.
    tokens: u32,
    /// When the unused tokens are dropped (and when a cached refusal ends).
    expires: Instant,
    /// How many the next call asks for.
    next_batch: u32,
    /// `remaining` as the shared bucket reported it at the last call.
    shared_remaining: u32,
    /// When the shared bucket is full again, as of the last call.
    reset_at: Instant,
    /// A refusal of the shared bucket, repeated locally until `expires`.
    refused: Option<Instant>,
    /// Redis failed for this key moments ago: not asked again before then, so that the
    /// requests queued behind this lease fall back at once instead of one timeout each.
    down_until: Option<Instant>,
}

impl Lease {
    fn new(now: Instant) -> Self {
        Self {
            tokens: 0,
            expires: now,
            next_batch: 1,
            shared_remaining: 0,
            reset_at: now,
            refused: None,
            down_until: None,
        }
    }

    /// Admits one leased request, or answers a cached refusal, without I/O.
    fn take(&mut self, limit: u32, now: Instant) -> Option<RateDecision> {
        if now >= self.expires {
            if self.tokens > 0 {
                // Unused until it expired: demand is lower than the batch.
                self.next_batch = (self.next_batch / 2).max(1);
            }
            self.tokens = 0;
            self.refused = None;
            return None;
        }
        if let Some(allowed_at) = self.refused {
            return Some(RateDecision {
                allowed: false,
                limit,
                remaining: 0,
                reset: self.reset_at.saturating_duration_since(now),
                retry_after: Some(allowed_at.saturating_duration_since(now)),
            });
        }
        if self.tokens == 0 {
            return None;
        }
        self.tokens -= 1;
        Some(RateDecision {
            allowed: true,
            limit,
            remaining: self.shared_remaining.saturating_add(self.tokens),
            reset: self.reset_at.saturating_duration_since(now),
            retry_after: None,
        })
    }
}

/// The leases of one replica, with idle ones pruned once there are many.
#[derive(Debug)]
struct Leases {
    config: LeaseConfig,
    cap: u32,
    table: Mutex<LeaseTable>,
}

#[derive(Debug)]
struct LeaseTable {
    keys: HashMap<String, Arc<tokio::sync::Mutex<Lease>>>,
    next_prune: Instant,
}

/// How long a key whose Redis call failed is not asked again (its requests fall back).
const DOWN_PAUSE: Duration = Duration::from_millis(500);

/// Leases kept before expired ones are pruned (at most once per ttl).
const LEASES_SOFT_CAP: usize = 10_000;

impl Leases {
    fn lease(&self, key: &str, now: Instant) -> Arc<tokio::sync::Mutex<Lease>> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lease) = table.keys.get(key) {
            return lease.clone();
        }
        if table.keys.len() >= LEASES_SOFT_CAP && now >= table.next_prune {
            // A lease nobody holds and whose tokens expired is worth nothing.
            table.keys.retain(|_, lease| {
                Arc::strong_count(lease) > 1
                    || lease.try_lock().map_or(true, |lease| lease.expires > now)
            });
            table.next_prune = now + self.config.ttl;
        }
        let lease = Arc::new(tokio::sync::Mutex::new(Lease::new(now)));
        table.keys.insert(key.to_owned(), lease.clone());
        lease
    }

    fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .len()
    }
}

/// A GCRA limiter shared by every replica: the bucket state is one Redis key per limited
/// key, read and written by a single Lua call on the Redis server's clock.
///
/// By default every decision is one call. With [`with_leases`](Self::with_leases) a
/// replica takes a batch of requests per call for a busy key and admits them locally (see
/// [`LeaseConfig`] for the bound this keeps); a refusal is then also repeated locally until
/// its `Retry-After` (at most the lease ttl), so a client hammering a used-up bucket costs
/// no Redis call per request, and after a failed call the key's requests get an error at
/// once for 500 ms (the caller's fallback decides) instead of queueing for one timeout each.
///
/// **Invariant:** however many replicas share it, requests for one key pass at most
/// `burst` at once and then one per emission interval, measured on the Redis clock (with
/// leases: plus at most the leases outstanding, [`LeaseConfig`]).
#[derive(Clone)]
pub struct DistributedLimiter {
    pool: Pool,
    prefix: String,
    quota: RateQuota,
    interval_us: u64,
    timeout: Duration,
    script: Script,
    leases: Option<Arc<Leases>>,
    calls: Arc<AtomicU64>,
}

impl std::fmt::Debug for DistributedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedLimiter")
            .field("prefix", &self.prefix)
            .field("quota", &self.quota)
            .field("leases", &self.leases.as_ref().map(|l| l.config))
            .finish_non_exhaustive()
    }
}

impl DistributedLimiter {
    /// A limiter storing buckets under `prefix`; each decision must finish within `timeout`.
    pub fn new(
        pool: Pool,
        prefix: impl Into<String>,
        quota: RateQuota,
        timeout: Duration,
    ) -> Result<Self> {
        let interval = quota.emission_interval()?;
        Ok(Self {
            pool,
            prefix: prefix.into(),
            quota,
            interval_us: u64::try_from(interval.as_micros()).unwrap_or(u64::MAX),
            timeout,
            script: Script::new(GCRA),
            leases: None,
            calls: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The same limiter taking batches of requests per call for busy keys ([`LeaseConfig`]).
    pub fn with_leases(self, config: LeaseConfig) -> Result<Self> {
        if config.max == 0 || config.ttl.is_zero() {
            return Err(Error::InvalidConfig {
                field: "leases",
                reason: "a lease takes at least one request and lives a while",
            });
        }
        let cap = config.max.min(self.quota.burst.get() / 10).max(1);
        Ok(Self {
            leases: Some(Arc::new(Leases {
                config,
                cap,
                table: Mutex::new(LeaseTable {
                    keys: HashMap::new(),
                    next_prune: Instant::now(),
                }),
            })),
            ..self
        })
    }

    /// The quota.
    pub fn quota(&self) -> RateQuota {
        self.quota
    }

    /// The most requests one call takes for a key (1 without leases).
    pub fn batch_cap(&self) -> u32 {
        self.leases.as_ref().map_or(1, |l| l.cap)
    }

    /// Calls made to Redis so far by this limiter and its clones.
    pub fn redis_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Keys holding a lease on this replica (0 without leases).
    pub fn leased_keys(&self) -> usize {
        self.leases.as_ref().map_or(0, |l| l.len())
    }

    /// Decides one request for `key`: one round trip, or none while this replica holds a
    /// lease for it.
    pub async fn check(&self, key: &str) -> Result<RateDecision> {
        let Some(leases) = &self.leases else {
            return self.charge(key, 1).await.map(|(decision, _)| decision);
        };
        let limit = self.quota.burst.get();
        let now = Instant::now();
        let lease = leases.lease(key, now);
        let mut lease = lease.lock().await;
        // An unexpired lease that ran dry: the demand outgrew the batch.
        let busy = now < lease.expires;
        if let Some(decision) = lease.take(limit, now) {
            return Ok(decision);
        }
        if lease.down_until.is_some_and(|until| now < until) {
            return Err(Error::Unavailable {
                resource: format!("rate limit bucket {}{key}", self.prefix),
            });
        }
        let wanted = lease.next_batch.min(leases.cap);
        let (decision, granted) = match self.charge(key, wanted).await {
            Ok(charged) => charged,
            Err(error) => {
                lease.down_until = Some(Instant::now() + DOWN_PAUSE);
                return Err(error);
            }
        };
        lease.down_until = None;
        let now = Instant::now();
        lease.expires = now + leases.config.ttl;
        lease.reset_at = now + decision.reset;
        lease.shared_remaining = decision.remaining;
        if let Some(retry_after) = decision.retry_after {
            lease.refused = Some(now + retry_after);
            lease.expires = now + retry_after.min(leases.config.ttl);
            return Ok(decision);
        }
        lease.refused = None;
        // This request takes the first of the batch; the rest wait here.
        lease.tokens = granted - 1;
        if busy && granted == wanted {
            lease.next_batch = wanted.saturating_mul(2).min(leases.cap);
        }
        Ok(RateDecision {
            remaining: decision.remaining.saturating_add(lease.tokens),
            ..decision
        })
    }

    /// Takes up to `wanted` requests from the shared bucket: the decision for the first of
    /// them and how many were granted.
    async fn charge(&self, key: &str, wanted: u32) -> Result<(RateDecision, u32)> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let call = async {
            let mut conn = self.pool.get().await?;
            let reply: (u32, u32, u64, u64) = self
                .script
                .key(format!("{}{key}", self.prefix))
                .arg(self.interval_us)
                .arg(self.quota.burst.get())
                .arg(wanted)
                .invoke_async(&mut conn)
                .await?;
            Ok::<_, Error>(reply)
        };
        let (granted, remaining, retry_us, reset_us) =
            match tokio::time::timeout(self.timeout, call).await {
                Ok(reply) => reply?,
                Err(_) => {
                    return Err(Error::RedisTimeout {
                        after: self.timeout,
                    });
                }
            };
        let decision = RateDecision {
            allowed: granted > 0,
            limit: self.quota.burst.get(),
            remaining,
            reset: Duration::from_micros(reset_us),
            retry_after: (granted == 0).then(|| Duration::from_micros(retry_us)),
        };
        Ok((decision, granted))
    }
}
