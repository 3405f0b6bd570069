use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::fingerprint::Fingerprint;
use crate::idempotency::{Claim, IdempotencyStore, LockToken, ScopedKey, StoredResponse};
use crate::replay::{ReplayOutcome, ReplayStore};

/// A store that uses `primary` (Redis) and falls back to `secondary` (Postgres) when the
/// primary is unavailable: degraded means slower, never unprotected.
///
/// Each call goes to the primary first; on [`StoreError::Unavailable`] the same call goes
/// to the secondary. A claim made on one backend is completed or released on the backend
/// that answers then; if that differs (the primary failed mid-request) `complete` reports
/// `false` and the lock lapses after its TTL, so the result is at worst not replayed — the
/// handler never runs twice concurrently on the backend that granted the claim.
#[derive(Debug, Clone)]
pub struct FallbackStore<P, S> {
    primary: P,
    secondary: S,
}

impl<P, S> FallbackStore<P, S> {
    /// Combines two stores.
    pub fn new(primary: P, secondary: S) -> Self {
        Self { primary, secondary }
    }
}

fn degraded(err: &StoreError) -> bool {
    let unavailable = matches!(err, StoreError::Unavailable(_));
    if unavailable {
        tracing::warn!(error = %err, "primary store unavailable, using the fallback store");
    }
    unavailable
}

#[async_trait]
impl<P: ReplayStore, S: ReplayStore> ReplayStore for FallbackStore<P, S> {
    async fn record(
        &self,
        source: &str,
        id: &str,
        fingerprint: &Fingerprint,
        ttl: Duration,
    ) -> Result<ReplayOutcome, StoreError> {
        match self.primary.record(source, id, fingerprint, ttl).await {
            Err(e) if degraded(&e) => self.secondary.record(source, id, fingerprint, ttl).await,
            other => other,
        }
    }
}

#[async_trait]
impl<P: IdempotencyStore, S: IdempotencyStore> IdempotencyStore for FallbackStore<P, S> {
    async fn claim(
        &self,
        key: &ScopedKey,
        fingerprint: &Fingerprint,
        token: &LockToken,
        lock_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        match self.primary.claim(key, fingerprint, token, lock_ttl).await {
            Err(e) if degraded(&e) => {
                self.secondary
                    .claim(key, fingerprint, token, lock_ttl)
                    .await
            }
            other => other,
        }
    }

    async fn complete(
        &self,
        key: &ScopedKey,
        token: &LockToken,
        response: &StoredResponse,
        retention: Duration,
    ) -> Result<bool, StoreError> {
        match self.primary.complete(key, token, response, retention).await {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.secondary
                    .complete(key, token, response, retention)
                    .await
            }
            Err(e) if degraded(&e) => {
                self.secondary
                    .complete(key, token, response, retention)
                    .await
            }
            Err(e) => Err(e),
        }
    }

    async fn release(&self, key: &ScopedKey, token: &LockToken) -> Result<bool, StoreError> {
        match self.primary.release(key, token).await {
            Ok(true) => Ok(true),
            Ok(false) => self.secondary.release(key, token).await,
            Err(e) if degraded(&e) => self.secondary.release(key, token).await,
            Err(e) => Err(e),
        }
    }
}
