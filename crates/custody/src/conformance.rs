//! The behaviour every [`WalletStore`] must show, as async checks that panic on failure.
//!
//! Run [`run_all`] against a fresh, empty store (e.g. one Postgres database per test):
//!
//! ```ignore
//! haven_custody::conformance::run_all(&my_store).await;
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};

use crate::Error;
use crate::store::{KeyCursor, WalletStore};
use crate::types::{
    Chain, KeyInfo, KeyRecord, KeyStatus, PageRequest, SealedKey, WalletFilter, WalletId,
    WalletRecord, WalletStatus, WrappedDek,
};

fn id(raw: &str) -> WalletId {
    WalletId::new(raw).unwrap()
}

/// A wallet row and key record with recognisable fake ciphertexts (the store never decrypts).
pub fn sample(
    raw_id: &str,
    chain: Chain,
    version: u32,
    kek_version: u32,
) -> (WalletRecord, KeyRecord) {
    let now = Utc::now() - Duration::seconds(60);
    let wallet = WalletRecord {
        id: id(raw_id),
        chain,
        status: WalletStatus::Active,
        current_version: version,
        metadata: serde_json::json!({"label": raw_id}),
        created_at: now,
        updated_at: now,
    };
    let key = KeyRecord {
        wallet_id: id(raw_id),
        info: KeyInfo {
            version,
            address: format!("addr-{raw_id}-{version}"),
            status: KeyStatus::Active,
            kek_version,
            created_at: now,
            retired_at: None,
        },
        sealed: SealedKey {
            nonce: [version as u8; 12],
            ciphertext: format!("ct-{raw_id}-{version}").into_bytes(),
            wrapped_dek: WrappedDek {
                kek_version,
                ciphertext: format!("dek-{raw_id}-{version}-{kek_version}").into_bytes(),
            },
        },
    };
    (wallet, key)
}

/// Every check, in order, each on its own wallet ids.
pub async fn run_all(store: &dyn WalletStore) {
    insert_get_and_duplicates(store).await;
    list_filters_and_pages(store).await;
    rotate_keeps_old_keys_listed(store).await;
    revoke_is_final(store).await;
    rewrap_walk_and_compare_and_set(store).await;
}

/// Insert, read back (equal), refuse a duplicate id; unknown ids read as `None`.
pub async fn insert_get_and_duplicates(store: &dyn WalletStore) {
    let (w, k) = sample("conf-a", Chain::Evm, 1, 1);
    store.insert(&w, &k).await.unwrap();
    let got = store.get(&w.id).await.unwrap().unwrap();
    assert_eq!(got.record.id, w.id);
    assert_eq!(got.record.chain, Chain::Evm);
    assert_eq!(got.record.metadata, w.metadata);
    assert_eq!(got.keys, vec![k.info.clone()]);
    let (_, stored) = store.signing_key(&w.id, None).await.unwrap().unwrap();
    assert_eq!(stored, k);
    assert!(matches!(
        store.insert(&w, &k).await,
        Err(Error::WalletExists { .. })
    ));
    assert!(store.get(&id("conf-missing")).await.unwrap().is_none());
    assert!(
        store
            .signing_key(&id("conf-missing"), None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.signing_key(&w.id, Some(9)).await.unwrap().is_none());
}

/// Filters by chain and status; keyset pages cover everything once, in id order.
pub async fn list_filters_and_pages(store: &dyn WalletStore) {
    for i in 0..7 {
        let chain = if i % 2 == 0 {
            Chain::Evm
        } else {
            Chain::Solana
        };
        let (w, k) = sample(&format!("conf-list-{i}"), chain, 1, 1);
        store.insert(&w, &k).await.unwrap();
    }
    let filter = WalletFilter {
        chain: Some(Chain::Solana),
        status: None,
    };
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let got = store.list(&filter, &page).await.unwrap();
        assert!(got.wallets.len() <= 2);
        seen.extend(got.wallets.iter().map(|w| w.id().to_string()));
        assert!(got.wallets.iter().all(|w| w.chain() == Chain::Solana));
        match got.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    let solana: Vec<String> = seen
        .iter()
        .filter(|s| s.starts_with("conf-list-"))
        .cloned()
        .collect();
    assert_eq!(solana, ["conf-list-1", "conf-list-3", "conf-list-5"]);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages are ordered by id");
}

/// Rotation adds version n+1 as current, marks n rotated, keeps it listed; a stale expected
/// version is a conflict.
pub async fn rotate_keeps_old_keys_listed(store: &dyn WalletStore) {
    let (w, k) = sample("conf-rot", Chain::Evm, 1, 1);
    store.insert(&w, &k).await.unwrap();
    let (_, k2) = sample("conf-rot", Chain::Evm, 2, 1);
    let at = Utc::now();
    let rotated = store.rotate(&w.id, 1, &k2, at).await.unwrap();
    assert_eq!(rotated.record.current_version, 2);
    assert_eq!(rotated.keys.len(), 2);
    assert_eq!(rotated.keys[0].status, KeyStatus::Rotated);
    assert!(rotated.keys[0].retired_at.is_some());
    assert_eq!(rotated.keys[1].status, KeyStatus::Active);
    let (_, current) = store.signing_key(&w.id, None).await.unwrap().unwrap();
    assert_eq!(current.info.version, 2);
    let (_, old) = store.signing_key(&w.id, Some(1)).await.unwrap().unwrap();
    assert_eq!(old.info.status, KeyStatus::Rotated);
    let (_, k3) = sample("conf-rot", Chain::Evm, 3, 1);
    assert!(matches!(
        store.rotate(&w.id, 1, &k3, at).await,
        Err(Error::Conflict { .. })
    ));
}

/// Revocation marks the wallet and its current key; it is idempotent and blocks rotation.
pub async fn revoke_is_final(store: &dyn WalletStore) {
    let (w, k) = sample("conf-rev", Chain::Solana, 1, 1);
    store.insert(&w, &k).await.unwrap();
    let revoked = store.revoke(&w.id, Utc::now()).await.unwrap();
    assert_eq!(revoked.status(), WalletStatus::Revoked);
    assert_eq!(revoked.keys[0].status, KeyStatus::Revoked);
    let again = store.revoke(&w.id, Utc::now()).await.unwrap();
    assert_eq!(again.status(), WalletStatus::Revoked);
    let (_, k2) = sample("conf-rev", Chain::Solana, 2, 1);
    assert!(matches!(
        store.rotate(&w.id, 1, &k2, Utc::now()).await,
        Err(Error::NotActive { .. })
    ));
    assert!(matches!(
        store.revoke(&id("conf-rev-missing"), Utc::now()).await,
        Err(Error::WalletNotFound { .. })
    ));
}

/// The rewrap walk sees only keys below the version, in order, after the cursor; the
/// replacement is a compare-and-set.
pub async fn rewrap_walk_and_compare_and_set(store: &dyn WalletStore) {
    for i in 0..3 {
        let (w, k) = sample(&format!("conf-rw-{i}"), Chain::Evm, 1, 100);
        store.insert(&w, &k).await.unwrap();
    }
    let (w, k) = sample("conf-rw-new", Chain::Evm, 1, 101);
    store.insert(&w, &k).await.unwrap();
    let below = store.count_keys_to_rewrap(101).await.unwrap();
    let first = store.keys_to_rewrap(101, None, 1000).await.unwrap();
    assert_eq!(first.len() as u64, below);
    let ours: Vec<_> = first
        .iter()
        .filter(|k| k.wallet_id.as_str().starts_with("conf-rw-"))
        .map(|k| k.wallet_id.to_string())
        .collect();
    assert_eq!(ours, ["conf-rw-0", "conf-rw-1", "conf-rw-2"]);
    let target = first
        .iter()
        .find(|k| k.wallet_id.as_str() == "conf-rw-1")
        .unwrap()
        .clone();
    let cursor = KeyCursor {
        wallet_id: target.wallet_id.clone(),
        version: 1,
    };
    let after = store
        .keys_to_rewrap(101, Some(&cursor), 1000)
        .await
        .unwrap();
    assert!(after.iter().all(|k| k.wallet_id > target.wallet_id));

    let new = WrappedDek {
        kek_version: 101,
        ciphertext: b"rewrapped".to_vec(),
    };
    assert!(
        store
            .replace_wrapped_dek(&target.wallet_id, 1, &target.sealed.wrapped_dek, &new)
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_wrapped_dek(&target.wallet_id, 1, &target.sealed.wrapped_dek, &new)
            .await
            .unwrap()
    );
    let (_, stored) = store
        .signing_key(&target.wallet_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.sealed.wrapped_dek, new);
    assert_eq!(stored.info.kek_version, 101);
    assert_eq!(stored.sealed.ciphertext, target.sealed.ciphertext);
    assert_eq!(store.count_keys_to_rewrap(101).await.unwrap(), below - 1);
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_store_conforms() {
        super::run_all(&crate::MemoryWalletStore::new()).await;
    }
}
