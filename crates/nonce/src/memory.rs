use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock};
use crate::{
    AccountState, Error, Lease, LeaseId, NonceKey, NonceStatus, NonceStore, ResetOutcome, Result,
    SyncOutcome,
};

/// A [`NonceStore`] in process memory: for tests, single-process tools, and as the reference
/// the other backends are checked against. State is lost when the process exits.
#[derive(Debug)]
pub struct MemoryNonceStore {
    accounts: Mutex<HashMap<NonceKey, AccountState>>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryNonceStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryNonceStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store reading time from `clock` (e.g. a [`ManualClock`](crate::ManualClock)).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            accounts: Mutex::new(HashMap::new()),
            clock,
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<NonceKey, AccountState>>> {
        // A poisoned lock means a panic mid-update: refuse rather than guess.
        self.accounts.lock().map_err(|_| Error::StoreUnavailable {
            backend: "memory",
            source: "nonce store lock poisoned".into(),
        })
    }
}

#[async_trait]
impl NonceStore for MemoryNonceStore {
    async fn reserve(&self, key: &NonceKey, lease_ttl: Duration) -> Result<Lease> {
        let now = self.clock.now();
        let mut accounts = self.lock()?;
        let account = accounts.entry(*key).or_default();
        Ok(account.reserve(key, now, lease_ttl, LeaseId::new()))
    }

    async fn commit(&self, lease: &Lease) -> Result<()> {
        let mut accounts = self.lock()?;
        match accounts.get_mut(&lease.key) {
            Some(account) => account.commit(lease),
            None => Err(Error::LeaseLost {
                key: lease.key,
                nonce: lease.nonce,
                lease_id: lease.lease_id,
            }),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let mut accounts = self.lock()?;
        match accounts.get_mut(&lease.key) {
            Some(account) => account.release(lease),
            None => Ok(()),
        }
    }

    async fn sync(&self, key: &NonceKey, chain_pending: u64) -> Result<SyncOutcome> {
        let now = self.clock.now();
        let mut accounts = self.lock()?;
        Ok(accounts.entry(*key).or_default().sync(now, chain_pending))
    }

    async fn reset(&self, key: &NonceKey, chain_pending: u64, force: bool) -> Result<ResetOutcome> {
        let now = self.clock.now();
        let mut accounts = self.lock()?;
        accounts
            .entry(*key)
            .or_default()
            .reset(key, now, chain_pending, force)
    }

    async fn status(&self, key: &NonceKey) -> Result<NonceStatus> {
        let now = self.clock.now();
        let accounts = self.lock()?;
        Ok(match accounts.get(key) {
            Some(account) => account.status(key, now),
            None => AccountState::default().status(key, now),
        })
    }
}
