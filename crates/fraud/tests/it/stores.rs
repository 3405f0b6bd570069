use std::sync::Arc;

use haven_fraud::conformance::{alert_store_suite, window_store_suite};
use haven_fraud::{MemoryAlertStore, MemoryWindowStore, RedisWindowStore};
use haven_testkit::TestRedis;

#[tokio::test]
async fn memory_window_store_conforms() {
    window_store_suite(Arc::new(MemoryWindowStore::new()), "t:").await;
}

#[tokio::test]
async fn redis_window_store_conforms() {
    let redis = TestRedis::new().await;
    window_store_suite(
        Arc::new(RedisWindowStore::new(redis.pool())),
        redis.prefix(),
    )
    .await;
    assert!(
        redis.key_count() > 0,
        "the suite wrote under the test prefix"
    );
}

#[tokio::test]
async fn memory_alert_store_conforms() {
    alert_store_suite(Arc::new(MemoryAlertStore::new())).await;
}

/// The Redis store keeps one shared connection; when the server goes away it reports
/// `Unavailable` and, once the server is back, reconnects by itself.
#[tokio::test(flavor = "multi_thread")]
async fn redis_window_store_reconnects_after_a_server_restart() {
    use haven_fraud::{StoreError, WindowStore};
    let mut server = haven_testkit::RedisServer::spawn();
    let pool = deadpool_redis::Config::from_url(server.url())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    let store = RedisWindowStore::new(pool);
    assert!(store.mark_seen("r:a", None).await.unwrap());

    server.stop();
    let err = store.mark_seen("r:b", None).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");

    server.restart();
    let mut last = None;
    for _ in 0..50 {
        match store.mark_seen("r:c", None).await {
            Ok(first) => {
                last = Some(first);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert_eq!(
        last,
        Some(true),
        "the store reconnected to the restarted server"
    );
    assert!(!store.mark_seen("r:c", None).await.unwrap());
}
