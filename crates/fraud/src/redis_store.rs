//! [`WindowStore`] in Redis: a sorted set per window (score = event time in ms, member =
//! `value:event_id`), `SET NX` marks, and a cooldown string per (rule, subject). Every
//! operation is one round trip (one Lua script or one command), atomic on its key.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::Pool;
use redis::{Script, Value};

use crate::window::{StoreError, WindowEntry, WindowRead, WindowSnapshot, WindowStore};

const RECORD: &str = r"
local key = KEYS[1]
local ts = tonumber(ARGV[1])
local retain = tonumber(ARGV[4])
local prev = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
local prev_max = ''
local newest = ts
if #prev > 0 then
  prev_max = prev[2]
  local p = tonumber(prev[2])
  if p > newest then newest = p end
end
redis.call('ZADD', key, ts, ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', newest - retain))
redis.call('PEXPIRE', key, ARGV[6])
local window = tonumber(ARGV[3])
local e = ts
if newest > ts and newest - ts < window then e = newest end
local lower = '(' .. string.format('%.0f', e - window)
local upper = string.format('%.0f', e)
local count = redis.call('ZCOUNT', key, lower, upper)
local limit = tonumber(ARGV[5])
if limit > 0 then
  return {prev_max, count, redis.call('ZREVRANGEBYSCORE', key, upper, lower, 'WITHSCORES', 'LIMIT', 0, limit)}
end
return {prev_max, count}
";

const COOLDOWN: &str = r"
local last = redis.call('GET', KEYS[1])
if last then
  local d = tonumber(ARGV[1]) - tonumber(last)
  if d < 0 then d = -d end
  if d < tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
";

/// Extra wall-clock lifetime of window and cooldown keys beyond their event-time span, so
/// that ordinary delays between event time and processing never expire live state.
const GRACE_MS: i64 = 3_600_000;

/// The Redis [`WindowStore`].
#[derive(Clone)]
pub struct RedisWindowStore {
    pool: Pool,
    record: Script,
    cooldown: Script,
}

impl std::fmt::Debug for RedisWindowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWindowStore").finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

impl RedisWindowStore {
    /// A store on `pool`. Keys are used exactly as the [`Engine`](crate::Engine) builds them
    /// (give the engine a prefix to share a server).
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            record: Script::new(RECORD),
            cooldown: Script::new(COOLDOWN),
        }
    }

    async fn conn(&self) -> Result<deadpool_redis::Connection, StoreError> {
        self.pool.get().await.map_err(unavailable)
    }
}

fn corrupt(key: &str) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Double(d) => Some(format!("{d:.0}")),
        _ => None,
    }
}

fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        other => as_text(other)?.parse::<f64>().ok().map(|f| f as i64),
    }
}

#[async_trait]
impl WindowStore for RedisWindowStore {
    async fn record(
        &self,
        key: &str,
        entry: WindowEntry,
        window_ms: i64,
        retain_ms: i64,
        read: WindowRead,
    ) -> Result<WindowSnapshot, StoreError> {
        let limit = match read {
            WindowRead::Count => 0,
            WindowRead::Entries { limit } => limit.max(1),
        };
        let mut conn = self.conn().await?;
        let reply: Value = self
            .record
            .key(key)
            .arg(entry.ts_ms)
            .arg(format!("{}:{}", entry.value, entry.id))
            .arg(window_ms)
            .arg(retain_ms)
            .arg(limit)
            .arg(retain_ms.saturating_add(GRACE_MS))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let Value::Array(parts) = reply else {
            return Err(corrupt(key));
        };
        let previous_max_ts_ms = match parts.first().and_then(as_text) {
            Some(s) if s.is_empty() => None,
            Some(s) => Some(s.parse::<f64>().map_err(|_| corrupt(key))? as i64),
            None => return Err(corrupt(key)),
        };
        let count = parts.get(1).and_then(as_int).ok_or_else(|| corrupt(key))?;
        let mut entries = Vec::new();
        if let Some(Value::Array(items)) = parts.get(2) {
            for pair in items.chunks(2) {
                let [member, score] = pair else {
                    return Err(corrupt(key));
                };
                let member = as_text(member).ok_or_else(|| corrupt(key))?;
                let (value, id) = member.split_once(':').ok_or_else(|| corrupt(key))?;
                entries.push(WindowEntry {
                    ts_ms: as_int(score).ok_or_else(|| corrupt(key))?,
                    id: id.to_owned(),
                    value: value.parse().map_err(|_| corrupt(key))?,
                });
            }
        }
        Ok(WindowSnapshot {
            previous_max_ts_ms,
            count: u64::try_from(count).map_err(|_| corrupt(key))?,
            entries,
        })
    }

    async fn mark_seen(&self, key: &str, ttl: Option<Duration>) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(1).arg("NX");
        if let Some(ttl) = ttl {
            cmd.arg("PX")
                .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        let reply: Value = cmd.query_async(&mut conn).await.map_err(unavailable)?;
        Ok(!matches!(reply, Value::Nil))
    }

    async fn try_cooldown(
        &self,
        key: &str,
        ts_ms: i64,
        cooldown_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let taken: i64 = self
            .cooldown
            .key(key)
            .arg(ts_ms)
            .arg(cooldown_ms)
            .arg(cooldown_ms.saturating_mul(2).saturating_add(GRACE_MS))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(taken == 1)
    }
}
