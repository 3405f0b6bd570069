//! Store conformance (memory and real Redis) and A3 at library level: idempotency under
//! concurrency, reuse with another body, byte-identical replays, release rules, and the
//! fallback when Redis is unreachable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use haven_testkit::{RedisServer, TestRedis};
use haven_webhooks::conformance;
use haven_webhooks::{
    Begin, Claim, CompletedCache, Disposition, FallbackStore, Fingerprint, Idempotency,
    IdempotencyConfig, IdempotencyError, IdempotencyKey, IdempotencyStore, LockToken, ManualClock,
    MemoryIdempotencyStore, MemoryReplayStore, RedisIdempotencyStore, RedisReplayStore,
    ReplayOutcome, ReplayStore, Requirement, Scope, ScopedKey, StoreError,
};
use http::HeaderMap;

fn unique() -> String {
    format!("{:x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

fn pool_for(url: &str) -> deadpool_redis::Pool {
    deadpool_redis::Config::from_url(url)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_stores_conform() {
    conformance::replay_store(Arc::new(MemoryReplayStore::new()), &unique()).await;
    conformance::idempotency_store(Arc::new(MemoryIdempotencyStore::new()), &unique()).await;
    // The replica-local memory of completed keys keeps every rule of the store it fronts.
    conformance::idempotency_store(
        Arc::new(CompletedCache::new(MemoryIdempotencyStore::new())),
        &unique(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_stores_conform() {
    let redis = TestRedis::new().await;
    let replay = RedisReplayStore::new(redis.pool(), redis.prefix());
    conformance::replay_store(Arc::new(replay), &unique()).await;
    let idem = RedisIdempotencyStore::new(redis.pool(), redis.prefix());
    conformance::idempotency_store(Arc::new(idem), &unique()).await;
    let cached = CompletedCache::new(RedisIdempotencyStore::new(redis.pool(), redis.prefix()));
    conformance::idempotency_store(Arc::new(cached), &unique()).await;
    assert!(redis.key_count() > 0, "keys live under the test prefix");
}

fn scoped(name: &str) -> ScopedKey {
    ScopedKey {
        scope: Scope::new("user-1", "POST", "/token/redeem"),
        key: IdempotencyKey::parse(name).unwrap(),
    }
}

#[tokio::test]
async fn memory_in_flight_lock_expires_so_a_crashed_request_can_be_retried() {
    let clock = ManualClock::new();
    let store = MemoryIdempotencyStore::with_clock(Arc::new(clock.clone()));
    let key = scoped("crashed-req-1");
    let fp = Fingerprint::of(b"{}");
    let crashed = LockToken::random();
    let lock = Duration::from_secs(90);
    assert_eq!(
        store.claim(&key, &fp, &crashed, lock).await.unwrap(),
        Claim::Acquired
    );
    clock.advance(Duration::from_secs(89));
    assert_eq!(
        store
            .claim(&key, &fp, &LockToken::random(), lock)
            .await
            .unwrap(),
        Claim::InFlight
    );
    clock.advance(Duration::from_secs(1));
    let retry = LockToken::random();
    assert_eq!(
        store.claim(&key, &fp, &retry, lock).await.unwrap(),
        Claim::Acquired
    );
    // The crashed request, should it wake up, cannot overwrite its successor.
    let resp = haven_webhooks::StoredResponse {
        status: 200,
        headers: vec![],
        body: b"late".to_vec(),
    };
    assert!(
        !store
            .complete(&key, &crashed, &resp, Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        store
            .complete(&key, &retry, &resp, Duration::from_secs(60))
            .await
            .unwrap()
    );
    // Retention ends.
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        store
            .claim(&key, &fp, &LockToken::random(), lock)
            .await
            .unwrap(),
        Claim::Acquired
    );
}

#[tokio::test]
async fn memory_replay_records_expire_after_their_ttl() {
    let clock = ManualClock::new();
    let store = MemoryReplayStore::with_clock(Arc::new(clock.clone()));
    let fp = Fingerprint::of(b"x");
    let ttl = Duration::from_secs(360);
    assert_eq!(
        store.record("s", "m", &fp, ttl).await.unwrap(),
        ReplayOutcome::First
    );
    clock.advance(Duration::from_secs(359));
    assert_eq!(
        store.record("s", "m", &fp, ttl).await.unwrap(),
        ReplayOutcome::Duplicate
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        store.record("s", "m", &fp, ttl).await.unwrap(),
        ReplayOutcome::First
    );
}

#[tokio::test]
async fn redis_lock_and_replay_records_carry_a_ttl() {
    let redis = TestRedis::new().await;
    let store = RedisIdempotencyStore::new(redis.pool(), redis.prefix());
    let key = scoped("redis-ttl-key");
    let fp = Fingerprint::of(b"{}");
    let lock = Duration::from_millis(300);
    assert_eq!(
        store
            .claim(&key, &fp, &LockToken::random(), lock)
            .await
            .unwrap(),
        Claim::Acquired
    );
    // Wait for the lock to lapse by observing it, not by sleeping a fixed time.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store
            .claim(&key, &fp, &LockToken::random(), lock)
            .await
            .unwrap()
        {
            Claim::Acquired => break,
            Claim::InFlight => {
                assert!(Instant::now() < deadline, "lock never lapsed");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            other => panic!("{other:?}"),
        }
    }

    let replay = RedisReplayStore::new(redis.pool(), redis.prefix());
    replay
        .record("src", "msg-ttl", &fp, Duration::from_secs(360))
        .await
        .unwrap();
    let mut conn = redis.pool().get().await.unwrap();
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(redis.key("replay:3:src:msg-ttl"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl_ms > 300_000 && ttl_ms <= 360_000, "{ttl_ms}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a3_hundred_concurrent_requests_with_one_key_on_redis() {
    let redis = TestRedis::new().await;
    let store = RedisIdempotencyStore::new(redis.pool(), redis.prefix());
    conformance::one_key_under_concurrency(Arc::new(store), "redeem-0001").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a3_hundred_concurrent_requests_with_one_key_in_memory() {
    let store = MemoryIdempotencyStore::new();
    conformance::one_key_under_concurrency(Arc::new(store), "redeem-0001").await;
}

#[tokio::test]
async fn failures_release_the_key_and_business_errors_are_stored() {
    let redis = TestRedis::new().await;
    let store: Arc<dyn IdempotencyStore> =
        Arc::new(RedisIdempotencyStore::new(redis.pool(), redis.prefix()));
    let idem = Idempotency::new(store, IdempotencyConfig::default());
    let scope = || Scope::new("user-2", "POST", "/transfers");
    let key = || Some(IdempotencyKey::parse("transfer-42").unwrap());
    for released in [500u16, 503, 429, 401, 403, 400] {
        let Begin::Proceed(t) = idem
            .begin(scope(), key(), b"{}", Requirement::Optional)
            .await
            .unwrap()
        else {
            panic!("{released}: key should be free");
        };
        assert_eq!(
            idem.finish(t, released, &HeaderMap::new(), b"err")
                .await
                .unwrap(),
            Disposition::Release
        );
    }
    let Begin::Proceed(t) = idem
        .begin(scope(), key(), b"{}", Requirement::Optional)
        .await
        .unwrap()
    else {
        panic!("key should be free");
    };
    idem.finish(
        t,
        422,
        &HeaderMap::new(),
        br#"{"error":"INSUFFICIENT_BALANCE"}"#,
    )
    .await
    .unwrap();
    match idem
        .begin(scope(), key(), b"{}", Requirement::Optional)
        .await
        .unwrap()
    {
        Begin::Replay(r) => {
            assert_eq!(r.status, 422);
            assert_eq!(r.body, br#"{"error":"INSUFFICIENT_BALANCE"}"#);
        }
        other => panic!("{other:?}"),
    }
    // Abandon releases.
    let other = || Some(IdempotencyKey::parse("transfer-43").unwrap());
    let Begin::Proceed(t) = idem
        .begin(scope(), other(), b"{}", Requirement::Optional)
        .await
        .unwrap()
    else {
        panic!()
    };
    idem.abandon(t).await.unwrap();
    assert!(matches!(
        idem.begin(scope(), other(), b"{}", Requirement::Optional)
            .await
            .unwrap(),
        Begin::Proceed(_)
    ));
}

#[tokio::test]
async fn required_keys() {
    let idem = Idempotency::new(MemoryIdempotencyStore::new(), IdempotencyConfig::default());
    let scope = Scope::new("u", "POST", "/token/redeem");
    let err = idem
        .begin(scope.clone(), None, b"{}", Requirement::Required)
        .await
        .unwrap_err();
    assert!(matches!(err, IdempotencyError::Required));
    assert_eq!(err.code().as_str(), "IDEMPOTENCY_KEY_REQUIRED");
    assert_eq!(err.code().status(), 400);
    assert!(matches!(
        idem.begin(scope, None, b"{}", Requirement::Optional)
            .await
            .unwrap(),
        Begin::NoKey
    ));
}

#[tokio::test]
async fn unreachable_redis_is_a_store_error_not_a_pass() {
    let mut server = RedisServer::spawn();
    let url = server.url();
    server.stop();
    let store = RedisIdempotencyStore::new(pool_for(&url), "x:");
    let err = store
        .claim(
            &scoped("unreachable-1"),
            &Fingerprint::of(b""),
            &LockToken::random(),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)));
    let replay = RedisReplayStore::new(pool_for(&url), "x:");
    assert!(matches!(
        replay
            .record("s", "i", &Fingerprint::of(b""), Duration::from_secs(1))
            .await,
        Err(StoreError::Unavailable(_))
    ));
    let idem = Idempotency::new(store, IdempotencyConfig::default());
    let err = idem
        .begin(
            Scope::new("u", "POST", "/p"),
            Some(IdempotencyKey::parse("unreachable-2").unwrap()),
            b"{}",
            Requirement::Required,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code().status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_stopped_the_fallback_still_runs_the_handler_exactly_once() {
    let mut server = RedisServer::spawn();
    let primary = RedisIdempotencyStore::new(pool_for(&server.url()), "fb:");
    // Stand-in for the Postgres store, which lives in haven-db and runs this same test.
    let secondary = MemoryIdempotencyStore::new();
    let store: Arc<dyn IdempotencyStore> = Arc::new(FallbackStore::new(primary, secondary));
    // Healthy first: the claim goes to Redis.
    let probe = scoped("healthy-key-1");
    assert_eq!(
        store
            .claim(
                &probe,
                &Fingerprint::of(b""),
                &LockToken::random(),
                Duration::from_secs(5)
            )
            .await
            .unwrap(),
        Claim::Acquired
    );
    server.stop();
    conformance::one_key_under_concurrency(store.clone(), "redeem-0001").await;
    server.restart();

    let replay: Arc<dyn ReplayStore> = Arc::new(FallbackStore::new(
        RedisReplayStore::new(pool_for(&server.url()), "fb:"),
        MemoryReplayStore::new(),
    ));
    server.stop();
    conformance::replay_store(replay, &unique()).await;
}
