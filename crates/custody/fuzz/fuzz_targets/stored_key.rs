//! A stored key row is untrusted (the database can be edited): whatever its ciphertexts,
//! nonce and KEK version, signing must fail cleanly or succeed, never panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use alloy::primitives::B256;
use haven_core::audit::MemoryAuditLog;
use haven_custody::{
    Caller, Chain, Custody, CustodyConfig, KeyInfo, KeyRecord, KeyStatus, LocalKeyProvider,
    MemoryWalletStore, SealedKey, WalletId, WalletRecord, WalletStatus, WalletStore, WrappedDek,
};
use libfuzzer_sys::fuzz_target;

struct Setup {
    runtime: tokio::runtime::Runtime,
    provider: Arc<LocalKeyProvider>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| Setup {
        runtime: tokio::runtime::Builder::new_current_thread().build().unwrap(),
        provider: Arc::new(
            LocalKeyProvider::parse(
                "v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,v2:HwAdHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=",
            )
            .unwrap(),
        ),
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 14 {
        return;
    }
    let s = setup();
    let chain = if data[0] & 1 == 0 { Chain::Evm } else { Chain::Solana };
    let kek_version = u32::from(data[1] % 4);
    let nonce: [u8; 12] = data[2..14].try_into().unwrap();
    let rest = &data[14..];
    let split = rest.first().map_or(0, |b| usize::from(*b)).min(rest.len());
    let (wrapped, ciphertext) = rest.split_at(split);
    let id = WalletId::new("fuzz").unwrap();
    let now = chrono::Utc::now();
    let wallet = WalletRecord {
        id: id.clone(),
        chain,
        status: WalletStatus::Active,
        current_version: 1,
        metadata: serde_json::Value::Null,
        created_at: now,
        updated_at: now,
    };
    let key = KeyRecord {
        wallet_id: id.clone(),
        info: KeyInfo {
            version: 1,
            address: String::new(),
            status: KeyStatus::Active,
            kek_version,
            created_at: now,
            retired_at: None,
        },
        sealed: SealedKey {
            nonce,
            ciphertext: ciphertext.to_vec(),
            wrapped_dek: WrappedDek {
                kek_version,
                ciphertext: wrapped.to_vec(),
            },
        },
    };
    let store = Arc::new(MemoryWalletStore::new());
    let custody = Custody::new(
        store.clone(),
        s.provider.clone(),
        Arc::new(MemoryAuditLog::new()),
        CustodyConfig::default(),
    );
    s.runtime.block_on(async {
        store.insert(&wallet, &key).await.unwrap();
        let caller = Caller::system();
        let _ = custody.sign_hash(&id, &B256::ZERO, &caller).await;
        let _ = custody.sign_message(&id, data, &caller).await;
    });
});
