//! Fixtures: a custody over a store that can fail or serve tampered rows on demand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use alloy::signers::local::PrivateKeySigner;
use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use haven_core::audit::{AuditRecord, MemoryAuditLog};
use haven_custody::envelope::{Purpose, associated_data, open};
use haven_custody::{
    Caller, Chain, Custody, CustodyConfig, Error, KeyCursor, KeyProvider, KeyRecord,
    LocalKeyProvider, MemoryWalletStore, PageRequest, Result, SealedKey, SecretKind, Wallet,
    WalletFilter, WalletId, WalletPage, WalletRecord, WalletStore, WrappedDek,
};
use zeroize::Zeroizing;

/// A [`MemoryWalletStore`] that can fail `replace_wrapped_dek` after k successes (a rewrap
/// killed midway) and serve replaced sealed keys on reads (tampering).
#[derive(Debug, Default)]
pub struct FaultyStore {
    inner: MemoryWalletStore,
    /// Remaining successful rewrap writes; negative means unlimited.
    writes_left: AtomicI64,
    overrides: Mutex<HashMap<(WalletId, u32), SealedKey>>,
}

impl FaultyStore {
    pub fn new() -> Self {
        Self {
            writes_left: AtomicI64::new(-1),
            ..Default::default()
        }
    }

    /// Lets `k` more rewrap writes succeed, then fails every one.
    pub fn fail_rewrap_after(&self, k: i64) {
        self.writes_left.store(k, Ordering::SeqCst);
    }

    /// Removes the write limit.
    pub fn heal(&self) {
        self.writes_left.store(-1, Ordering::SeqCst);
    }

    /// Serves `sealed` instead of the stored ciphertexts of this key.
    pub fn tamper(&self, id: &WalletId, version: u32, sealed: SealedKey) {
        self.overrides
            .lock()
            .unwrap()
            .insert((id.clone(), version), sealed);
    }

    pub fn untamper(&self) {
        self.overrides.lock().unwrap().clear();
    }

    /// Every key record of every wallet, as stored.
    pub async fn all_keys(&self) -> Vec<(WalletRecord, KeyRecord)> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let got = self
                .inner
                .list(&WalletFilter::default(), &page)
                .await
                .unwrap();
            for wallet in &got.wallets {
                for key in &wallet.keys {
                    let (w, k) = self
                        .inner
                        .signing_key(wallet.id(), Some(key.version))
                        .await
                        .unwrap()
                        .unwrap();
                    out.push((w, k));
                }
            }
            match got.next {
                Some(next) => page.after = Some(next),
                None => return out,
            }
        }
    }
}

#[async_trait]
impl WalletStore for FaultyStore {
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
            if let Some(sealed) = self
                .overrides
                .lock()
                .unwrap()
                .get(&(id.clone(), k.info.version))
            {
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
        let left = self.writes_left.load(Ordering::SeqCst);
        if left == 0 {
            return Err(Error::Storage("simulated crash during rewrap".into()));
        }
        if left > 0 {
            self.writes_left.fetch_sub(1, Ordering::SeqCst);
        }
        self.inner
            .replace_wrapped_dek(id, version, expected, new)
            .await
    }
}

/// A random master key entry `v<N>:<base64>` and its raw bytes.
pub fn master_key(version: u32) -> (String, Vec<u8>) {
    let entry = LocalKeyProvider::generate_entry(version).unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(entry.split_once(':').unwrap().1)
        .unwrap();
    (entry.to_string(), raw)
}

pub struct Fixture {
    pub store: Arc<FaultyStore>,
    pub audit: Arc<MemoryAuditLog>,
    pub custody: Arc<Custody>,
    pub caller: Caller,
}

impl Fixture {
    pub fn new(provider: Arc<dyn KeyProvider>, config: CustodyConfig) -> Self {
        let store = Arc::new(FaultyStore::new());
        Self::with_store(store, provider, config)
    }

    pub fn with_store(
        store: Arc<FaultyStore>,
        provider: Arc<dyn KeyProvider>,
        config: CustodyConfig,
    ) -> Self {
        let audit = Arc::new(MemoryAuditLog::new());
        let custody = Arc::new(Custody::new(store.clone(), provider, audit.clone(), config));
        Self {
            store,
            audit,
            custody,
            caller: Caller::new("tester")
                .with_request_id("req-42")
                .with_ip("192.0.2.7"),
        }
    }

    /// A fixture over a fresh local provider with one master key (v1).
    pub fn local() -> Self {
        let (entry, _) = master_key(1);
        Self::new(
            Arc::new(LocalKeyProvider::parse(&entry).unwrap()),
            CustodyConfig::default(),
        )
    }

    pub fn records(&self) -> Vec<AuditRecord> {
        self.audit.records()
    }

    pub fn last_record(&self) -> AuditRecord {
        self.records().pop().expect("an audit record")
    }
}

pub fn wid(raw: &str) -> WalletId {
    WalletId::new(raw).unwrap()
}

/// Decrypts a stored key outside custody (test-only) and checks it still derives the stored
/// address: proves a key is intact after rewraps.
pub async fn decrypt_stored(
    provider: &dyn KeyProvider,
    wallet: &WalletRecord,
    key: &KeyRecord,
) -> Result<Zeroizing<Vec<u8>>> {
    let dek = provider.unwrap(&key.sealed.wrapped_dek).await?;
    let aad = associated_data(
        &wallet.id,
        wallet.chain,
        key.info.version,
        Purpose::SigningKey,
    );
    let plaintext = open(
        dek.expose_secret(),
        &key.sealed.nonce,
        &key.sealed.ciphertext,
        &aad,
        SecretKind::PrivateKey,
    )?;
    assert_eq!(
        address_of(wallet.chain, &plaintext),
        key.info.address,
        "decrypted key of {} v{} does not match its address",
        wallet.id,
        key.info.version
    );
    Ok(plaintext)
}

pub fn address_of(chain: Chain, secret: &[u8]) -> String {
    match chain {
        Chain::Evm => PrivateKeySigner::from_slice(secret)
            .unwrap()
            .address()
            .to_checksum(None),
        Chain::Solana => {
            let key = ed25519_dalek::SigningKey::from_bytes(secret.try_into().unwrap());
            bs58::encode(key.verifying_key().to_bytes()).into_string()
        }
        _ => unreachable!("new chain"),
    }
}

/// The action and `details.outcome` of an audit record.
pub fn action_outcome(record: &AuditRecord) -> (String, String) {
    (
        record.event.action.clone(),
        record.event.details["outcome"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}
