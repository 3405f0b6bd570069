//! Fixtures: a custody over a store that can fail or serve tampered rows on demand.

use std::sync::Arc;

use alloy::signers::local::PrivateKeySigner;
use base64::Engine as _;
use haven_core::audit::{AuditRecord, MemoryAuditLog};
use haven_custody::envelope::{Purpose, associated_data, open};
use haven_custody::{
    Caller, Chain, Custody, CustodyConfig, FaultyWalletStore, KeyProvider, KeyRecord,
    LocalKeyProvider, MemoryWalletStore, PageRequest, Result, SecretKind, WalletFilter, WalletId,
    WalletRecord, WalletStore,
};
use zeroize::Zeroizing;

/// The custody tests' store: a [`MemoryWalletStore`] with injectable faults.
pub type FaultyStore = FaultyWalletStore<MemoryWalletStore>;

/// Every key record of every wallet of `store`, as stored.
pub async fn all_keys(store: &FaultyStore) -> Vec<(WalletRecord, KeyRecord)> {
    let inner = store.inner();
    let mut out = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let got = inner.list(&WalletFilter::default(), &page).await.unwrap();
        for wallet in &got.wallets {
            for key in &wallet.keys {
                let (w, k) = inner
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
        let store = Arc::new(FaultyStore::default());
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
