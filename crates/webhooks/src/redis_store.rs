//! Redis implementations: one round trip (one Lua script) per operation.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::Pool;
use redis::Script;

use crate::error::StoreError;
use crate::fingerprint::Fingerprint;
use crate::idempotency::{Claim, IdempotencyStore, LockToken, ScopedKey, StoredResponse};
use crate::replay::{ReplayOutcome, ReplayStore};

const RECORD_LUA: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 2
";

const CLAIM_LUA: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'fp', 'state', 'resp')
if not cur[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'flight', 'token', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'acquired'}
end
if cur[1] ~= ARGV[1] then return {'mismatch'} end
if cur[2] == 'done' then return {'done', cur[3]} end
return {'flight'}
";

const COMPLETE_LUA: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'state', 'token')
if cur[1] ~= 'flight' or cur[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'resp', ARGV[2])
redis.call('HDEL', KEYS[1], 'token')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

const RELEASE_LUA: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'state', 'token')
if cur[1] ~= 'flight' or cur[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
";

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Replay records as `SET key fingerprint NX PX ttl`, compared in the same script.
///
/// Keys: `<prefix>replay:<len(source)>:<source>:<id>`.
#[derive(Clone)]
pub struct RedisReplayStore {
    pool: Pool,
    prefix: String,
    record: Script,
}

impl std::fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisReplayStore {
    /// A store on `pool`, every key starting with `prefix` (e.g. `haven:`).
    pub fn new(pool: Pool, prefix: impl Into<String>) -> Self {
        Self {
            pool,
            prefix: prefix.into(),
            record: Script::new(RECORD_LUA),
        }
    }

    fn key(&self, source: &str, id: &str) -> String {
        format!("{}replay:{}:{source}:{id}", self.prefix, source.len())
    }
}

#[async_trait]
impl ReplayStore for RedisReplayStore {
    async fn record(
        &self,
        source: &str,
        id: &str,
        fingerprint: &Fingerprint,
        ttl: Duration,
    ) -> Result<ReplayOutcome, StoreError> {
        let mut conn = self.pool.get().await.map_err(unavailable)?;
        let code: i64 = self
            .record
            .key(self.key(source, id))
            .arg(fingerprint.to_hex())
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match code {
            0 => Ok(ReplayOutcome::First),
            1 => Ok(ReplayOutcome::Duplicate),
            2 => Ok(ReplayOutcome::Conflict),
            _ => Err(StoreError::Corrupt {
                what: "replay script answer",
            }),
        }
    }
}

/// Idempotency keys as Redis hashes (`fp`, `state`, `token`, `resp`) whose TTL is the lock
/// TTL while in flight and the retention once done.
///
/// Keys: `<prefix>idem:<ScopedKey::storage_id>`.
#[derive(Clone)]
pub struct RedisIdempotencyStore {
    pool: Pool,
    prefix: String,
    claim: Script,
    complete: Script,
    release: Script,
}

impl std::fmt::Debug for RedisIdempotencyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisIdempotencyStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisIdempotencyStore {
    /// A store on `pool`, every key starting with `prefix`.
    pub fn new(pool: Pool, prefix: impl Into<String>) -> Self {
        Self {
            pool,
            prefix: prefix.into(),
            claim: Script::new(CLAIM_LUA),
            complete: Script::new(COMPLETE_LUA),
            release: Script::new(RELEASE_LUA),
        }
    }

    fn key(&self, key: &ScopedKey) -> String {
        format!("{}idem:{}", self.prefix, key.storage_id())
    }
}

#[async_trait]
impl IdempotencyStore for RedisIdempotencyStore {
    async fn claim(
        &self,
        key: &ScopedKey,
        fingerprint: &Fingerprint,
        token: &LockToken,
        lock_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let mut conn = self.pool.get().await.map_err(unavailable)?;
        let answer: Vec<Vec<u8>> = self
            .claim
            .key(self.key(key))
            .arg(fingerprint.to_hex())
            .arg(token.as_str())
            .arg(millis(lock_ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match answer.as_slice() {
            [state] if state.as_slice() == b"acquired" => Ok(Claim::Acquired),
            [state] if state.as_slice() == b"mismatch" => Ok(Claim::Mismatch),
            [state] if state.as_slice() == b"flight" => Ok(Claim::InFlight),
            [state, response] if state.as_slice() == b"done" => {
                Ok(Claim::Completed(StoredResponse::decode(response)?))
            }
            _ => Err(StoreError::Corrupt {
                what: "idempotency claim answer",
            }),
        }
    }

    async fn complete(
        &self,
        key: &ScopedKey,
        token: &LockToken,
        response: &StoredResponse,
        retention: Duration,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await.map_err(unavailable)?;
        let done: i64 = self
            .complete
            .key(self.key(key))
            .arg(token.as_str())
            .arg(response.encode())
            .arg(millis(retention))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(done == 1)
    }

    async fn release(&self, key: &ScopedKey, token: &LockToken) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await.map_err(unavailable)?;
        let done: i64 = self
            .release
            .key(self.key(key))
            .arg(token.as_str())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(done == 1)
    }
}
