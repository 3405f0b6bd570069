use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::{
    ChainNonceSource, Error, Lease, LeaseId, NonceError, NonceErrorAction, NonceKey, NonceStatus,
    NonceStore, ResetOutcome, Result, SyncOutcome,
};

/// A [`NonceStore`] joined to a [`ChainNonceSource`]: the convenient entry point for code that
/// signs transactions.
///
/// It syncs an account with the chain before the first lease the store hands out for it (so
/// a new or wiped store never starts counting at 0 under a used account) and reads the chain
/// itself when a node reports a nonce error.
///
/// It also keeps the gauge [`metrics::LEASES_OUTSTANDING`](crate::metrics::LEASES_OUTSTANDING)
/// (`haven_nonce_leases_outstanding`): +1 for each lease it hands out, −1 once that lease
/// is committed, released, given up in [`handle_nonce_error`](Self::handle_nonce_error),
/// reported lost by the store, or past its TTL (noticed at the manager's next call). The
/// gauge is **per process**: it counts the leases this process's managers (clones share
/// one count) took and have not yet seen end, not the store's leases. When several processes
/// share a store, the store-wide figure is the sum over processes (`sum()` in PromQL); a
/// process that dies holding leases takes its count with it while the store reclaims the
/// leases at expiry.
#[derive(Debug, Clone)]
pub struct NonceManager {
    store: Arc<dyn NonceStore>,
    chain: Arc<dyn ChainNonceSource>,
    lease_ttl: Duration,
    outstanding: Arc<Outstanding>,
}

/// The leases a manager handed out and has not seen end, each with the local instant its TTL
/// runs out (measured from receipt, so the store's clock and this one need not agree).
#[derive(Debug, Default)]
struct Outstanding {
    leases: Mutex<HashMap<LeaseId, Instant>>,
}

impl Outstanding {
    fn add(&self, lease: &Lease) {
        // Capped so that an absurd TTL cannot overflow the instant (136 years is forever here).
        let ttl = (lease.expires_at - lease.leased_at)
            .to_std()
            .unwrap_or_default()
            .min(Duration::from_secs(u64::from(u32::MAX)));
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        if leases
            .insert(lease.lease_id, Instant::now() + ttl)
            .is_none()
        {
            ::metrics::gauge!(crate::metrics::LEASES_OUTSTANDING).increment(1.0);
        }
    }

    fn end(&self, lease: &Lease) {
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        if leases.remove(&lease.lease_id).is_some() {
            ::metrics::gauge!(crate::metrics::LEASES_OUTSTANDING).decrement(1.0);
        }
    }

    fn forget_expired(&self) {
        let now = Instant::now();
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        let before = leases.len();
        leases.retain(|_, expires| *expires > now);
        let expired = before - leases.len();
        if expired > 0 {
            ::metrics::gauge!(crate::metrics::LEASES_OUTSTANDING).decrement(expired as f64);
        }
    }

    fn len(&self) -> usize {
        self.leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for Outstanding {
    /// The last clone of a manager going away takes its leases off the gauge.
    fn drop(&mut self) {
        let held = self
            .leases
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        if held > 0 {
            ::metrics::gauge!(crate::metrics::LEASES_OUTSTANDING).decrement(held as f64);
        }
    }
}

impl NonceManager {
    /// Leases last `lease_ttl`: longer than signing and sending take, short enough that a
    /// crashed worker's nonce is reused soon.
    pub fn new(
        store: Arc<dyn NonceStore>,
        chain: Arc<dyn ChainNonceSource>,
        lease_ttl: Duration,
    ) -> Self {
        Self {
            store,
            chain,
            lease_ttl,
            outstanding: Arc::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn NonceStore> {
        &self.store
    }

    /// The leases this manager (and its clones) handed out and has not seen end: what it
    /// adds to the `haven_nonce_leases_outstanding` gauge.
    pub fn leases_outstanding(&self) -> usize {
        self.outstanding.forget_expired();
        self.outstanding.len()
    }

    /// Leases a nonce, syncing the account with the chain first if the store never has.
    pub async fn reserve(&self, key: &NonceKey) -> Result<Lease> {
        self.outstanding.forget_expired();
        let lease = self.store.reserve(key, self.lease_ttl).await?;
        if lease.chain_synced {
            self.outstanding.add(&lease);
            return Ok(lease);
        }
        self.sync(key).await?;
        self.store.release(&lease).await?;
        let lease = self.store.reserve(key, self.lease_ttl).await?;
        self.outstanding.add(&lease);
        Ok(lease)
    }

    /// See [`NonceStore::commit`].
    pub async fn commit(&self, lease: &Lease) -> Result<()> {
        self.outstanding.forget_expired();
        let result = self.store.commit(lease).await;
        if matches!(result, Ok(()) | Err(Error::LeaseLost { .. })) {
            self.outstanding.end(lease);
        }
        result
    }

    /// See [`NonceStore::release`].
    pub async fn release(&self, lease: &Lease) -> Result<()> {
        self.outstanding.forget_expired();
        let result = self.store.release(lease).await;
        if matches!(result, Ok(()) | Err(Error::AlreadyCommitted { .. })) {
            self.outstanding.end(lease);
        }
        result
    }

    /// Applies the chain's pending nonce as a floor.
    pub async fn sync(&self, key: &NonceKey) -> Result<SyncOutcome> {
        let pending = self
            .chain
            .pending_nonce(key.chain_id(), key.address())
            .await?;
        self.store.sync(key, pending).await
    }

    /// Resets the account to the chain's pending nonce (see [`NonceStore::reset`]).
    pub async fn reset(&self, key: &NonceKey, force: bool) -> Result<ResetOutcome> {
        let pending = self
            .chain
            .pending_nonce(key.chain_id(), key.address())
            .await?;
        self.store.reset(key, pending, force).await
    }

    /// See [`NonceStore::status`].
    pub async fn status(&self, key: &NonceKey) -> Result<NonceStatus> {
        self.store.status(key).await
    }

    /// Reads the chain and applies [`NonceStore::handle_nonce_error`].
    pub async fn handle_nonce_error(
        &self,
        lease: &Lease,
        error: NonceError,
    ) -> Result<NonceErrorAction> {
        self.outstanding.forget_expired();
        let pending = self
            .chain
            .pending_nonce(lease.key.chain_id(), lease.key.address())
            .await?;
        let action = self
            .store
            .handle_nonce_error(lease, error, pending, self.lease_ttl)
            .await?;
        match &action {
            NonceErrorAction::Retry(fresh) => {
                self.outstanding.end(lease);
                self.outstanding.add(fresh);
            }
            NonceErrorAction::Committed => self.outstanding.end(lease),
            NonceErrorAction::FillGaps { .. } => {}
        }
        Ok(action)
    }
}
