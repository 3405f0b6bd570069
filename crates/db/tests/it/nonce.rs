//! The Postgres nonce store: the shared conformance suite, A2 with several processes, and
//! use inside a caller's transaction.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use haven_db::PgNonceStore;
use haven_nonce::conformance::{self, fresh_key, multiprocess};
use haven_nonce::{Error, NonceStore};
use haven_testkit::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_conformance_suite() {
    let db = TestDb::new().await;
    let store = PgNonceStore::new(haven_db::connect(db.url(), 16).await.unwrap());
    conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_database_is_store_unavailable() {
    let pool = haven_db::connect_lazy("postgres://haven:haven@127.0.0.1:1/none", 1).unwrap();
    let store = PgNonceStore::new(pool);
    let err = store
        .reserve(&fresh_key(), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::StoreUnavailable {
                backend: "postgres",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_caller_transaction_takes_its_lease_with_it() {
    let db = TestDb::new().await;
    let store = PgNonceStore::new(haven_db::connect(db.url(), 4).await.unwrap());
    let key = fresh_key();
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();

    let result: Result<(), diesel::result::Error> = conn
        .transaction(async |c| {
            let lease = PgNonceStore::reserve_in(c, &key, Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(lease.nonce, 0);
            PgNonceStore::commit_in(c, &lease).await.unwrap();
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(result.is_err());
    assert_eq!(
        store.status(&key).await.unwrap().next,
        0,
        "the rollback undid the reservation"
    );

    conn.transaction::<_, diesel::result::Error, _>(async |c| {
        let lease = PgNonceStore::reserve_in(c, &key, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(lease.nonce, 0);
        PgNonceStore::commit_in(c, &lease).await.unwrap();
        Ok(())
    })
    .await
    .unwrap();
    let status = store.status(&key).await.unwrap();
    assert_eq!((status.next, status.committed), (1, vec![0]));
}

/// Database connections per worker process (4 processes share Postgres's 100).
const POOL_PER_PROCESS: usize = 16;
/// Long enough for an honest reserve → commit under load; abandoned leases wait this out.
const LEASE_TTL: Duration = Duration::from_secs(5);

/// A2 on Postgres: 4 OS processes × 64 tasks share one account (the scenario lives in
/// `haven_nonce::conformance::multiprocess`, shared with the Redis store's tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_share_one_key_without_duplicates_or_gaps() {
    let db = TestDb::new().await;
    let key = fresh_key();
    let n = multiprocess::total_nonces();
    let committed = multiprocess::run_processes(
        "nonce::worker_process",
        key,
        n,
        &[("A2_DATABASE_URL", db.url())],
    )
    .await;
    multiprocess::assert_contiguous(&committed, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of processes_share_one_key_without_duplicates_or_gaps"]
async fn worker_process() {
    let Some(args) = multiprocess::WorkerArgs::from_env() else {
        return;
    };
    let url = std::env::var("A2_DATABASE_URL").unwrap();
    let store = Arc::new(PgNonceStore::new(
        haven_db::connect(&url, POOL_PER_PROCESS).await.unwrap(),
    ));
    multiprocess::run_worker(store, &args, LEASE_TTL).await;
}
