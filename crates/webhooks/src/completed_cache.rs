//! A replica-local memory of completed idempotency keys in front of any store.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::fingerprint::Fingerprint;
use crate::idempotency::{Claim, IdempotencyStore, LockToken, ScopedKey, StoredResponse};

/// Remembers, in process, the keys the store reported completed, so that replaying them again
/// costs no store round trip.
///
/// A completed key never changes: the store keeps its result, unchanged, for `retention`
/// (24 h by default). This cache answers a repeat for at most `ttl` (default 60 s) after it
/// learned the result from the store, with the same rules the store applies: the same body
/// replays the stored response, another body is [`Claim::Mismatch`]. Everything else (free
/// keys, keys in flight, completions and releases) goes to the store.
///
/// **Bounds:** at most `capacity` keys (default 10 000) and only responses up to
/// `max_body` bytes (default 64 KiB) are kept; when full, the expired entries are dropped,
/// then the cache is cleared. If a key's retention ends while it is cached, its replay is
/// answered for up to `ttl` longer — never a second run of the handler.
pub struct CompletedCache<S> {
    inner: S,
    ttl: Duration,
    capacity: usize,
    max_body: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    fingerprint: Fingerprint,
    response: StoredResponse,
    until: Instant,
}

impl<S: fmt::Debug> fmt::Debug for CompletedCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletedCache")
            .field("inner", &self.inner)
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .field("cached", &self.len())
            .finish()
    }
}

impl<S> CompletedCache<S> {
    /// A cache of 10 000 keys for 60 s each, responses up to 64 KiB, in front of `inner`.
    pub fn new(inner: S) -> Self {
        Self::with_limits(inner, Duration::from_secs(60), 10_000, 64 * 1024)
    }

    /// A cache with its own time to live, key capacity and largest kept response body.
    pub fn with_limits(inner: S, ttl: Duration, capacity: usize, max_body: usize) -> Self {
        Self {
            inner,
            ttl,
            capacity,
            max_body,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn recall(&self, id: &str, fingerprint: &Fingerprint) -> Option<Claim> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(id)?;
        if entry.until <= Instant::now() {
            return None;
        }
        Some(if entry.fingerprint == *fingerprint {
            Claim::Completed(entry.response.clone())
        } else {
            Claim::Mismatch
        })
    }

    fn remember(&self, id: String, fingerprint: Fingerprint, response: &StoredResponse) {
        if response.body.len() > self.max_body || self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.retain(|_, entry| entry.until > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            id,
            Entry {
                fingerprint,
                response: response.clone(),
                until: now + self.ttl,
            },
        );
    }
}

#[async_trait]
impl<S: IdempotencyStore> IdempotencyStore for CompletedCache<S> {
    async fn claim(
        &self,
        key: &ScopedKey,
        fingerprint: &Fingerprint,
        token: &LockToken,
        lock_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let id = key.storage_id();
        if let Some(claim) = self.recall(&id, fingerprint) {
            return Ok(claim);
        }
        let claim = self.inner.claim(key, fingerprint, token, lock_ttl).await?;
        if let Claim::Completed(response) = &claim {
            self.remember(id, *fingerprint, response);
        }
        Ok(claim)
    }

    async fn complete(
        &self,
        key: &ScopedKey,
        token: &LockToken,
        response: &StoredResponse,
        retention: Duration,
    ) -> Result<bool, StoreError> {
        self.inner.complete(key, token, response, retention).await
    }

    async fn release(&self, key: &ScopedKey, token: &LockToken) -> Result<bool, StoreError> {
        self.inner.release(key, token).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::idempotency::{IdempotencyKey, MemoryIdempotencyStore, Scope};

    fn key(k: &str) -> ScopedKey {
        ScopedKey {
            scope: Scope::new("alice", "POST", "/api/v1/things"),
            key: IdempotencyKey::parse(k).unwrap(),
        }
    }

    fn response(body: &str) -> StoredResponse {
        StoredResponse {
            status: 201,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[derive(Debug, Default)]
    struct Counting {
        inner: MemoryIdempotencyStore,
        claims: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl IdempotencyStore for Counting {
        async fn claim(
            &self,
            key: &ScopedKey,
            fingerprint: &Fingerprint,
            token: &LockToken,
            lock_ttl: Duration,
        ) -> Result<Claim, StoreError> {
            self.claims
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.claim(key, fingerprint, token, lock_ttl).await
        }
        async fn complete(
            &self,
            key: &ScopedKey,
            token: &LockToken,
            response: &StoredResponse,
            retention: Duration,
        ) -> Result<bool, StoreError> {
            self.inner.complete(key, token, response, retention).await
        }
        async fn release(&self, key: &ScopedKey, token: &LockToken) -> Result<bool, StoreError> {
            self.inner.release(key, token).await
        }
    }

    #[tokio::test]
    async fn a_completed_key_replays_from_memory_with_the_stores_rules() {
        let store = Arc::new(Counting::default());
        let cache = CompletedCache::new(store.clone());
        let (k, body, ttl) = (
            key("key-00000001"),
            Fingerprint::of(b"{}"),
            Duration::from_secs(9),
        );
        let token = LockToken::random();
        assert_eq!(
            cache.claim(&k, &body, &token, ttl).await.unwrap(),
            Claim::Acquired
        );
        // In flight: the store answers, nothing is cached.
        let other = LockToken::random();
        assert_eq!(
            cache.claim(&k, &body, &other, ttl).await.unwrap(),
            Claim::InFlight
        );
        assert!(cache.is_empty());
        assert!(
            cache
                .complete(&k, &token, &response("done"), ttl)
                .await
                .unwrap()
        );
        for _ in 0..5 {
            assert_eq!(
                cache.claim(&k, &body, &other, ttl).await.unwrap(),
                Claim::Completed(response("done"))
            );
        }
        // One store claim learned the completion; the four repeats came from memory.
        assert_eq!(store.claims.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(
            cache
                .claim(&k, &Fingerprint::of(b"other"), &other, ttl)
                .await
                .unwrap(),
            Claim::Mismatch
        );
        assert_eq!(store.claims.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn entries_expire_and_the_cache_stays_bounded() {
        let store = Arc::new(Counting::default());
        let cache = CompletedCache::with_limits(store.clone(), Duration::from_millis(50), 3, 4);
        let ttl = Duration::from_secs(9);
        let body = Fingerprint::of(b"{}");
        for i in 0..10 {
            let k = key(&format!("key-{i:08}"));
            let token = LockToken::random();
            cache.claim(&k, &body, &token, ttl).await.unwrap();
            cache
                .complete(&k, &token, &response("ok"), ttl)
                .await
                .unwrap();
            cache.claim(&k, &body, &token, ttl).await.unwrap();
            assert!(cache.len() <= 3);
        }
        // Expired: the store is asked again.
        let k = key("key-00000009");
        tokio::time::sleep(Duration::from_millis(60)).await;
        let before = store.claims.load(std::sync::atomic::Ordering::SeqCst);
        cache
            .claim(&k, &body, &LockToken::random(), ttl)
            .await
            .unwrap();
        assert_eq!(
            store.claims.load(std::sync::atomic::Ordering::SeqCst),
            before + 1
        );
        // A body over the limit is never kept.
        let big = key("key-big-0001");
        let token = LockToken::random();
        cache.claim(&big, &body, &token, ttl).await.unwrap();
        cache
            .complete(&big, &token, &response("too large"), ttl)
            .await
            .unwrap();
        let held = cache.len();
        cache.claim(&big, &body, &token, ttl).await.unwrap();
        assert_eq!(cache.len(), held);
    }
}
