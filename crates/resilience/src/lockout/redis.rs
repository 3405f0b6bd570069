use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::Pool;
use redis::Script;

use super::{FailureOutcome, FailureTracker, LockoutPolicy};
use crate::{Error, Result};

/// Records one failure for every key. KEYS = subjects; ARGV = free failures, base delay
/// (ms), max delay (ms), ban after, ban length (ms), window (ms). Each key is a hash
/// `{n: failures, u: blocked until (ms, server clock)}` expiring when both the window and
/// the block are over. Returns {highest count, longest block left (ms), banned now}.
const RECORD: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local free = tonumber(ARGV[1])
local base = tonumber(ARGV[2])
local max_delay = tonumber(ARGV[3])
local ban_after = tonumber(ARGV[4])
local ban = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local worst_n, worst_left, banned = 0, 0, 0
for _, key in ipairs(KEYS) do
  local n = redis.call('HINCRBY', key, 'n', 1)
  local block = 0
  if n >= ban_after then
    block = ban
  elseif n > free then
    block = base * (2 ^ (n - free - 1))
    if block > max_delay then block = max_delay end
  end
  local blocked_until = tonumber(redis.call('HGET', key, 'u') or '0')
  if block > 0 and now + block > blocked_until then
    blocked_until = now + block
    redis.call('HSET', key, 'u', string.format('%.0f', blocked_until))
  end
  local left = blocked_until - now
  if left < 0 then left = 0 end
  local ttl = window
  if left > ttl then ttl = left end
  redis.call('PEXPIRE', key, string.format('%.0f', ttl))
  if n > worst_n then worst_n = n end
  if left > worst_left then worst_left = left end
  if n == ban_after then banned = 1 end
end
return {worst_n, string.format('%.0f', worst_left), banned}
"#;

/// The longest block left among KEYS, in ms on the server clock (0 when none is blocked).
const BLOCKED: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local worst = 0
for _, key in ipairs(KEYS) do
  local u = tonumber(redis.call('HGET', key, 'u') or '0')
  if u - now > worst then worst = u - now end
end
return string.format('%.0f', worst)
"#;

/// A [`FailureTracker`] shared by every replica: one Redis hash per subject, read and
/// written by one Lua call per operation on the Redis server's clock, so concurrent
/// failures on several replicas all count and blocks end at the same moment everywhere.
///
/// Every operation must finish within the configured timeout, else it fails with
/// [`Error::RedisTimeout`]; callers usually fall back to a [`super::MemoryFailureTracker`].
#[derive(Clone)]
pub struct RedisFailureTracker {
    pool: Pool,
    prefix: String,
    policy: LockoutPolicy,
    timeout: Duration,
    record: Script,
    blocked: Script,
}

impl std::fmt::Debug for RedisFailureTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFailureTracker")
            .field("prefix", &self.prefix)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisFailureTracker {
    /// A tracker keeping subjects under `prefix`; each call must finish within `timeout`.
    pub fn new(
        pool: Pool,
        prefix: impl Into<String>,
        policy: LockoutPolicy,
        timeout: Duration,
    ) -> Result<Self> {
        policy.validate()?;
        Ok(Self {
            pool,
            prefix: prefix.into(),
            policy,
            timeout,
            record: Script::new(RECORD),
            blocked: Script::new(BLOCKED),
        })
    }

    async fn bounded<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| Error::RedisTimeout {
                after: self.timeout,
            })?
    }

    fn invocation<'a>(
        &self,
        script: &'a Script,
        subjects: &[String],
    ) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for subject in subjects {
            invocation.key(format!("{}{subject}", self.prefix));
        }
        invocation
    }
}

#[async_trait]
impl FailureTracker for RedisFailureTracker {
    fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    async fn blocked(&self, subjects: &[String]) -> Result<Option<Duration>> {
        if subjects.is_empty() {
            return Ok(None);
        }
        let left: u64 = self
            .bounded(async {
                let mut conn = self.pool.get().await?;
                Ok(self
                    .invocation(&self.blocked, subjects)
                    .invoke_async(&mut conn)
                    .await?)
            })
            .await?;
        Ok((left > 0).then(|| Duration::from_millis(left)))
    }

    async fn record_failure(&self, subjects: &[String]) -> Result<FailureOutcome> {
        if subjects.is_empty() {
            return Ok(FailureOutcome::default());
        }
        let p = &self.policy;
        let (failures, left, banned): (u32, u64, u8) = self
            .bounded(async {
                let mut conn = self.pool.get().await?;
                let mut invocation = self.invocation(&self.record, subjects);
                invocation
                    .arg(p.free_failures)
                    .arg(millis(p.base_delay))
                    .arg(millis(p.max_delay))
                    .arg(p.ban_after)
                    .arg(millis(p.ban_for))
                    .arg(millis(p.window));
                Ok(invocation.invoke_async(&mut conn).await?)
            })
            .await?;
        Ok(FailureOutcome {
            failures,
            blocked_for: (left > 0).then(|| Duration::from_millis(left)),
            banned_now: banned == 1,
        })
    }

    async fn reset(&self, subject: &str) -> Result<()> {
        self.bounded(async {
            let mut conn = self.pool.get().await?;
            let _: u32 = redis::cmd("DEL")
                .arg(format!("{}{subject}", self.prefix))
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
        .await
    }
}
