//! [`WindowStore`] in Redis: a sorted set per window (score = event time in ms, member =
//! `value:event_id`), `SET NX` marks, and a cooldown string per (rule, subject). Every
//! operation is one round trip (one Lua script or one command), atomic on its key.
//!
//! All operations share one multiplexed connection taken from the pool once (and taken
//! again after it breaks): a pooled checkout costs a `PING` round trip per operation
//! (deadpool-redis checks every recycled connection), and on one connection the scripts the
//! engine runs concurrently for one event leave in one write and come back in one read.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::Pool;
use redis::aio::MultiplexedConnection;
use redis::{RedisError, Script, Value};

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
///
/// Operations run on one shared multiplexed connection (pipelined when concurrent); when it
/// fails with a connection error it is dropped and the next operation takes a fresh one from
/// the pool.
#[derive(Clone)]
pub struct RedisWindowStore {
    pool: Pool,
    shared: Arc<Mutex<Option<MultiplexedConnection>>>,
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
            shared: Arc::new(Mutex::new(None)),
            record: Script::new(RECORD),
            cooldown: Script::new(COOLDOWN),
        }
    }

    /// The shared connection, taken from the pool on first use or after a failure.
    async fn conn(&self) -> Result<MultiplexedConnection, StoreError> {
        if let Ok(shared) = self.shared.lock()
            && let Some(conn) = shared.as_ref()
        {
            return Ok(conn.clone());
        }
        let pooled = self.pool.get().await.map_err(unavailable)?;
        let conn = deadpool_redis::Connection::take(pooled);
        if let Ok(mut shared) = self.shared.lock() {
            *shared = Some(conn.clone());
        }
        Ok(conn)
    }

    /// Maps a Redis failure, dropping the shared connection when it is the connection that
    /// failed (or did not answer in time), so that the next operation reconnects.
    fn failed(&self, e: RedisError) -> StoreError {
        if (e.is_unrecoverable_error()
            || e.is_connection_dropped()
            || e.is_io_error()
            || e.is_timeout())
            && let Ok(mut shared) = self.shared.lock()
        {
            *shared = None;
        }
        unavailable(e)
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
            .map_err(|e| self.failed(e))?;
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
        let reply: Value = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
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
            .map_err(|e| self.failed(e))?;
        Ok(taken == 1)
    }
}
