//! A5: GCRA burst, refusal and refill; eviction of idle keys.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use haven_resilience::{KeyedLimiter, RateQuota};

use crate::support::{Reports, report, spawn_child};

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

#[test]
fn burst_passes_then_one_per_emission_interval() {
    // 10 per second with a burst of 5: emission interval 100 ms.
    let quota = RateQuota::new(nz(10), Duration::from_secs(1))
        .unwrap()
        .with_burst(nz(5));
    let interval = quota.emission_interval().unwrap();
    assert_eq!(interval, Duration::from_millis(100));
    let clock = FakeRelativeClock::default();
    let limiter = KeyedLimiter::with_clock(quota, clock.clone()).unwrap();
    for expected_remaining in (0..5).rev() {
        let d = limiter.check(&"1.2.3.4");
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining), (5, expected_remaining));
    }
    let refused = limiter.check(&"1.2.3.4");
    assert!(!refused.allowed);
    assert!(refused.retry_after.unwrap() >= interval);
    assert_eq!(refused.retry_after_secs(), Some(1));
    assert!(refused.into_result().is_err());
    // Other keys are not affected.
    assert!(limiter.check(&"5.6.7.8").allowed);

    clock.advance(interval - Duration::from_nanos(1));
    assert!(!limiter.check(&"1.2.3.4").allowed);
    clock.advance(Duration::from_nanos(1));
    assert!(limiter.check(&"1.2.3.4").allowed);
    assert!(!limiter.check(&"1.2.3.4").allowed);
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Child: fills the limiter with 1,000,000 keys, evicts, and reports memory.
pub fn child_memory() {
    let keys: u64 = std::env::var("KEYS").unwrap().parse().unwrap();
    let clock = FakeRelativeClock::default();
    let quota = RateQuota::new(nz(1), Duration::from_secs(1)).unwrap();
    let limiter = KeyedLimiter::<u64, _>::with_clock(quota, clock.clone()).unwrap();
    let baseline = rss_bytes();
    for key in 0..keys {
        assert!(limiter.check(&key).allowed);
    }
    let peak = rss_bytes();
    let filled = limiter.len();
    clock.advance(Duration::from_secs(2));
    limiter.evict_idle();
    let after = rss_bytes();
    report(format!(
        "{baseline} {peak} {after} {filled} {}",
        limiter.len()
    ));
}

#[tokio::test]
async fn eviction_returns_memory_after_a_million_keys() {
    let keys: u64 = 1_000_000;
    // A fixed mmap threshold makes large freed tables go back to the OS at once, so RSS
    // reflects what the limiter holds rather than the allocator's caching.
    let mut child = spawn_child(
        "limiter-memory",
        &[
            ("KEYS", keys.to_string()),
            ("MALLOC_MMAP_THRESHOLD_", "131072".into()),
            ("MALLOC_TRIM_THRESHOLD_", "131072".into()),
        ],
    );
    let mut reports = Reports::of(&mut child);
    let line = reports.next().await;
    assert!(child.wait().await.unwrap().success());
    drop(reports);
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    let (baseline, peak, after, filled, left) = (v[0], v[1], v[2], v[3], v[4]);
    assert_eq!(filled, keys);
    assert_eq!(left, 0);
    let grown = peak.saturating_sub(baseline);
    assert!(
        grown > 8 << 20,
        "a million keys should take memory: grew {grown} bytes"
    );
    let kept = after.saturating_sub(baseline);
    assert!(
        kept * 10 < grown,
        "after eviction {kept} of {grown} bytes are still held"
    );
}

#[cfg(feature = "redis")]
mod distributed {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use haven_resilience::{DistributedLimiter, RateQuota};
    use haven_testkit::TestRedis;

    use super::nz;
    use crate::support::pool;

    #[tokio::test]
    async fn burst_refusal_and_refill_on_the_redis_clock() {
        let redis = TestRedis::new().await;
        let quota = RateQuota::new(nz(2), Duration::from_secs(1))
            .unwrap()
            .with_burst(nz(5));
        let interval = quota.emission_interval().unwrap();
        let limiter = DistributedLimiter::new(
            redis.pool(),
            redis.key("rl:"),
            quota,
            Duration::from_secs(1),
        )
        .unwrap();
        for expected_remaining in (0..5).rev() {
            let d = limiter.check("api-key-1").await.unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining, expected_remaining);
        }
        let refused = limiter.check("api-key-1").await.unwrap();
        assert!(!refused.allowed);
        let wait = refused.retry_after.unwrap();
        // The Retry-After header (whole seconds) is never shorter than the interval; the
        // precise wait is the interval minus the few µs since the last admission.
        assert!(refused.retry_after_secs().unwrap() * 1000 >= interval.as_millis() as u64);
        assert!(wait > interval - Duration::from_millis(100) && wait <= interval);
        tokio::time::sleep(wait).await;
        assert!(limiter.check("api-key-1").await.unwrap().allowed);
        assert!(!limiter.check("api-key-1").await.unwrap().allowed);
        assert!(limiter.check("api-key-2").await.unwrap().allowed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_instances_admit_at_most_limit_plus_one_per_window() {
        let redis = TestRedis::new().await;
        let limit = 20;
        // 20 per second, no burst: in any 1 s window at most 21 may pass.
        let quota = RateQuota::new(nz(limit), Duration::from_secs(1))
            .unwrap()
            .with_burst(nz(1));
        let admitted = Arc::new(AtomicU32::new(0));
        let refused = Arc::new(AtomicU32::new(0));
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut tasks = Vec::new();
        for _ in 0..3 {
            // Each instance has its own connection pool, as separate replicas would.
            let limiter = DistributedLimiter::new(
                pool(redis.url()),
                redis.key("rl:"),
                quota,
                Duration::from_secs(1),
            )
            .unwrap();
            for _ in 0..4 {
                let (limiter, admitted, refused) =
                    (limiter.clone(), admitted.clone(), refused.clone());
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < deadline {
                        if limiter.check("shared").await.unwrap().allowed {
                            admitted.fetch_add(1, Ordering::SeqCst);
                        } else {
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let (admitted, refused) = (
            admitted.load(Ordering::SeqCst),
            refused.load(Ordering::SeqCst),
        );
        assert!(admitted <= limit + 1, "admitted {admitted} in one window");
        assert!(admitted >= limit / 2, "admitted only {admitted}");
        assert!(
            refused > admitted,
            "the instances must have pushed past the limit"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn periodic_eviction_drops_idle_keys() {
    let clock = FakeRelativeClock::default();
    let quota = RateQuota::new(nz(1), Duration::from_secs(1)).unwrap();
    let limiter = std::sync::Arc::new(KeyedLimiter::with_clock(quota, clock.clone()).unwrap());
    for key in 0..100u32 {
        limiter.check(&key);
    }
    let task = limiter.spawn_eviction(Duration::from_secs(60));
    // governor keeps a key for one emission interval after its bucket refilled.
    clock.advance(Duration::from_secs(2));
    assert_eq!(limiter.len(), 100);
    // Idle keys are gone after the next eviction tick; a key just used stays.
    assert!(limiter.check(&7).allowed);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(limiter.len(), 1);
    drop(limiter);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert!(
        task.is_finished(),
        "the eviction task stops with its limiter"
    );
}
