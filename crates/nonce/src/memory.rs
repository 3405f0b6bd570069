use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::clock::{Clock, SystemClock, expiry};
use crate::{
    Error, Lease, LeaseId, LeaseInfo, NonceKey, NonceStatus, NonceStore, ResetOutcome, Result,
    STATUS_LIST_LIMIT, SyncOutcome,
};

/// A [`NonceStore`] in process memory: for tests, single-process tools, and as the reference
/// the other backends are checked against. State is lost when the process exits.
#[derive(Debug)]
pub struct MemoryNonceStore {
    accounts: Mutex<HashMap<NonceKey, Account>>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug, Default)]
struct Account {
    next: u64,
    floor: Option<u64>,
    last_sync: Option<DateTime<Utc>>,
    free: BTreeSet<u64>,
    leases: BTreeMap<u64, OpenLease>,
    committed: BTreeMap<u64, LeaseId>,
}

#[derive(Debug, Clone, Copy)]
struct OpenLease {
    lease_id: LeaseId,
    leased_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl Account {
    fn floor(&self) -> u64 {
        self.floor.unwrap_or(0)
    }

    /// Gives a nonce back: to the free set, or nowhere when the chain has passed it.
    fn give_back(&mut self, nonce: u64) {
        if nonce >= self.floor() {
            self.free.insert(nonce);
        }
    }

    fn reclaim_expired(&mut self, now: DateTime<Utc>) {
        let expired: Vec<u64> = self
            .leases
            .iter()
            .filter(|(_, l)| l.expires_at <= now)
            .map(|(n, _)| *n)
            .collect();
        for nonce in expired {
            self.leases.remove(&nonce);
            self.give_back(nonce);
        }
    }
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

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<NonceKey, Account>>> {
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
        account.reclaim_expired(now);
        let nonce = match account.free.pop_first() {
            Some(nonce) => nonce,
            None => {
                let nonce = account.next;
                account.next += 1;
                nonce
            }
        };
        let lease = Lease {
            key: *key,
            nonce,
            lease_id: LeaseId::new(),
            expires_at: expiry(now, lease_ttl),
            chain_synced: account.floor.is_some(),
        };
        account.leases.insert(
            nonce,
            OpenLease {
                lease_id: lease.lease_id,
                leased_at: now,
                expires_at: lease.expires_at,
            },
        );
        Ok(lease)
    }

    async fn commit(&self, lease: &Lease) -> Result<()> {
        let mut accounts = self.lock()?;
        let lost = Error::LeaseLost {
            key: lease.key,
            nonce: lease.nonce,
            lease_id: lease.lease_id,
        };
        let Some(account) = accounts.get_mut(&lease.key) else {
            return Err(lost);
        };
        if account.committed.get(&lease.nonce) == Some(&lease.lease_id) {
            return Ok(());
        }
        match account.leases.get(&lease.nonce) {
            Some(open) if open.lease_id == lease.lease_id => {
                account.leases.remove(&lease.nonce);
                account.committed.insert(lease.nonce, lease.lease_id);
                Ok(())
            }
            _ => Err(lost),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let mut accounts = self.lock()?;
        let Some(account) = accounts.get_mut(&lease.key) else {
            return Ok(());
        };
        if account.committed.get(&lease.nonce) == Some(&lease.lease_id) {
            return Err(Error::AlreadyCommitted {
                key: lease.key,
                nonce: lease.nonce,
            });
        }
        if matches!(account.leases.get(&lease.nonce), Some(open) if open.lease_id == lease.lease_id)
        {
            account.leases.remove(&lease.nonce);
            account.give_back(lease.nonce);
        }
        Ok(())
    }

    async fn sync(&self, key: &NonceKey, chain_pending: u64) -> Result<SyncOutcome> {
        let now = self.clock.now();
        let mut accounts = self.lock()?;
        let account = accounts.entry(*key).or_default();
        let previous_next = account.next;
        let floor = account
            .floor
            .map_or(chain_pending, |f| f.max(chain_pending));
        account.floor = Some(floor);
        account.next = account.next.max(chain_pending);
        account.last_sync = Some(now);
        let kept = account.free.split_off(&chain_pending);
        let dropped_free = account.free.len();
        account.free = kept;
        account.committed = account.committed.split_off(&chain_pending);
        Ok(SyncOutcome {
            previous_next,
            next: account.next,
            dropped_free,
        })
    }

    async fn reset(&self, key: &NonceKey, chain_pending: u64, force: bool) -> Result<ResetOutcome> {
        let now = self.clock.now();
        let mut accounts = self.lock()?;
        let account = accounts.entry(*key).or_default();
        let outstanding = account
            .leases
            .values()
            .filter(|l| l.expires_at > now)
            .count();
        if outstanding > 0 && !force {
            return Err(Error::LeasesOutstanding {
                key: *key,
                count: outstanding,
            });
        }
        let outcome = ResetOutcome {
            previous_next: account.next,
            next: chain_pending,
            dropped_leases: account.leases.len(),
        };
        *account = Account {
            next: chain_pending,
            floor: Some(chain_pending),
            last_sync: Some(now),
            ..Account::default()
        };
        Ok(outcome)
    }

    async fn status(&self, key: &NonceKey) -> Result<NonceStatus> {
        let now = self.clock.now();
        let accounts = self.lock()?;
        let empty = Account::default();
        let account = accounts.get(key).unwrap_or(&empty);
        Ok(NonceStatus {
            key: *key,
            next: account.next,
            chain_floor: account.floor,
            last_sync: account.last_sync,
            free: account
                .free
                .iter()
                .take(STATUS_LIST_LIMIT)
                .copied()
                .collect(),
            free_count: account.free.len() as u64,
            leases: account
                .leases
                .iter()
                .map(|(nonce, l)| LeaseInfo {
                    nonce: *nonce,
                    lease_id: l.lease_id,
                    leased_at: l.leased_at,
                    expires_at: l.expires_at,
                    age: (now - l.leased_at).to_std().unwrap_or_default(),
                    expired: l.expires_at <= now,
                })
                .collect(),
            committed: account
                .committed
                .keys()
                .take(STATUS_LIST_LIMIT)
                .copied()
                .collect(),
            committed_count: account.committed.len() as u64,
            observed_at: now,
        })
    }
}
