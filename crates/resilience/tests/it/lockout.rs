//! Back-off and bans after repeated failures, shared through Redis.

use std::sync::Arc;
use std::time::Duration;

use haven_resilience::{FailureTracker, LockoutPolicy, RedisFailureTracker};
use haven_testkit::TestRedis;

use crate::support::pool;

fn policy() -> LockoutPolicy {
    LockoutPolicy {
        free_failures: 2,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_millis(400),
        ban_after: 5,
        ban_for: Duration::from_secs(3),
        window: Duration::from_secs(2),
    }
}

/// A tracker on the test's key prefix with the strict policy.
fn tracker(redis: &TestRedis) -> RedisFailureTracker {
    RedisFailureTracker::new(
        redis.pool(),
        redis.key("lock:"),
        policy(),
        Duration::from_secs(1),
    )
    .unwrap()
}

fn subjects(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

#[tokio::test]
async fn back_off_doubles_caps_and_bans_on_the_redis_clock() {
    let redis = TestRedis::new().await;
    let tracker = tracker(&redis);
    let ip = subjects(&["ip:203.0.113.7"]);
    let mut blocks = Vec::new();
    for _ in 0..5 {
        let outcome = tracker.record_failure(&ip).await.unwrap();
        blocks.push((outcome.failures, outcome.blocked_for, outcome.banned_now));
    }
    assert_eq!(
        blocks,
        vec![
            (1, None, false),
            (2, None, false),
            (3, ms(200), false),
            (4, ms(400), false),
            (5, ms(3000), true),
        ]
    );
    let left = tracker.blocked(&ip).await.unwrap().unwrap();
    assert!(
        left > Duration::from_millis(2500) && left <= Duration::from_secs(3),
        "{left:?}"
    );
    // Another failure during the ban keeps it a ban (never shortened) without re-announcing it.
    let sixth = tracker.record_failure(&ip).await.unwrap();
    assert!(!sixth.banned_now);
    assert!(sixth.blocked_for.unwrap() > Duration::from_millis(2500));
    // Other subjects are untouched; a reset forgets the subject at once.
    assert_eq!(
        tracker
            .blocked(&subjects(&["ip:198.51.100.1"]))
            .await
            .unwrap(),
        None
    );
    tracker.reset("ip:203.0.113.7").await.unwrap();
    assert_eq!(tracker.blocked(&ip).await.unwrap(), None);
    assert_eq!(tracker.record_failure(&ip).await.unwrap().failures, 1);
}

#[tokio::test]
async fn a_block_ends_on_time_and_a_quiet_window_forgets_the_count() {
    let redis = TestRedis::new().await;
    let tracker = tracker(&redis);
    let both = subjects(&["ip:a", "account:b"]);
    for _ in 0..3 {
        tracker.record_failure(&both).await.unwrap();
    }
    assert!(tracker.blocked(&both).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        tracker.blocked(&both).await.unwrap(),
        None,
        "200 ms block is over"
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let outcome = tracker.record_failure(&both).await.unwrap();
    assert_eq!(
        outcome.failures, 1,
        "the 2 s window passed without failures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_failures_on_several_replicas_all_count() {
    let redis = TestRedis::new().await;
    let lenient = LockoutPolicy {
        ban_after: 1_000,
        ..policy()
    };
    let mut tasks = Vec::new();
    for _ in 0..4 {
        // One pool per tracker, as separate replicas would have.
        let tracker = Arc::new(
            RedisFailureTracker::new(
                pool(redis.url()),
                redis.key("lock:"),
                lenient,
                Duration::from_secs(2),
            )
            .unwrap(),
        );
        for _ in 0..25 {
            let tracker = tracker.clone();
            tasks.push(tokio::spawn(async move {
                tracker
                    .record_failure(&subjects(&["account:shared"]))
                    .await
                    .unwrap()
            }));
        }
    }
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap().failures);
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=100).collect::<Vec<u32>>(),
        "each failure counted once"
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_pass() {
    let tracker = RedisFailureTracker::new(
        pool("redis://127.0.0.1:1/"),
        "lock:",
        policy(),
        Duration::from_millis(500),
    )
    .unwrap();
    let err = tracker
        .record_failure(&subjects(&["ip:a"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), haven_core::ErrorCode::ServiceUnavailable);
    assert!(tracker.blocked(&subjects(&["ip:a"])).await.is_err());
}
