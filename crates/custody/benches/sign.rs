//! A7: decrypt + sign against a bare secp256k1 sign, in the same run.
//!
//! - `bare_secp256k1_sign`: alloy's `PrivateKeySigner` (k256) with the key already in memory
//!   — the baseline;
//! - `envelope_decrypt_and_sign`: unwrap the data key (local KEK, AES-256-GCM), open the
//!   sealed private key (AES-256-GCM with its AAD), sign from the scalar — the custody path;
//! - `envelope_decrypt_and_sign_via_local_signer`: the same but building a
//!   `PrivateKeySigner` per signature (what a naive design does: it also derives the public
//!   key);
//! - `custody_sign_hash`: the whole `Custody::sign_hash` operation with the in-memory store
//!   and a hash-chaining audit sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use alloy::primitives::B256;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use async_trait::async_trait;
use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use haven_core::audit::{AuditError, AuditEvent, AuditRecord, AuditSink, GENESIS_HASH};
use haven_custody::envelope::{Purpose, associated_data, open};
use haven_custody::{
    Caller, Chain, Custody, CustodyConfig, KeyProvider, LocalKeyProvider, MemoryWalletStore,
    SecretKind, WalletId, WalletStore, sign_evm_prehash,
};

/// Chains every event like the real log but keeps only the head, so memory stays flat.
#[derive(Debug)]
struct HeadOnlyAudit(Mutex<(i64, [u8; 32])>);

#[async_trait]
impl AuditSink for HeadOnlyAudit {
    async fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        let mut head = self.0.lock().unwrap();
        let record = AuditRecord::chain(head.0 + 1, event, Utc::now(), head.1);
        *head = (record.seq, record.hash);
        Ok(record)
    }
}

fn bench_sign(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let entry = LocalKeyProvider::generate_entry(1).unwrap();
    let provider = Arc::new(LocalKeyProvider::parse(&entry).unwrap());
    let store = Arc::new(MemoryWalletStore::new());
    let custody = Custody::new(
        store.clone(),
        provider.clone(),
        Arc::new(HeadOnlyAudit(Mutex::new((0, GENESIS_HASH)))),
        CustodyConfig::default(),
    );
    let caller = Caller::new("bench");
    let id = WalletId::new("bench-wallet").unwrap();
    runtime
        .block_on(custody.create_wallet(id.clone(), Chain::Evm, serde_json::Value::Null, &caller))
        .unwrap();
    let (wallet, key) = runtime
        .block_on(store.signing_key(&id, None))
        .unwrap()
        .unwrap();
    let aad = associated_data(
        &wallet.id,
        wallet.chain,
        key.info.version,
        Purpose::SigningKey,
    );
    let decrypt = || {
        let dek = runtime
            .block_on(provider.unwrap(&key.sealed.wrapped_dek))
            .unwrap();
        open(
            dek.expose_secret(),
            &key.sealed.nonce,
            &key.sealed.ciphertext,
            &aad,
            SecretKind::PrivateKey,
        )
        .unwrap()
    };
    let plain = decrypt();
    let in_memory = PrivateKeySigner::from_slice(&plain).unwrap();
    let hash = B256::repeat_byte(0x42);

    let mut group = c.benchmark_group("sign_hash");
    group.sample_size(60);
    group.bench_function("bare_secp256k1_sign", |b| {
        b.iter(|| {
            in_memory
                .sign_hash_sync(std::hint::black_box(&hash))
                .unwrap()
        })
    });
    group.bench_function("envelope_decrypt_and_sign", |b| {
        b.iter(|| {
            let plaintext = decrypt();
            let secret: &[u8; 32] = plaintext.as_slice().try_into().unwrap();
            sign_evm_prehash(secret, std::hint::black_box(&hash)).unwrap()
        })
    });
    group.bench_function("envelope_decrypt_and_sign_via_local_signer", |b| {
        b.iter(|| {
            let plaintext = decrypt();
            PrivateKeySigner::from_slice(&plaintext)
                .unwrap()
                .sign_hash_sync(std::hint::black_box(&hash))
                .unwrap()
        })
    });
    group.bench_function("custody_sign_hash", |b| {
        b.iter(|| {
            runtime
                .block_on(custody.sign_hash(&id, std::hint::black_box(&hash), &caller))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_sign);
criterion_main!(benches);
