//! A [`WalletStore`] that fails on demand, for tests of custody's failure paths over any
//! backend (feature `test-utils`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{
    Error, KeyCursor, KeyRecord, PageRequest, Result, SealedKey, Wallet, WalletFilter, WalletId,
    WalletPage, WalletRecord, WalletStore, WrappedDek,
};

/// What a rewrap write does once the allowed ones are spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewrapFault {
    /// It fails with [`Error::Storage`]: a rewrap that errors midway.
    Fail,
    /// It never returns, as if the process died there; [`FaultyWalletStore::stuck`]
    /// resolves once one has arrived, so a test can abort the run at exactly that point.
    Hang,
}

/// Wraps a [`WalletStore`] (memory, Postgres, …) and injects faults: rewrap writes that fail
/// or hang after a number of successes ([`fail_rewrap_after`](Self::fail_rewrap_after),
/// [`hang_rewrap_after`](Self::hang_rewrap_after)), and tampered ciphertexts served on reads
/// ([`tamper`](Self::tamper)). Everything else passes through unchanged.
pub struct FaultyWalletStore<S: ?Sized> {
    inner: Arc<S>,
    /// Remaining successful rewrap writes; negative means unlimited.
    writes_left: AtomicI64,
    fault: Mutex<RewrapFault>,
    overrides: Mutex<HashMap<(WalletId, u32), SealedKey>>,
    stuck: tokio::sync::Notify,
}

impl<S: ?Sized> std::fmt::Debug for FaultyWalletStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyWalletStore")
            .field("writes_left", &self.writes_left)
            .finish_non_exhaustive()
    }
}

impl<S: Default> Default for FaultyWalletStore<S> {
    fn default() -> Self {
        Self::new(Arc::new(S::default()))
    }
}

impl<S: ?Sized> FaultyWalletStore<S> {
    /// `inner` without faults.
    pub fn new(inner: Arc<S>) -> Self {
        Self {
            inner,
            writes_left: AtomicI64::new(-1),
            fault: Mutex::new(RewrapFault::Fail),
            overrides: Mutex::new(HashMap::new()),
            stuck: tokio::sync::Notify::new(),
        }
    }

    /// The wrapped store (reads and writes that bypass the faults).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Lets `k` more rewrap writes succeed, then fails every one.
    pub fn fail_rewrap_after(&self, k: u64) {
        self.limit_rewrap(k, RewrapFault::Fail);
    }

    /// Lets `k` more rewrap writes succeed; the next one never returns.
    pub fn hang_rewrap_after(&self, k: u64) {
        self.limit_rewrap(k, RewrapFault::Hang);
    }

    fn limit_rewrap(&self, k: u64, fault: RewrapFault) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
        self.writes_left
            .store(i64::try_from(k).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// Removes the write limit.
    pub fn heal(&self) {
        self.writes_left.store(-1, Ordering::SeqCst);
    }

    /// Resolves once a rewrap write hangs (see [`RewrapFault::Hang`]).
    pub async fn stuck(&self) {
        self.stuck.notified().await;
    }

    /// Serves `sealed` instead of the stored ciphertexts of this key version.
    pub fn tamper(&self, id: &WalletId, version: u32, sealed: SealedKey) {
        self.overrides
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((id.clone(), version), sealed);
    }

    /// Serves the stored ciphertexts again.
    pub fn untamper(&self) {
        self.overrides
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[async_trait]
impl<S: WalletStore + ?Sized> WalletStore for FaultyWalletStore<S> {
    async fn insert(&self, wallet: &WalletRecord, key: &KeyRecord) -> Result<()> {
        self.inner.insert(wallet, key).await
    }
    async fn get(&self, id: &WalletId) -> Result<Option<Wallet>> {
        self.inner.get(id).await
    }
    async fn list(&self, filter: &WalletFilter, page: &PageRequest) -> Result<WalletPage> {
        self.inner.list(filter, page).await
    }
    async fn signing_key(
        &self,
        id: &WalletId,
        version: Option<u32>,
    ) -> Result<Option<(WalletRecord, KeyRecord)>> {
        let found = self.inner.signing_key(id, version).await?;
        Ok(found.map(|(w, mut k)| {
            let overrides = self
                .overrides
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(sealed) = overrides.get(&(id.clone(), k.info.version)) {
                k.sealed = sealed.clone();
            }
            (w, k)
        }))
    }
    async fn rotate(
        &self,
        id: &WalletId,
        expected_version: u32,
        new_key: &KeyRecord,
        at: DateTime<Utc>,
    ) -> Result<Wallet> {
        self.inner.rotate(id, expected_version, new_key, at).await
    }
    async fn revoke(&self, id: &WalletId, at: DateTime<Utc>) -> Result<Wallet> {
        self.inner.revoke(id, at).await
    }
    async fn keys_to_rewrap(
        &self,
        kek_version: u32,
        after: Option<&KeyCursor>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>> {
        self.inner.keys_to_rewrap(kek_version, after, limit).await
    }
    async fn count_keys_to_rewrap(&self, kek_version: u32) -> Result<u64> {
        self.inner.count_keys_to_rewrap(kek_version).await
    }
    async fn replace_wrapped_dek(
        &self,
        id: &WalletId,
        version: u32,
        expected: &WrappedDek,
        new: &WrappedDek,
    ) -> Result<bool> {
        let spent = self
            .writes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                (left > 0).then(|| left - 1)
            })
            .is_err_and(|left| left == 0);
        if spent {
            let fault = *self.fault.lock().unwrap_or_else(PoisonError::into_inner);
            match fault {
                RewrapFault::Fail => {
                    return Err(Error::Storage("simulated crash during rewrap".into()));
                }
                RewrapFault::Hang => {
                    self.stuck.notify_one();
                    std::future::pending::<()>().await;
                }
            }
        }
        self.inner
            .replace_wrapped_dek(id, version, expected, new)
            .await
    }
}
