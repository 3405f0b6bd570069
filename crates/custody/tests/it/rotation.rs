//! A3: KEK rotation with the local provider — add v2, rewrap (killed midway, then rerun),
//! retire v1.

use std::sync::Arc;

use alloy::primitives::B256;
use haven_core::audit::verify_chain;
use haven_custody::{
    Chain, CustodyConfig, Error, KeyProvider, KeyStatus, LocalKeyProvider, RewrapProgress,
    WalletStore,
};

use crate::support::{
    FaultyStore, Fixture, action_outcome, all_keys, decrypt_stored, master_key, wid,
};

/// Wallets in every state: active, rotated (two versions), revoked; both chains.
async fn populate(fx: &Fixture, n: usize) {
    for i in 0..n {
        let id = wid(&format!("kek-{i:03}"));
        let chain = if i % 3 == 0 {
            Chain::Solana
        } else {
            Chain::Evm
        };
        fx.custody
            .create_wallet(id.clone(), chain, serde_json::json!({"i": i}), &fx.caller)
            .await
            .unwrap();
        if i % 4 == 1 {
            fx.custody.rotate_wallet(&id, &fx.caller).await.unwrap();
        }
        if i % 7 == 2 {
            fx.custody.revoke_wallet(&id, &fx.caller).await.unwrap();
        }
    }
}

async fn assert_all_decrypt(store: &FaultyStore, provider: &dyn KeyProvider) -> usize {
    let keys = all_keys(store).await;
    for (wallet, key) in &keys {
        decrypt_stored(provider, wallet, key).await.unwrap();
    }
    keys.len()
}

#[tokio::test]
async fn rewrap_killed_midway_then_rerun_loses_nothing() {
    let (v1, _) = master_key(1);
    let (v2, _) = master_key(2);
    let only_v1: Arc<dyn KeyProvider> = Arc::new(LocalKeyProvider::parse(&v1).unwrap());
    let store = Arc::new(FaultyStore::default());
    let config = CustodyConfig {
        allow_export: false,
        rewrap_batch_size: 4,
    };
    let old = Fixture::with_store(store.clone(), only_v1.clone(), config.clone());
    populate(&old, 30).await;
    let total_keys = assert_all_decrypt(&store, only_v1.as_ref()).await;
    assert!(total_keys > 30, "some wallets have two key versions");
    // a copy of a v1-wrapped key, kept to prove v1 is retired at the end
    let (stale_wallet, stale_key) = all_keys(&store).await.remove(0);
    assert_eq!(stale_key.sealed.wrapped_dek.kek_version, 1);

    // v2 added: new keys wrap under v2, the old ones still open under v1
    let both = Arc::new(LocalKeyProvider::parse(&format!("{v1},{v2}")).unwrap());
    let fx = Fixture::with_store(store.clone(), both.clone(), config.clone());
    let fresh = fx
        .custody
        .create_wallet(
            wid("kek-new"),
            Chain::Evm,
            serde_json::Value::Null,
            &fx.caller,
        )
        .await
        .unwrap();
    assert_eq!(fresh.keys[0].kek_version, 2);
    fx.custody
        .sign_hash(&wid("kek-001"), &B256::ZERO, &fx.caller)
        .await
        .unwrap();
    assert_eq!(
        store.count_keys_to_rewrap(2).await.unwrap(),
        total_keys as u64
    );

    // killed after 7 writes
    store.fail_rewrap_after(7);
    let mut seen: Vec<RewrapProgress> = Vec::new();
    let err = fx
        .custody
        .rewrap_all(2, &fx.caller, &mut |p| seen.push(*p))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    assert_eq!(seen.first().unwrap().total, total_keys as u64);
    assert_eq!(seen.last().unwrap().rewrapped, 7);
    let record = fx.last_record();
    assert_eq!(
        action_outcome(&record),
        ("custody.rewrap_all".into(), "refused".into())
    );
    assert_eq!(record.event.details["rewrapped"], 7);
    assert_eq!(
        store.count_keys_to_rewrap(2).await.unwrap(),
        total_keys as u64 - 7
    );
    // nothing lost: every key, half rewrapped or not, opens and matches its address
    assert_all_decrypt(&store, both.as_ref()).await;

    // rerun finishes the rest and only the rest
    store.heal();
    let mut seen = Vec::new();
    let done = fx
        .custody
        .rewrap_all(2, &fx.caller, &mut |p| seen.push(*p))
        .await
        .unwrap();
    assert_eq!(done.total, total_keys as u64 - 7);
    assert_eq!(done.rewrapped, total_keys as u64 - 7);
    assert_eq!(done.skipped, 0);
    assert!(seen.windows(2).all(|w| w[0].done() + 1 == w[1].done()));
    assert_eq!(seen.last().unwrap(), &done);
    assert_eq!(store.count_keys_to_rewrap(2).await.unwrap(), 0);
    assert_eq!(
        action_outcome(&fx.last_record()),
        ("custody.rewrap_all".into(), "ok".into())
    );

    // idempotent: a third run touches nothing
    let again = fx
        .custody
        .rewrap_all(2, &fx.caller, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((again.total, again.rewrapped), (0, 0));

    // v1 retired: everything still decrypts and signs; a v1 ciphertext no longer opens
    let v2_only = Arc::new(
        LocalKeyProvider::parse(&format!("{v1},{v2}"))
            .unwrap()
            .with_min_decryption_version(2)
            .unwrap(),
    );
    assert_eq!(
        assert_all_decrypt(&store, v2_only.as_ref()).await,
        total_keys + 1
    );
    let retired = Fixture::with_store(store.clone(), v2_only.clone(), config);
    for (wallet, key) in all_keys(&store).await {
        assert_eq!(key.info.kek_version, 2);
        if key.info.status == KeyStatus::Active {
            retired
                .custody
                .sign_hash(&wallet.id, &B256::repeat_byte(9), &retired.caller)
                .await
                .unwrap();
        }
    }
    assert!(matches!(
        decrypt_stored(v2_only.as_ref(), &stale_wallet, &stale_key).await,
        Err(Error::KekVersionRetired { version: 1 })
    ));
    store.tamper(
        &stale_wallet.id,
        stale_key.info.version,
        stale_key.sealed.clone(),
    );
    if stale_key.info.status == KeyStatus::Active {
        assert!(matches!(
            retired
                .custody
                .sign_hash(&stale_wallet.id, &B256::ZERO, &retired.caller)
                .await,
            Err(Error::KekVersionRetired { version: 1 })
        ));
    }
    verify_chain(&fx.records()).unwrap();
}

#[tokio::test]
async fn rewrap_refuses_a_target_the_provider_does_not_encrypt_with() {
    let fx = Fixture::local();
    fx.custody
        .create_wallet(
            wid("kek-x"),
            Chain::Evm,
            serde_json::Value::Null,
            &fx.caller,
        )
        .await
        .unwrap();
    let err = fx
        .custody
        .rewrap_all(2, &fx.caller, &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::KekVersionMismatch {
                requested: 2,
                current: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        action_outcome(&fx.last_record()),
        ("custody.rewrap_all".into(), "refused".into())
    );
}

#[tokio::test]
async fn a_wallet_created_before_min_version_was_raised_fails_until_rewrapped() {
    let (v1, _) = master_key(1);
    let (v2, _) = master_key(2);
    let store = Arc::new(FaultyStore::default());
    let old = Fixture::with_store(
        store.clone(),
        Arc::new(LocalKeyProvider::parse(&v1).unwrap()),
        CustodyConfig::default(),
    );
    let id = wid("kek-early");
    old.custody
        .create_wallet(id.clone(), Chain::Evm, serde_json::Value::Null, &old.caller)
        .await
        .unwrap();
    // min raised too early, without a rewrap: the v1 key is refused
    let strict = Fixture::with_store(
        store.clone(),
        Arc::new(
            LocalKeyProvider::parse(&format!("{v1},{v2}"))
                .unwrap()
                .with_min_decryption_version(2)
                .unwrap(),
        ),
        CustodyConfig::default(),
    );
    assert!(matches!(
        strict
            .custody
            .sign_hash(&id, &B256::ZERO, &strict.caller)
            .await,
        Err(Error::KekVersionRetired { version: 1 })
    ));
}
