#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anvil;
mod concurrency;
mod metrics;
mod properties;
mod redis_store;

/// A pool whose connections wait up to 10 s for a reply: the shared CI machine can stall a
/// process for longer than redis-rs's 500 ms default, which would fail a call spuriously.
pub fn patient_pool(url: &str, size: usize) -> deadpool_redis::Pool {
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(std::time::Duration::from_secs(10)))
        .set_connection_timeout(Some(std::time::Duration::from_secs(5)));
    let manager = deadpool_redis::Manager::new_with_config(url, config).unwrap();
    deadpool_redis::Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_redis::Runtime::Tokio1)
        .build()
        .unwrap()
}
