//! A small shared cache of one computed document (the network statistics): kept in Redis so
//! that every api replica serves the same copy and any process — the api on a redemption's
//! state change, the worker on a confirmed mint or burn — can invalidate it; an in-process copy
//! serves when Redis is down.
//!
//! Invalidation bumps a generation counter in Redis: a copy stored under an older generation
//! is never served, even by a replica that computed it before the change (it stores under the
//! generation it read first). While Redis is down a process serves its own copy until its TTL
//! and invalidates only its own copy.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_redis::Pool;
use redis::AsyncCommands as _;

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSource {
    /// The shared copy in Redis.
    Redis,
    /// This process's copy (Redis down).
    Local,
}

/// A cached JSON document under one key.
#[derive(Debug)]
pub struct SharedCache {
    redis: Option<Pool>,
    key: String,
    ttl: Duration,
    local: Mutex<Option<(Instant, String)>>,
}

impl SharedCache {
    /// A cache of `key` (with the deployment's Redis prefix) kept `ttl`; without `redis`
    /// only the in-process copy is used.
    pub fn new(redis: Option<Pool>, key: impl Into<String>, ttl: Duration) -> Self {
        Self {
            redis,
            key: key.into(),
            ttl,
            local: Mutex::new(None),
        }
    }

    fn generation_key(&self) -> String {
        format!("{}:generation", self.key)
    }

    /// The current generation, or `None` when Redis cannot be asked.
    async fn generation(&self) -> Option<(deadpool_redis::Connection, u64)> {
        let pool = self.redis.as_ref()?;
        let mut conn = pool.get().await.ok()?;
        let generation: Option<u64> = conn.get(self.generation_key()).await.ok()?;
        Some((conn, generation.unwrap_or(0)))
    }

    /// The cached document, and where it came from.
    pub async fn get(&self) -> Option<(String, CacheSource)> {
        if let Some((mut conn, generation)) = self.generation().await {
            let stored: Option<String> = conn
                .get(format!("{}:{generation}", self.key))
                .await
                .ok()
                .flatten();
            return stored.map(|doc| (doc, CacheSource::Redis));
        }
        let local = self.local.lock().ok()?;
        match &*local {
            Some((at, doc)) if at.elapsed() < self.ttl => Some((doc.clone(), CacheSource::Local)),
            _ => None,
        }
    }

    /// Reads the generation before computing: pass it to [`SharedCache::put`] so a copy
    /// computed across an invalidation is stored under the old generation (never served).
    pub async fn begin(&self) -> Option<u64> {
        self.generation().await.map(|(_, g)| g)
    }

    /// Stores `doc` computed under `generation` (from [`SharedCache::begin`]).
    pub async fn put(&self, generation: Option<u64>, doc: &str) {
        if let Ok(mut local) = self.local.lock() {
            *local = Some((Instant::now(), doc.to_owned()));
        }
        let (Some(pool), Some(generation)) = (&self.redis, generation) else {
            return;
        };
        if let Ok(mut conn) = pool.get().await {
            let ttl = self.ttl.as_secs().max(1);
            let stored: redis::RedisResult<()> = conn
                .set_ex(format!("{}:{generation}", self.key), doc, ttl)
                .await;
            if let Err(e) = stored {
                tracing::warn!(key = %self.key, error = %e, "cache copy not stored in Redis");
            }
        }
    }

    /// Drops every copy: the next read computes afresh.
    pub async fn invalidate(&self) {
        if let Ok(mut local) = self.local.lock() {
            *local = None;
        }
        let Some(pool) = &self.redis else { return };
        match pool.get().await {
            Ok(mut conn) => {
                let bumped: redis::RedisResult<u64> = conn.incr(self.generation_key(), 1).await;
                if let Err(e) = bumped {
                    tracing::warn!(key = %self.key, error = %e, "cache not invalidated in Redis");
                }
            }
            Err(e) => {
                tracing::warn!(key = %self.key, error = %e, "cache not invalidated: Redis unavailable")
            }
        }
    }
}
