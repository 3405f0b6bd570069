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
