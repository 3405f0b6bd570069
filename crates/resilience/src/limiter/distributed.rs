use std::time::Duration;

use deadpool_redis::Pool;
use redis::Script;

use super::{RateDecision, RateQuota};
use crate::{Error, Result};

/// GCRA in one call. KEYS[1] = theoretical arrival time (µs, server clock);
/// ARGV[1] = emission interval (µs), ARGV[2] = burst.
/// Returns {allowed, remaining, retry_after_us, reset_us}.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tau = interval * (burst - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tau
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
local remaining = math.floor((now + tau - new_tat) / interval) + 1
if remaining < 0 then remaining = 0 end
return {1, remaining, 0, new_tat - now}
"#;

/// A GCRA limiter shared by every replica: the bucket state is one Redis key per limited
/// key, read and written by a single Lua call on the Redis server's clock.
///
/// **Invariant:** however many replicas share it, requests for one key pass at most
/// `burst` at once and then one per emission interval, measured on the Redis clock.
#[derive(Clone)]
pub struct DistributedLimiter {
    pool: Pool,
    prefix: String,
    quota: RateQuota,
    interval_us: u64,
    timeout: Duration,
    script: Script,
}

impl std::fmt::Debug for DistributedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedLimiter")
            .field("prefix", &self.prefix)
            .field("quota", &self.quota)
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
        })
    }

    /// The quota.
    pub fn quota(&self) -> RateQuota {
        self.quota
    }

    /// Decides one request for `key` (one round trip).
    pub async fn check(&self, key: &str) -> Result<RateDecision> {
        let call = async {
            let mut conn = self.pool.get().await?;
            let reply: (u8, u32, u64, u64) = self
                .script
                .key(format!("{}{key}", self.prefix))
                .arg(self.interval_us)
                .arg(self.quota.burst.get())
                .invoke_async(&mut conn)
                .await?;
            Ok::<_, Error>(reply)
        };
        let (allowed, remaining, retry_us, reset_us) =
            match tokio::time::timeout(self.timeout, call).await {
                Ok(reply) => reply?,
                Err(_) => {
                    return Err(Error::RedisTimeout {
                        after: self.timeout,
                    });
                }
            };
        Ok(RateDecision {
            allowed: allowed == 1,
            limit: self.quota.burst.get(),
            remaining,
            reset: Duration::from_micros(reset_us),
            retry_after: (allowed != 1).then(|| Duration::from_micros(retry_us)),
        })
    }
}
