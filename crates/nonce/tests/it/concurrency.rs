//! A2 on Redis: 4 OS processes × 64 tasks share one account (the scenario lives in
//! `haven_nonce::conformance::multiprocess`, shared with the Postgres store's tests).

use std::sync::Arc;
use std::time::Duration;

use haven_nonce::conformance::{fresh_key, multiprocess};
use haven_nonce::{NonceStore, RedisNonceStore};
use haven_testkit::TestRedis;

/// Long enough for an honest reserve → commit under load; abandoned leases wait this out.
const LEASE_TTL: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_share_one_key_without_duplicates_or_gaps() {
    let redis = TestRedis::new().await;
    let key = fresh_key();
    let n = multiprocess::total_nonces();
    let env = [("A2_PREFIX", redis.prefix()), ("REDIS_URL", redis.url())];
    let committed = multiprocess::run_processes("concurrency::worker_process", key, n, &env).await;
    multiprocess::assert_contiguous(&committed, n);

    let store = RedisNonceStore::new(crate::patient_pool(redis.url(), 16), redis.prefix());
    let status = store.status(&key).await.unwrap();
    assert!(
        status.leases.iter().all(|l| l.nonce >= n),
        "{:?}",
        status.leases
    );
    assert!(status.free.iter().all(|&f| f >= n), "{:?}", status.free);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of processes_share_one_key_without_duplicates_or_gaps"]
async fn worker_process() {
    let Some(args) = multiprocess::WorkerArgs::from_env() else {
        return;
    };
    let pool = crate::patient_pool(&TestRedis::server_url(), 4);
    let prefix = std::env::var("A2_PREFIX").unwrap();
    let store = Arc::new(RedisNonceStore::new(pool, prefix));
    multiprocess::run_worker(store, &args, LEASE_TTL).await;
}
