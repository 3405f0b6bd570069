use std::time::Duration;

use haven_nonce::conformance::{self, LONG};
use haven_nonce::{Error, NonceStore, RedisNonceStore};
use haven_testkit::{RedisServer, TestRedis};

fn pool(url: &str, size: usize) -> deadpool_redis::Pool {
    let mut config = deadpool_redis::Config::from_url(url);
    config.pool = Some(deadpool_redis::PoolConfig::new(size));
    config
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap()
}

#[tokio::test]
async fn redis_store_passes_the_conformance_suite() {
    let redis = TestRedis::new().await;
    let store = RedisNonceStore::new(crate::patient_pool(redis.url(), 4), redis.prefix());
    conformance::run_all(&store).await;
}

/// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of its hash tag — the text between
/// the first `{` and the next `}` when not empty — or of the whole key, modulo 16384.
fn cluster_slot(key: &[u8]) -> u16 {
    const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    CRC16.checksum(hashed) % 16384
}

#[test]
fn the_slot_function_follows_the_cluster_specification() {
    // the specification's example: CRC16 of "123456789" is 0x31C3
    assert_eq!(cluster_slot(b"123456789"), 0x31C3);
    assert_eq!(
        cluster_slot(b"{user1000}.following"),
        cluster_slot(b"{user1000}.followers")
    );
    assert_eq!(
        cluster_slot(b"{user1000}.following"),
        cluster_slot(b"user1000")
    );
    // an empty tag hashes the whole key
    assert_eq!(cluster_slot(b"foo{}{bar}"), CRC_OF_WHOLE_KEY);
    assert_ne!(cluster_slot(b"a{x}"), cluster_slot(b"a{y}"));
}

/// The slot of `foo{}{bar}`, hashed whole because its first tag is empty.
const CRC_OF_WHOLE_KEY: u16 = {
    const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);
    CRC16.checksum(b"foo{}{bar}") % 16384
};

/// Every key the store wrote for one account, as found in Redis, hashes to one cluster slot
/// (so each Lua script touches one slot and works on a cluster).
#[tokio::test]
async fn keys_share_one_cluster_slot_under_the_prefix() {
    let redis = TestRedis::new().await;
    let store = RedisNonceStore::new(crate::patient_pool(redis.url(), 16), redis.prefix());
    let key = conformance::fresh_key();
    let lease = store.reserve(&key, LONG).await.unwrap();
    store.commit(&lease).await.unwrap();
    let released = store.reserve(&key, LONG).await.unwrap();
    store.release(&released).await.unwrap();
    let tag = format!("{{{key}}}");
    let mut conn = crate::patient_pool(redis.url(), 16).get().await.unwrap();
    let written: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", redis.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(written.len() >= 2, "state and committed exist: {written:?}");
    let slots: std::collections::BTreeSet<u16> = written
        .iter()
        .inspect(|name| assert!(name.contains(&tag), "{name} carries the account's tag"))
        .map(|name| cluster_slot(name.as_bytes()))
        .collect();
    assert_eq!(slots.len(), 1, "{written:?} hash to {slots:?}");
    for part in ["state", "free", "leases", "committed"] {
        let name = store.redis_key(&key, part);
        assert!(name.starts_with(redis.prefix()), "{name}");
        assert!(slots.contains(&cluster_slot(name.as_bytes())), "{name}");
    }
}

#[tokio::test]
async fn a_closed_port_is_store_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = RedisNonceStore::new(pool(&format!("redis://127.0.0.1:{port}"), 4), "x:");
    let key = conformance::fresh_key();
    let err = store.reserve(&key, LONG).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::StoreUnavailable {
                backend: "redis",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), haven_core::ErrorCode::ServiceUnavailable);
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_stopped_server_fails_every_call_and_never_counts_locally() {
    let mut server = tokio::task::spawn_blocking(RedisServer::spawn)
        .await
        .unwrap();
    let mut config = deadpool_redis::Config::from_url(server.url());
    config.pool = Some(deadpool_redis::PoolConfig {
        timeouts: deadpool_redis::Timeouts {
            wait: Some(Duration::from_secs(2)),
            create: Some(Duration::from_secs(2)),
            recycle: Some(Duration::from_secs(2)),
        },
        ..deadpool_redis::PoolConfig::new(4)
    });
    let pool = config
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    let store = RedisNonceStore::new(pool, "haven:");
    let key = conformance::fresh_key();
    let before = store.reserve(&key, LONG).await.unwrap();
    assert_eq!(before.nonce, 0);

    let mut server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .unwrap();
    for _ in 0..3 {
        let err = store.reserve(&key, LONG).await.unwrap_err();
        assert!(matches!(err, Error::StoreUnavailable { .. }), "{err:?}");
    }
    assert!(matches!(
        store.commit(&before).await,
        Err(Error::StoreUnavailable { .. })
    ));
    assert!(matches!(
        store.status(&key).await,
        Err(Error::StoreUnavailable { .. })
    ));

    // Back up (empty: no persistence): nothing was counted while it was down, and the lease
    // reports that the account was never synced, so a manager would consult the chain first.
    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    let after = store.reserve(&key, LONG).await.unwrap();
    assert!(!after.chain_synced);
    assert_eq!(store.status(&key).await.unwrap().next, 1);
    drop(server);
}
