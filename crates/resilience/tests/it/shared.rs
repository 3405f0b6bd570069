//! A3: the shared breaker on real Redis, with instances on separate connections and one in
//! another process.

use std::time::Duration;

use haven_resilience::{
    Breaker, BreakerConfig, BreakerExt, BreakerState, Error, Outcome, SharedBreaker,
    SharedBreakerConfig,
};
use haven_testkit::{RedisServer, TestRedis};
use tokio::sync::broadcast;

use crate::support::{Reports, pool, report, spawn_child};

fn shared_config(prefix: String) -> SharedBreakerConfig {
    SharedBreakerConfig {
        key_prefix: prefix,
        refresh_interval: Duration::from_millis(200),
        max_batch: 16,
        redis_timeout: Duration::from_secs(2),
        probe_lease_ttl: Duration::from_secs(10),
    }
}

async fn instance(url: &str, prefix: &str, config: BreakerConfig) -> SharedBreaker {
    SharedBreaker::connect("chain", config, shared_config(prefix.to_owned()), pool(url))
        .await
        .unwrap()
}

/// The first permit `b` grants, retrying while it is still OPEN (its local copy of the open
/// deadline can trail the server's by one round trip).
async fn first_permit(b: &SharedBreaker) -> haven_resilience::BreakerPermit {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match b.acquire().await {
            Ok(p) => return p,
            Err(e) if tokio::time::Instant::now() > deadline => panic!("never admitted: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn wait_for(
    events: &mut broadcast::Receiver<haven_resilience::StateChange>,
    to: BreakerState,
) {
    loop {
        let change = events.recv().await.unwrap();
        if change.to == to {
            return;
        }
    }
}

/// Child: one replica that trips the shared breaker with the seed's 5 failures.
pub async fn child_trip() {
    let url = std::env::var("TRIP_REDIS_URL").unwrap();
    let prefix = std::env::var("TRIP_PREFIX").unwrap();
    let b = instance(&url, &prefix, BreakerConfig::default()).await;
    report("ready");
    for _ in 0..5 {
        let r = b.call(|| async { Err::<(), _>("node down") }).await;
        assert!(r.is_err());
    }
    b.sync().await.unwrap();
    report(format!("tripped {}", b.status().state));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_in_another_process_reaches_every_instance_within_a_second() {
    let redis = TestRedis::new().await;
    let prefix = redis.key("cb:");
    let b = instance(redis.url(), &prefix, BreakerConfig::default()).await;
    let c = instance(redis.url(), &prefix, BreakerConfig::default()).await;
    let (mut b_events, mut c_events) = (Breaker::subscribe(&b), Breaker::subscribe(&c));
    assert_eq!(b.status().state, BreakerState::Closed);

    let mut child = spawn_child(
        "breaker-trip",
        &[
            ("TRIP_REDIS_URL", redis.url().to_owned()),
            ("TRIP_PREFIX", prefix.clone()),
        ],
    );
    let mut reports = Reports::of(&mut child);
    assert_eq!(reports.next().await, "ready");
    assert_eq!(reports.next().await, "tripped OPEN");
    let within = Duration::from_secs(1);
    tokio::time::timeout(within, wait_for(&mut b_events, BreakerState::Open))
        .await
        .expect("instance b did not see the trip within 1 s");
    tokio::time::timeout(within, wait_for(&mut c_events, BreakerState::Open))
        .await
        .expect("instance c did not see the trip within 1 s");
    assert!(child.wait().await.unwrap().success());
    drop(reports);

    let mut called = false;
    let r = b
        .call(|| {
            called = true;
            async { Ok::<_, ()>(()) }
        })
        .await;
    assert!(matches!(
        r.unwrap_err().as_resilience(),
        Some(Error::CircuitOpen { .. })
    ));
    assert!(!called);
    let status = c.status();
    assert_eq!(status.state, BreakerState::Open);
    assert!(!status.degraded);
    assert!(status.open_remaining().unwrap() > Duration::from_secs(25));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_instances_run_at_most_k_probes_together() {
    let redis = TestRedis::new().await;
    let prefix = redis.key("cb:");
    let k = 2;
    let config = BreakerConfig {
        consecutive_failures: Some(1),
        open_timeout: Duration::from_millis(300),
        half_open_permits: k,
        success_threshold: k,
        ..BreakerConfig::default()
    };
    let mut instances = Vec::new();
    for _ in 0..5 {
        instances.push(instance(redis.url(), &prefix, config.clone()).await);
    }
    instances[0]
        .acquire()
        .await
        .unwrap()
        .record(Outcome::Failure);
    instances[0].sync().await.unwrap();
    assert_eq!(instances[0].status().state, BreakerState::Open);
    tokio::time::sleep(config.open_timeout).await;
    // Refresh every local copy now rather than waiting for the background refresh.
    for b in &instances {
        b.sync().await.unwrap();
        assert_eq!(b.status().state, BreakerState::HalfOpen);
    }

    // Every instance asks for three probes at once; across all of them exactly k are granted.
    let attempts = instances
        .iter()
        .flat_map(|b| (0..3).map(move |_| b.acquire()));
    let results = futures::future::join_all(attempts).await;
    let (granted, refused): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.is_ok());
    assert_eq!(granted.len(), k as usize);
    assert!(
        refused
            .iter()
            .all(|r| matches!(r, Err(Error::CircuitOpen { .. })))
    );
    for b in &instances {
        b.sync().await.unwrap();
        assert_eq!(b.status().state, BreakerState::HalfOpen);
    }
    assert_eq!(instances[3].status().probes_in_flight, k);

    // k successes close the breaker for everyone.
    let mut events = Breaker::subscribe(&instances[4]);
    for permit in granted {
        permit.unwrap().record(Outcome::Success);
    }
    tokio::time::timeout(
        Duration::from_secs(1),
        wait_for(&mut events, BreakerState::Closed),
    )
    .await
    .expect("instance 4 did not see the breaker close");
    assert!(instances[4].acquire().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_failure_reopens_for_everyone_and_leases_expire() {
    let redis = TestRedis::new().await;
    let prefix = redis.key("cb:");
    let config = BreakerConfig {
        consecutive_failures: Some(1),
        // Long enough that a 200 ms refresh cannot miss the OPEN state.
        open_timeout: Duration::from_millis(1000),
        half_open_permits: 1,
        success_threshold: 1,
        ..BreakerConfig::default()
    };
    let lease = Duration::from_millis(400);
    let connect = || async {
        SharedBreaker::connect(
            "lease",
            config.clone(),
            SharedBreakerConfig {
                probe_lease_ttl: lease,
                ..shared_config(prefix.clone())
            },
            pool(redis.url()),
        )
        .await
        .unwrap()
    };
    let (a, b) = (connect().await, connect().await);
    a.acquire().await.unwrap().record(Outcome::Failure);
    a.sync().await.unwrap();
    tokio::time::sleep(config.open_timeout).await;

    // A replica that dies holding the only probe slot (the permit is leaked, never
    // released) blocks probing only until its lease expires.
    std::mem::forget(first_permit(&a).await);
    let leaked_at = tokio::time::Instant::now();
    assert!(b.acquire().await.is_err());
    let probe = first_permit(&b).await;
    assert!(leaked_at.elapsed() >= lease - Duration::from_millis(50));
    let mut events = Breaker::subscribe(&a);
    probe.record(Outcome::Failure);
    tokio::time::timeout(
        Duration::from_secs(1),
        wait_for(&mut events, BreakerState::Open),
    )
    .await
    .expect("a did not see the probe failure reopen the breaker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_actions_are_shared() {
    let redis = TestRedis::new().await;
    let prefix = redis.key("cb:");
    let a = instance(redis.url(), &prefix, BreakerConfig::default()).await;
    let b = instance(redis.url(), &prefix, BreakerConfig::default()).await;
    a.force_open().await.unwrap();
    b.sync().await.unwrap();
    assert_eq!(b.status().state, BreakerState::ForcedOpen);
    assert!(b.acquire().await.is_err());
    b.reset().await.unwrap();
    a.sync().await.unwrap();
    assert_eq!(a.status().state, BreakerState::Closed);
    assert!(a.acquire().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_instances_fall_back_to_local_breakers() {
    let mut server = tokio::task::spawn_blocking(RedisServer::spawn)
        .await
        .unwrap();
    let url = server.url();
    let prefix = "haven-test:cb:";
    let config = BreakerConfig::default();
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(instance(&url, prefix, config.clone()).await);
    }
    for b in &instances {
        assert!(!b.status().degraded);
    }
    let mut events = Breaker::subscribe(&instances[0]);

    server.stop();
    for b in &instances {
        assert!(b.sync().await.is_err());
        let status = b.status();
        assert!(status.degraded);
        assert_eq!(status.state, BreakerState::Closed);
        // Still serving, and still protecting: the local fallback trips on its own.
        assert!(b.call(|| async { Ok::<_, ()>(()) }).await.is_ok());
    }
    for _ in 0..5 {
        let _ = instances[0].call(|| async { Err::<(), _>(()) }).await;
    }
    assert_eq!(instances[0].status().state, BreakerState::Open);
    assert!(instances[0].status().degraded);
    // The local trip is published like any other state change.
    tokio::time::timeout(
        Duration::from_secs(1),
        wait_for(&mut events, BreakerState::Open),
    )
    .await
    .expect("the local trip was not published");
    assert!(instances[1].acquire().await.is_ok());

    let mut server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    for b in &instances {
        b.sync().await.unwrap();
        assert!(!b.status().degraded);
    }
    assert_eq!(instances[0].status().state, BreakerState::Closed);
    server.stop();
}

#[cfg(feature = "test-utils")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_breaker_passes_conformance() {
    let redis = TestRedis::new().await;
    let b = instance(redis.url(), &redis.key("cb:"), BreakerConfig::default()).await;
    haven_resilience::conformance::breaker_operator_actions(&b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn registries_made_shared_create_breakers_that_share_one_state() {
    let url = TestRedis::server_url();
    let prefix = format!("haven:test:{}:breaker:", uuid::Uuid::new_v4().simple());
    let registry = || {
        haven_resilience::BreakerRegistry::shared(
            BreakerConfig::default(),
            shared_config(prefix.clone()),
            pool(&url),
        )
        .unwrap()
    };
    let (a, b) = (registry(), registry());
    let on_a = a.get_or_create("partner").unwrap();
    let on_b = b.get_or_create("partner").unwrap();
    on_a.force_open().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while on_b.status().state != BreakerState::ForcedOpen {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            on_b.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(on_b.status().shared && !on_b.status().degraded);

    let local = haven_resilience::BreakerRegistry::new(BreakerConfig::default()).unwrap();
    assert!(!local.get_or_create("partner").unwrap().status().shared);
}
