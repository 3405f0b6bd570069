//! Where wallets and their sealed keys live: the [`WalletStore`] trait and
//! [`MemoryWalletStore`].

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::types::{
    KeyInfo, KeyRecord, KeyStatus, PageRequest, Wallet, WalletFilter, WalletId, WalletPage,
    WalletRecord, WalletStatus, WrappedDek,
};

/// Position in the `(wallet_id, version)` order that [`WalletStore::keys_to_rewrap`] walks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyCursor {
    /// The wallet of the last key seen.
    pub wallet_id: WalletId,
    /// Its version.
    pub version: u32,
}

/// Storage of wallets (`wallets`) and their key versions (`wallet_keys`).
///
/// **Invariants** every implementation keeps:
/// - a wallet has exactly one key whose version is `current_version`; while the wallet is
///   active that key is `active` and every other key is `rotated`;
/// - key rows are never deleted and sealed key ciphertexts never change; only the wrapped
///   data key does, through [`WalletStore::replace_wrapped_dek`], which is a compare-and-set;
/// - `rotate` and `revoke` are atomic: a reader sees the wallet before or after, never between;
/// - a revoked wallet never becomes active again.
///
/// Nothing here decrypts: stores see ciphertexts only.
#[async_trait]
pub trait WalletStore: Send + Sync {
    /// Inserts a wallet with its first key (version 1). [`Error::WalletExists`] if the id is
    /// taken.
    async fn insert(&self, wallet: &WalletRecord, key: &KeyRecord) -> Result<()>;

    /// A wallet with its key infos (oldest first), or `None`.
    async fn get(&self, id: &WalletId) -> Result<Option<Wallet>>;

    /// Wallets matching `filter`, ordered by id, after `page.after`, at most
    /// `page.effective_limit()`; `next` is set when more may follow.
    async fn list(&self, filter: &WalletFilter, page: &PageRequest) -> Result<WalletPage>;

    /// The wallet row and one key (`version`, or the current one when `None`), in one read.
    async fn signing_key(
        &self,
        id: &WalletId,
        version: Option<u32>,
    ) -> Result<Option<(WalletRecord, KeyRecord)>>;

    /// Atomically: checks the wallet is active with `current_version == expected_version`
    /// ([`Error::Conflict`] otherwise, [`Error::NotActive`] if revoked), marks that key
    /// `rotated` at `at`, inserts `new_key` (version `expected_version + 1`) as active and
    /// makes it current.
    async fn rotate(
        &self,
        id: &WalletId,
        expected_version: u32,
        new_key: &KeyRecord,
        at: DateTime<Utc>,
    ) -> Result<Wallet>;

    /// Atomically marks the wallet and its current key revoked. Revoking a revoked wallet
    /// changes nothing and returns it.
    async fn revoke(&self, id: &WalletId, at: DateTime<Utc>) -> Result<Wallet>;

    /// Up to `limit` keys (of any status) whose data key is wrapped under a KEK version
    /// below `kek_version`, ordered by `(wallet_id, version)`, strictly after `after`.
    async fn keys_to_rewrap(
        &self,
        kek_version: u32,
        after: Option<&KeyCursor>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>>;

    /// How many keys [`WalletStore::keys_to_rewrap`] would walk in total.
    async fn count_keys_to_rewrap(&self, kek_version: u32) -> Result<u64>;

    /// Replaces one key's wrapped data key if it still equals `expected`. Returns whether it
    /// did; `false` means another writer got there first.
    async fn replace_wrapped_dek(
        &self,
        id: &WalletId,
        version: u32,
        expected: &WrappedDek,
        new: &WrappedDek,
    ) -> Result<bool>;
}

#[derive(Debug, Default)]
struct Tables {
    wallets: BTreeMap<WalletId, WalletRecord>,
    keys: BTreeMap<(WalletId, u32), KeyRecord>,
}

impl Tables {
    fn wallet(&self, id: &WalletId) -> Option<Wallet> {
        let record = self.wallets.get(id)?.clone();
        let keys = self
            .keys
            .range((id.clone(), 0)..=(id.clone(), u32::MAX))
            .map(|(_, k)| k.info.clone())
            .collect();
        Some(Wallet { record, keys })
    }

    fn key_info_mut(&mut self, id: &WalletId, version: u32) -> Option<&mut KeyInfo> {
        self.keys
            .get_mut(&(id.clone(), version))
            .map(|k| &mut k.info)
    }
}

/// An in-memory [`WalletStore`] for tests and library users; everything is lost on drop.
#[derive(Debug, Default)]
pub struct MemoryWalletStore {
    tables: Mutex<Tables>,
}

impl MemoryWalletStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Tables>> {
        self.tables
            .lock()
            .map_err(|_| Error::Storage("wallet store lock poisoned".into()))
    }
}

#[async_trait]
impl WalletStore for MemoryWalletStore {
    async fn insert(&self, wallet: &WalletRecord, key: &KeyRecord) -> Result<()> {
        let mut t = self.lock()?;
        if t.wallets.contains_key(&wallet.id) {
            return Err(Error::WalletExists {
                id: wallet.id.clone(),
            });
        }
        t.wallets.insert(wallet.id.clone(), wallet.clone());
        t.keys
            .insert((wallet.id.clone(), key.info.version), key.clone());
        Ok(())
    }

    async fn get(&self, id: &WalletId) -> Result<Option<Wallet>> {
        Ok(self.lock()?.wallet(id))
    }

    async fn list(&self, filter: &WalletFilter, page: &PageRequest) -> Result<WalletPage> {
        let t = self.lock()?;
        let limit = page.effective_limit();
        let lower = match &page.after {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let mut wallets: Vec<Wallet> = t
            .wallets
            .range((lower, std::ops::Bound::Unbounded))
            .filter(|(_, w)| filter.chain.is_none_or(|c| c == w.chain))
            .filter(|(_, w)| filter.status.is_none_or(|s| s == w.status))
            .take(limit + 1)
            .filter_map(|(id, _)| t.wallet(id))
            .collect();
        let next = if wallets.len() > limit {
            wallets.truncate(limit);
            wallets.last().map(|w| w.id().clone())
        } else {
            None
        };
        Ok(WalletPage { wallets, next })
    }

    async fn signing_key(
        &self,
        id: &WalletId,
        version: Option<u32>,
    ) -> Result<Option<(WalletRecord, KeyRecord)>> {
        let t = self.lock()?;
        let Some(wallet) = t.wallets.get(id) else {
            return Ok(None);
        };
        let version = version.unwrap_or(wallet.current_version);
        Ok(t.keys
            .get(&(id.clone(), version))
            .map(|k| (wallet.clone(), k.clone())))
    }

    async fn rotate(
        &self,
        id: &WalletId,
        expected_version: u32,
        new_key: &KeyRecord,
        at: DateTime<Utc>,
    ) -> Result<Wallet> {
        let mut t = self.lock()?;
        let wallet = t
            .wallets
            .get(id)
            .ok_or_else(|| Error::WalletNotFound { id: id.clone() })?
            .clone();
        if wallet.status == WalletStatus::Revoked {
            return Err(Error::NotActive {
                id: id.clone(),
                version: wallet.current_version,
                status: KeyStatus::Revoked,
            });
        }
        if wallet.current_version != expected_version
            || new_key.info.version != expected_version + 1
            || t.keys.contains_key(&(id.clone(), new_key.info.version))
        {
            return Err(Error::Conflict { id: id.clone() });
        }
        if let Some(old) = t.key_info_mut(id, expected_version) {
            old.status = KeyStatus::Rotated;
            old.retired_at = Some(at);
        }
        t.keys
            .insert((id.clone(), new_key.info.version), new_key.clone());
        if let Some(w) = t.wallets.get_mut(id) {
            w.current_version = new_key.info.version;
            w.updated_at = at;
        }
        t.wallet(id)
            .ok_or_else(|| Error::WalletNotFound { id: id.clone() })
    }

    async fn revoke(&self, id: &WalletId, at: DateTime<Utc>) -> Result<Wallet> {
        let mut t = self.lock()?;
        let wallet = t
            .wallets
            .get_mut(id)
            .ok_or_else(|| Error::WalletNotFound { id: id.clone() })?;
        if wallet.status == WalletStatus::Active {
            wallet.status = WalletStatus::Revoked;
            wallet.updated_at = at;
            let current = wallet.current_version;
            if let Some(key) = t.key_info_mut(id, current) {
                key.status = KeyStatus::Revoked;
                key.retired_at = Some(at);
            }
        }
        t.wallet(id)
            .ok_or_else(|| Error::WalletNotFound { id: id.clone() })
    }

    async fn keys_to_rewrap(
        &self,
        kek_version: u32,
        after: Option<&KeyCursor>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>> {
        let t = self.lock()?;
        let lower = match after {
            Some(c) => std::ops::Bound::Excluded((c.wallet_id.clone(), c.version)),
            None => std::ops::Bound::Unbounded,
        };
        Ok(t.keys
            .range((lower, std::ops::Bound::Unbounded))
            .map(|(_, k)| k)
            .filter(|k| k.sealed.wrapped_dek.kek_version < kek_version)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn count_keys_to_rewrap(&self, kek_version: u32) -> Result<u64> {
        let t = self.lock()?;
        Ok(t.keys
            .values()
            .filter(|k| k.sealed.wrapped_dek.kek_version < kek_version)
            .count() as u64)
    }

    async fn replace_wrapped_dek(
        &self,
        id: &WalletId,
        version: u32,
        expected: &WrappedDek,
        new: &WrappedDek,
    ) -> Result<bool> {
        let mut t = self.lock()?;
        match t.keys.get_mut(&(id.clone(), version)) {
            Some(key) if key.sealed.wrapped_dek == *expected => {
                key.sealed.wrapped_dek = new.clone();
                key.info.kek_version = new.kek_version;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(Error::KeyNotFound {
                id: id.clone(),
                version,
            }),
        }
    }
}
