//! The Postgres transaction store: the shared conformance suite, and exactly-once minting
//! through `TokenOps` with the Postgres transaction and nonce stores on a real anvil.

use std::sync::Arc;

use alloy::primitives::U256;
use alloy::providers::{Provider, ProviderBuilder};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_chain::conformance::{self, fixtures};
use haven_chain::{
    ChainConfig, HavenToken, MemoryAlertSink, TokenOps, TokenOpsParts, TxStatus, TxStore,
};
use haven_custody::{Caller, WalletId};
use haven_db::{PgNonceStore, PgTxStore};
use haven_nonce::{NonceKey, NonceStore};
use haven_resilience::{BreakerConfig, CircuitBreaker};
use haven_testkit::{Anvil, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_tx_store_passes_the_conformance_suite() {
    let db = TestDb::new().await;
    let store = Arc::new(PgTxStore::new(
        haven_db::connect(db.url(), 16).await.unwrap(),
    ));
    conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schema_refuses_an_unknown_status_or_kind() {
    let db = TestDb::new().await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let insert = |kind: &str, status: &str| {
        format!(
            "INSERT INTO transactions (tx_id, kind, chain_id, token, from_address, amount, status, \
             gas_limit, created_at, updated_at, version) VALUES ('t:{kind}:{status}', '{kind}', 1, \
             decode(repeat('aa', 20), 'hex'), decode(repeat('bb', 20), 'hex'), 1, '{status}', \
             21000, now(), now(), 1)"
        )
    };
    diesel::sql_query(insert("mint", "queued"))
        .execute(&mut conn)
        .await
        .unwrap();
    for (kind, status) in [("mint", "sent"), ("approve", "queued")] {
        let err = diesel::sql_query(insert(kind, status))
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("check constraint"),
            "{kind}/{status}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schema_takes_a_holder_exactly_for_burn_from_and_transfer_from() {
    let db = TestDb::new().await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let insert = |n: usize, kind: &str, holder: &str| {
        format!(
            "INSERT INTO transactions (tx_id, kind, chain_id, token, from_address, holder, \
             amount, status, gas_limit, created_at, updated_at, version) VALUES \
             ('t:{n}', '{kind}', 1, decode(repeat('aa', 20), 'hex'), \
             decode(repeat('bb', 20), 'hex'), {holder}, 1, 'queued', 21000, now(), now(), 1)"
        )
    };
    let holder = "decode(repeat('cc', 20), 'hex')";
    let accepted = [
        ("burn_from", holder),
        ("transfer_from", holder),
        ("burn", "NULL"),
    ];
    let refused = [
        ("burn_from", "NULL"),
        ("transfer_from", "NULL"),
        ("mint", holder),
        ("burn_from", "decode(repeat('cc', 19), 'hex')"),
    ];
    for (n, (kind, holder)) in accepted.into_iter().enumerate() {
        diesel::sql_query(insert(n, kind, holder))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{kind}/{holder}: {e}"));
    }
    for (n, (kind, holder)) in refused.into_iter().enumerate() {
        let err = diesel::sql_query(insert(100 + n, kind, holder))
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("check constraint"),
            "{kind}/{holder}: {err}"
        );
    }
}

/// A2 on Postgres: the same tx_id submitted three times at once, by three `TokenOps` sharing
/// the database (as three api replicas would), puts one mint on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_tx_id_three_times_concurrently_mints_once_with_postgres_stores() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let anvil = Anvil::spawn();
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 16).await.unwrap();
    let custody = fixtures::memory_custody(&["minter"]).await;
    let minter = fixtures::wallet_address(&custody, "minter").await;
    let token = fixtures::deploy_and_fund(
        &anvil.endpoint(),
        Anvil::DEV_PRIVATE_KEYS[0],
        minter,
        &[minter],
    )
    .await;
    let reader = ProviderBuilder::new()
        .connect_http(anvil.endpoint().parse().unwrap())
        .erased();

    let mut replicas = Vec::new();
    for _ in 0..3 {
        let parts = TokenOpsParts {
            provider: reader.clone(),
            chain_id: Anvil::CHAIN_ID,
            token,
            custody: custody.clone(),
            wallet: WalletId::new("minter").unwrap(),
            caller: Caller::new("db-chain-test"),
            nonces: Arc::new(PgNonceStore::new(pool.clone())),
            breaker: Arc::new(CircuitBreaker::new("rpc", BreakerConfig::default()).unwrap()),
            store: Arc::new(PgTxStore::new(pool.clone())),
            alerts: Arc::new(MemoryAlertSink::new()),
        };
        replicas.push(TokenOps::new(parts, ChainConfig::default()).await.unwrap());
    }

    let amount = U256::from(7_000u64);
    let calls = replicas.iter().map(|ops| {
        let ops = ops.clone();
        tokio::spawn(async move { ops.mint("booking:1:mint", recipient(), amount).await })
    });
    let records: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|outcome| outcome.unwrap().unwrap())
        .collect();
    // Callers that lost the insert may see the record before it was signed; every one that
    // saw a hash saw the same one.
    let hashes: std::collections::BTreeSet<_> = records.iter().filter_map(|r| r.hash).collect();
    assert!(hashes.len() <= 1, "{records:?}");

    let ops = &replicas[0];
    for _ in 0..5 {
        ops.monitor_once(chrono::Utc::now()).await.unwrap();
        if ops.get("booking:1:mint").await.unwrap().unwrap().status == TxStatus::Confirmed {
            break;
        }
    }
    let stored = PgTxStore::new(pool.clone())
        .get("booking:1:mint")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, TxStatus::Confirmed, "{stored:?}");
    assert_eq!(stored.nonce, Some(0));
    assert_eq!(stored.attempts, 1, "broadcast once: {stored:?}");

    let onchain = HavenToken::new(token, &reader);
    assert_eq!(onchain.totalSupply().call().await.unwrap(), amount);
    assert_eq!(onchain.balanceOf(recipient()).call().await.unwrap(), amount);
    assert_eq!(
        reader.get_transaction_count(minter).latest().await.unwrap(),
        1,
        "one transaction left the minter"
    );
    let nonces = PgNonceStore::new(pool.clone())
        .status(&NonceKey::new(Anvil::CHAIN_ID, minter))
        .await
        .unwrap();
    assert_eq!(nonces.next, 1, "one nonce reserved: {nonces:?}");
    assert!(nonces.leases.is_empty(), "{nonces:?}");

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let rows: Count = diesel::sql_query("SELECT count(*) AS n FROM transactions")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.n, 1);
}

fn recipient() -> alloy::primitives::Address {
    alloy::primitives::Address::repeat_byte(0x42)
}
