use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::expiry;
use crate::{
    Error, Lease, LeaseId, LeaseInfo, NonceKey, NonceStatus, ResetOutcome, Result,
    STATUS_LIST_LIMIT, SyncOutcome,
};

/// One account's bookkeeping as plain data, with the transitions of
/// [`NonceStore`](crate::NonceStore) as pure functions of the state and the store's clock.
///
/// [`MemoryNonceStore`](crate::MemoryNonceStore) keeps these in a map; a SQL store can keep one
/// per row, lock it (`SELECT … FOR UPDATE`), apply a transition and write it back, and so
/// behave exactly like the reference backend. The Redis scripts implement the same
/// transitions in Lua.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// The next never-used nonce.
    pub next: u64,
    /// The highest chain pending nonce applied, if any.
    pub chain_floor: Option<u64>,
    /// When `sync` or `reset` last ran.
    pub last_sync: Option<DateTime<Utc>>,
    /// Nonces handed out before that never left the process.
    pub free: BTreeSet<u64>,
    /// Open leases by nonce (expired ones until the next `reserve` reclaims them).
    pub leases: BTreeMap<u64, LeaseRecord>,
    /// Committed nonces the chain floor has not passed, with the lease that committed them.
    pub committed: BTreeMap<u64, LeaseId>,
}

/// An open lease inside [`AccountState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The lease.
    pub lease_id: LeaseId,
    /// When it was taken.
    pub leased_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

impl AccountState {
    fn floor(&self) -> u64 {
        self.chain_floor.unwrap_or(0)
    }

    /// Gives a nonce back: to the free set, or nowhere when the chain has passed it.
    fn give_back(&mut self, nonce: u64) {
        if nonce >= self.floor() {
            self.free.insert(nonce);
        }
    }

    /// See [`NonceStore::reserve`](crate::NonceStore::reserve).
    pub fn reserve(
        &mut self,
        key: &NonceKey,
        now: DateTime<Utc>,
        lease_ttl: Duration,
        lease_id: LeaseId,
    ) -> Lease {
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
        let nonce = self.free.pop_first().unwrap_or_else(|| {
            let nonce = self.next;
            self.next += 1;
            nonce
        });
        let lease = Lease {
            key: *key,
            nonce,
            lease_id,
            leased_at: now,
            expires_at: expiry(now, lease_ttl),
            chain_synced: self.chain_floor.is_some(),
        };
        self.leases.insert(
            nonce,
            LeaseRecord {
                lease_id,
                leased_at: now,
                expires_at: lease.expires_at,
            },
        );
        lease
    }

    /// See [`NonceStore::commit`](crate::NonceStore::commit).
    pub fn commit(&mut self, lease: &Lease) -> Result<()> {
        if self.committed.get(&lease.nonce) == Some(&lease.lease_id) {
            return Ok(());
        }
        match self.leases.get(&lease.nonce) {
            Some(open) if open.lease_id == lease.lease_id => {
                self.leases.remove(&lease.nonce);
                self.committed.insert(lease.nonce, lease.lease_id);
                Ok(())
            }
            _ => Err(Error::LeaseLost {
                key: lease.key,
                nonce: lease.nonce,
                lease_id: lease.lease_id,
            }),
        }
    }

    /// See [`NonceStore::release`](crate::NonceStore::release).
    pub fn release(&mut self, lease: &Lease) -> Result<()> {
        if self.committed.get(&lease.nonce) == Some(&lease.lease_id) {
            return Err(Error::AlreadyCommitted {
                key: lease.key,
                nonce: lease.nonce,
            });
        }
        if matches!(self.leases.get(&lease.nonce), Some(open) if open.lease_id == lease.lease_id) {
            self.leases.remove(&lease.nonce);
            self.give_back(lease.nonce);
        }
        Ok(())
    }

    /// See [`NonceStore::sync`](crate::NonceStore::sync).
    pub fn sync(&mut self, now: DateTime<Utc>, chain_pending: u64) -> SyncOutcome {
        let previous_next = self.next;
        self.chain_floor = Some(
            self.chain_floor
                .map_or(chain_pending, |f| f.max(chain_pending)),
        );
        self.next = self.next.max(chain_pending);
        self.last_sync = Some(now);
        let kept = self.free.split_off(&chain_pending);
        let dropped_free = self.free.len();
        self.free = kept;
        self.committed = self.committed.split_off(&chain_pending);
        SyncOutcome {
            previous_next,
            next: self.next,
            dropped_free,
        }
    }

    /// See [`NonceStore::reset`](crate::NonceStore::reset).
    pub fn reset(
        &mut self,
        key: &NonceKey,
        now: DateTime<Utc>,
        chain_pending: u64,
        force: bool,
    ) -> Result<ResetOutcome> {
        let outstanding = self.leases.values().filter(|l| l.expires_at > now).count();
        if outstanding > 0 && !force {
            return Err(Error::LeasesOutstanding {
                key: *key,
                count: outstanding,
            });
        }
        let outcome = ResetOutcome {
            previous_next: self.next,
            next: chain_pending,
            dropped_leases: self.leases.len(),
        };
        *self = AccountState {
            next: chain_pending,
            chain_floor: Some(chain_pending),
            last_sync: Some(now),
            ..AccountState::default()
        };
        Ok(outcome)
    }

    /// See [`NonceStore::status`](crate::NonceStore::status).
    pub fn status(&self, key: &NonceKey, now: DateTime<Utc>) -> NonceStatus {
        NonceStatus {
            key: *key,
            next: self.next,
            chain_floor: self.chain_floor,
            last_sync: self.last_sync,
            free: self.free.iter().take(STATUS_LIST_LIMIT).copied().collect(),
            free_count: self.free.len() as u64,
            leases: self
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
            committed: self
                .committed
                .keys()
                .take(STATUS_LIST_LIMIT)
                .copied()
                .collect(),
            committed_count: self.committed.len() as u64,
            observed_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_json() {
        let key = NonceKey::new(1, [7; 20]);
        let now = Utc::now();
        let mut state = AccountState::default();
        let a = state.reserve(&key, now, Duration::from_secs(5), LeaseId::new());
        let b = state.reserve(&key, now, Duration::from_secs(5), LeaseId::new());
        state.commit(&a).unwrap();
        state.release(&b).unwrap();
        state.sync(now, 0);
        let json = serde_json::to_string(&state).unwrap();
        let back: AccountState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
    }
}
