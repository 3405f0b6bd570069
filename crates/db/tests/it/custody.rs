//! The Postgres wallet store: the shared conformance suite, a rewrap killed midway and rerun,
//! a ciphertext moved to another wallet's row, racing rotations, and a database that is down.

use std::sync::Arc;

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_core::audit::MemoryAuditLog;
use haven_custody::envelope::{Purpose, associated_data, open};
use haven_custody::{
    Caller, Chain, Custody, CustodyConfig, Error, FaultyWalletStore, KeyProvider, KeyRecord,
    KeyStatus, LocalKeyProvider, PageRequest, SecretKind, WalletFilter, WalletId, WalletRecord,
    WalletStatus, WalletStore, conformance,
};
use haven_db::PgWalletStore;
use haven_testkit::TestDb;

fn wid(raw: &str) -> WalletId {
    WalletId::new(raw).unwrap()
}

async fn pg_store(db: &TestDb) -> Arc<PgWalletStore> {
    Arc::new(PgWalletStore::new(
        haven_db::connect(db.url(), 8).await.unwrap(),
    ))
}

fn custody(store: Arc<dyn WalletStore>, provider: Arc<dyn KeyProvider>) -> Custody {
    let config = CustodyConfig {
        allow_export: false,
        rewrap_batch_size: 3,
    };
    Custody::new(store, provider, Arc::new(MemoryAuditLog::new()), config)
}

fn provider(spec: &str) -> Arc<LocalKeyProvider> {
    Arc::new(LocalKeyProvider::parse(spec).unwrap())
}

/// Every key row of every wallet, as stored.
async fn all_keys(store: &dyn WalletStore) -> Vec<(WalletRecord, KeyRecord)> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let got = store.list(&WalletFilter::default(), &page).await.unwrap();
        for wallet in &got.wallets {
            for key in &wallet.keys {
                out.push(
                    store
                        .signing_key(wallet.id(), Some(key.version))
                        .await
                        .unwrap()
                        .unwrap(),
                );
            }
        }
        match got.next {
            Some(next) => page.after = Some(next),
            None => return out,
        }
    }
}

/// Opens every stored private key with `provider` (outside custody, test only).
async fn open_all(store: &dyn WalletStore, provider: &dyn KeyProvider) -> usize {
    let keys = all_keys(store).await;
    for (wallet, key) in &keys {
        let dek = provider.unwrap(&key.sealed.wrapped_dek).await.unwrap();
        let aad = associated_data(
            &wallet.id,
            wallet.chain,
            key.info.version,
            Purpose::SigningKey,
        );
        let secret = open(
            dek.expose_secret(),
            &key.sealed.nonce,
            &key.sealed.ciphertext,
            &aad,
            SecretKind::PrivateKey,
        )
        .unwrap();
        assert_eq!(secret.len(), 32, "{} v{}", wallet.id, key.info.version);
    }
    keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_conformance_suite() {
    let db = TestDb::new().await;
    conformance::run_all(pg_store(&db).await.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rewrap_killed_midway_then_rerun_loses_nothing() {
    let db = TestDb::new().await;
    let store = pg_store(&db).await;
    let v1 = LocalKeyProvider::generate_entry(1).unwrap();
    let v2 = LocalKeyProvider::generate_entry(2).unwrap();
    let caller = Caller::system();

    // wallets in every state: active, rotated (two versions), revoked; both chains
    let old = custody(store.clone(), provider(&v1));
    for i in 0..12 {
        let id = wid(&format!("kek-{i:02}"));
        let chain = if i % 3 == 0 {
            Chain::Solana
        } else {
            Chain::Evm
        };
        old.create_wallet(id.clone(), chain, serde_json::json!({"i": i}), &caller)
            .await
            .unwrap();
        if i % 4 == 1 {
            old.rotate_wallet(&id, &caller).await.unwrap();
        }
        if i % 5 == 2 {
            old.revoke_wallet(&id, &caller).await.unwrap();
        }
    }
    let total = open_all(store.as_ref(), provider(&v1).as_ref()).await as u64;
    assert_eq!(total, 15, "12 wallets, 3 of them rotated once");
    assert_eq!(store.count_keys_to_rewrap(2).await.unwrap(), total);

    // v2 added; the rewrap dies after 5 writes, in the middle of its second batch
    let both = provider(&format!("{},{}", v1.as_str(), v2.as_str()));
    // the sixth rewrap write never returns, as if the process died there
    let killable = Arc::new(FaultyWalletStore::new(store.clone()));
    killable.hang_rewrap_after(5);
    let doomed = Arc::new(custody(killable.clone(), both.clone()));
    let run = tokio::spawn({
        let doomed = doomed.clone();
        async move { doomed.rewrap_all(2, &Caller::system(), &mut |_| {}).await }
    });
    killable.stuck().await;
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    assert_eq!(store.count_keys_to_rewrap(2).await.unwrap(), total - 5);
    // nothing lost: rewrapped or not, every key still opens
    assert_eq!(open_all(store.as_ref(), both.as_ref()).await as u64, total);

    // the rerun finishes the rest, and only the rest
    let fresh = custody(store.clone(), both.clone());
    let mut calls = 0;
    let done = fresh
        .rewrap_all(2, &caller, &mut |_| calls += 1)
        .await
        .unwrap();
    assert_eq!(
        (done.total, done.rewrapped, done.skipped),
        (total - 5, total - 5, 0)
    );
    assert_eq!(calls, total - 5 + 1);
    assert_eq!(store.count_keys_to_rewrap(2).await.unwrap(), 0);
    let again = fresh.rewrap_all(2, &caller, &mut |_| {}).await.unwrap();
    assert_eq!((again.total, again.rewrapped), (0, 0));

    // v1 retired: every key opens under v2 alone and the active wallets still sign
    let v2_only = Arc::new(
        LocalKeyProvider::parse(&format!("{},{}", v1.as_str(), v2.as_str()))
            .unwrap()
            .with_min_decryption_version(2)
            .unwrap(),
    );
    assert_eq!(
        open_all(store.as_ref(), v2_only.as_ref()).await as u64,
        total
    );
    let retired = custody(store.clone(), v2_only);
    let mut signed = 0;
    for (wallet, key) in all_keys(store.as_ref()).await {
        if wallet.status == WalletStatus::Active && key.info.status == KeyStatus::Active {
            retired
                .sign_message(&wallet.id, b"after rewrap", &caller)
                .await
                .unwrap();
            signed += 1;
        }
    }
    assert_eq!(signed, 12 - 2, "kek-02 and kek-07 are revoked");
}

#[derive(diesel::QueryableByName)]
struct Sealed {
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    key_nonce: Vec<u8>,
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ciphertext_moved_to_another_wallets_row_does_not_decrypt() {
    let db = TestDb::new().await;
    let store = pg_store(&db).await;
    let v1 = LocalKeyProvider::generate_entry(1).unwrap();
    let custody = custody(store.clone(), provider(&v1));
    let caller = Caller::system();
    for id in ["moved-a", "moved-b"] {
        custody
            .create_wallet(wid(id), Chain::Evm, serde_json::Value::Null, &caller)
            .await
            .unwrap();
    }
    let copy_a_onto_b = "UPDATE wallet_keys AS b SET key_nonce = a.key_nonce, \
         key_ciphertext = a.key_ciphertext, wrapped_dek = a.wrapped_dek, \
         kek_version = a.kek_version FROM wallet_keys AS a \
         WHERE a.wallet_id = 'moved-a' AND b.wallet_id = 'moved-b'";
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();

    // the schema itself refuses to change a sealed key
    let refused = diesel::sql_query(copy_a_onto_b).execute(&mut conn).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("immutable")),
        "{refused:?}"
    );

    // someone with the power to switch that off moves A's ciphertext (and its valid wrapped
    // data key) onto B's row: the authenticated data names A, so B's key does not open
    diesel::sql_query("ALTER TABLE wallet_keys DISABLE TRIGGER wallet_keys_guard")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        diesel::sql_query(copy_a_onto_b)
            .execute(&mut conn)
            .await
            .unwrap(),
        1
    );
    let nonces: Vec<Sealed> = diesel::sql_query(
        "SELECT key_nonce FROM wallet_keys WHERE wallet_id IN ('moved-a', 'moved-b')",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(nonces.len(), 2);
    assert_eq!(
        nonces[0].key_nonce, nonces[1].key_nonce,
        "the move happened"
    );

    let err = custody
        .sign_message(&wid("moved-b"), b"hello", &caller)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decryption {
                what: SecretKind::PrivateKey
            }
        ),
        "{err:?}"
    );
    custody
        .sign_message(&wid("moved-a"), b"hello", &caller)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_rotations_of_one_wallet_have_one_winner() {
    let db = TestDb::new().await;
    let store = pg_store(&db).await;
    let (wallet, key) = conformance::sample("race", Chain::Evm, 1, 1);
    store.insert(&wallet, &key).await.unwrap();
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let (_, next) = conformance::sample("race", Chain::Evm, 2, 1);
                store.rotate(&wid("race"), 1, &next, Utc::now()).await
            })
        })
        .collect();
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(w) => {
                won += 1;
                assert_eq!(w.record.current_version, 2);
            }
            Err(Error::Conflict { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won, 1);
    let wallet = store.get(&wid("race")).await.unwrap().unwrap();
    let statuses: Vec<_> = wallet.keys.iter().map(|k| k.status).collect();
    assert_eq!(statuses, [KeyStatus::Rotated, KeyStatus::Active]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_database_is_a_storage_error() {
    let pool = haven_db::connect_lazy("postgres://haven:haven@127.0.0.1:1/none", 1).unwrap();
    let store = PgWalletStore::new(pool);
    let err = store.get(&wid("anyone")).await.unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    assert_eq!(err.code(), haven_core::ErrorCode::DatabaseError);
    let (wallet, key) = conformance::sample("anyone", Chain::Evm, 1, 1);
    let err = store.insert(&wallet, &key).await.unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
}
