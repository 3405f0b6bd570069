//! Connection slots: at most N sockets per guardian across every replica, counted in one
//! Redis sorted set per guardian (members are socket ids, scores their lease end on the
//! Redis clock). A socket renews its lease at each heartbeat and gives it back when it
//! closes; a replica that dies without closing loses its slots when their leases end.

use std::time::Duration;

use deadpool_redis::redis::Script;
use uuid::Uuid;

/// Takes a slot if fewer than ARGV[1] unexpired ones are held. KEYS[1] the guardian's set;
/// ARGV: max, socket id, lease ms. Returns 1 if taken, 0 if full.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1
";

/// Extends a held slot's lease; 0 if the slot is no longer held.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
";

/// The guardians' connection slots.
#[derive(Clone)]
pub struct Slots {
    redis: deadpool_redis::Pool,
    prefix: String,
    max: u32,
    lease: Duration,
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slots")
            .field("prefix", &self.prefix)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// Redis could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("connection slots unavailable: {0}")]
pub struct SlotsUnavailable(String);

impl Slots {
    /// `max` slots per guardian, each leased for `lease` between renewals.
    pub fn new(redis: deadpool_redis::Pool, prefix: String, max: u32, lease: Duration) -> Self {
        Self {
            redis,
            prefix,
            max,
            lease,
        }
    }

    /// The most sockets one guardian may hold.
    pub fn max(&self) -> u32 {
        self.max
    }

    fn key(&self, guardian: Uuid) -> String {
        format!("{}{guardian}", self.prefix)
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }

    /// Takes one of `guardian`'s slots for `socket`; `false` when all are held.
    pub async fn acquire(&self, guardian: Uuid, socket: Uuid) -> Result<bool, SlotsUnavailable> {
        let mut conn = self.conn().await?;
        let taken: i64 = Script::new(ACQUIRE)
            .key(self.key(guardian))
            .arg(self.max)
            .arg(socket.to_string())
            .arg(self.lease_ms())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| SlotsUnavailable(e.to_string()))?;
        Ok(taken == 1)
    }

    /// Extends `socket`'s lease; `false` if it had lapsed (the socket should close).
    pub async fn renew(&self, guardian: Uuid, socket: Uuid) -> Result<bool, SlotsUnavailable> {
        let mut conn = self.conn().await?;
        let held: i64 = Script::new(RENEW)
            .key(self.key(guardian))
            .arg(socket.to_string())
            .arg(self.lease_ms())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| SlotsUnavailable(e.to_string()))?;
        Ok(held == 1)
    }

    /// Gives `socket`'s slot back (best effort: a lapsed lease frees it anyway).
    pub async fn release(&self, guardian: Uuid, socket: Uuid) {
        let Ok(mut conn) = self.conn().await else {
            return;
        };
        let released: Result<i64, _> = deadpool_redis::redis::cmd("ZREM")
            .arg(self.key(guardian))
            .arg(socket.to_string())
            .query_async(&mut conn)
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, %guardian, "could not release a guardian connection slot");
        }
    }

    async fn conn(&self) -> Result<deadpool_redis::Connection, SlotsUnavailable> {
        self.redis
            .get()
            .await
            .map_err(|e| SlotsUnavailable(e.to_string()))
    }
}
