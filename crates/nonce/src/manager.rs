use std::sync::Arc;
use std::time::Duration;

use crate::{
    ChainNonceSource, Lease, NonceError, NonceErrorAction, NonceKey, NonceStatus, NonceStore,
    ResetOutcome, Result, SyncOutcome,
};

/// A [`NonceStore`] joined to a [`ChainNonceSource`]: the convenient entry point for code that
/// signs transactions.
///
/// It syncs an account with the chain before the first lease the store hands out for it (so
/// a new or wiped store never starts counting at 0 under a used account) and reads the chain
/// itself when a node reports a nonce error.
#[derive(Debug, Clone)]
pub struct NonceManager {
    store: Arc<dyn NonceStore>,
    chain: Arc<dyn ChainNonceSource>,
    lease_ttl: Duration,
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
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn NonceStore> {
        &self.store
    }

    /// Leases a nonce, syncing the account with the chain first if the store never has.
    pub async fn reserve(&self, key: &NonceKey) -> Result<Lease> {
        let lease = self.store.reserve(key, self.lease_ttl).await?;
        if lease.chain_synced {
            return Ok(lease);
        }
        self.sync(key).await?;
        self.store.release(&lease).await?;
        self.store.reserve(key, self.lease_ttl).await
    }

    /// See [`NonceStore::commit`].
    pub async fn commit(&self, lease: &Lease) -> Result<()> {
        self.store.commit(lease).await
    }

    /// See [`NonceStore::release`].
    pub async fn release(&self, lease: &Lease) -> Result<()> {
        self.store.release(lease).await
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
        let pending = self
            .chain
            .pending_nonce(lease.key.chain_id(), lease.key.address())
            .await?;
        self.store
            .handle_nonce_error(lease, error, pending, self.lease_ttl)
            .await
    }
}
