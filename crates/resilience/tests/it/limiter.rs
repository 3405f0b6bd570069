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

#[cfg(feature = "redis")]
mod leased {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use haven_resilience::{DistributedLimiter, LeaseConfig, RateQuota};
    use haven_testkit::TestRedis;

    use super::nz;
    use crate::support::pool;

    fn replica(redis: &TestRedis, quota: RateQuota) -> DistributedLimiter {
        // Each instance has its own connection pool, as separate replicas would.
        DistributedLimiter::new(
            pool(redis.url()),
            redis.key("rl:"),
            quota,
            Duration::from_secs(1),
        )
        .unwrap()
        .with_leases(LeaseConfig::default())
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_key_costs_a_redis_call_per_batch_not_per_request() {
        let redis = TestRedis::new().await;
        let quota = RateQuota::new(nz(1_000_000), Duration::from_secs(60)).unwrap();
        let limiter = replica(&redis, quota);
        assert_eq!(limiter.batch_cap(), 64);
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..1_000 {
                    assert!(limiter.check("busy").await.unwrap().allowed);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let calls = limiter.redis_calls();
        assert!(
            calls <= 4_000 / 16,
            "{calls} Redis calls for 4 000 requests"
        );
        // A key seen once costs one call and leases nothing more.
        assert!(limiter.check("quiet").await.unwrap().allowed);
        assert_eq!(limiter.redis_calls(), calls + 1);
        assert_eq!(limiter.leased_keys(), 2);
    }

    #[tokio::test]
    async fn a_small_burst_is_never_batched_and_refusals_are_repeated_locally() {
        let redis = TestRedis::new().await;
        // 10 per minute: the cap is a tenth of the burst, so one request per call, exactly
        // the unbatched limiter.
        let quota = RateQuota::new(nz(10), Duration::from_secs(60)).unwrap();
        let limiter = replica(&redis, quota);
        assert_eq!(limiter.batch_cap(), 1);
        for expected_remaining in (0..10).rev() {
            let d = limiter.check("client").await.unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining, expected_remaining);
        }
        let calls = limiter.redis_calls();
        assert_eq!(calls, 10);
        for _ in 0..100 {
            let refused = limiter.check("client").await.unwrap();
            assert!(!refused.allowed);
            assert!(refused.retry_after_secs().unwrap() >= 1);
        }
        // One call learned the refusal; the other 99 were answered from it.
        assert_eq!(limiter.redis_calls(), calls + 1);
        // Another replica sees the same used-up bucket.
        assert!(
            !replica(&redis, quota)
                .check("client")
                .await
                .unwrap()
                .allowed
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_replicas_with_leases_keep_the_cluster_bound() {
        let redis = TestRedis::new().await;
        // 500 per second, burst 50: the batch cap is 5. Every request is charged to Redis
        // before it is admitted, so over a run of `d` seconds from a full bucket at most
        // 50 + 500 × d pass, however the three replicas lease.
        let quota = RateQuota::new(nz(500), Duration::from_secs(1))
            .unwrap()
            .with_burst(nz(50));
        let admitted = Arc::new(AtomicU32::new(0));
        let refused = Arc::new(AtomicU32::new(0));
        let started = Instant::now();
        let run = Duration::from_secs(2);
        let mut replicas = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let limiter = replica(&redis, quota);
            assert_eq!(limiter.batch_cap(), 5);
            replicas.push(limiter.clone());
            for _ in 0..4 {
                let (limiter, admitted, refused) =
                    (limiter.clone(), admitted.clone(), refused.clone());
                tasks.push(tokio::spawn(async move {
                    while started.elapsed() < run {
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
        let elapsed = started.elapsed().as_secs_f64();
        let bound = 50.0 + 500.0 * elapsed + 1.0;
        let (admitted, refused) = (
            f64::from(admitted.load(Ordering::SeqCst)),
            f64::from(refused.load(Ordering::SeqCst)),
        );
        assert!(
            admitted <= bound,
            "admitted {admitted} in {elapsed:.2} s, bound {bound:.0}"
        );
        // Leases left unused are lost, never over-admitted: the replicas may fall short of
        // the bound by their outstanding leases (3 × 5) and by the requests their tasks did
        // not get to send in time; on a busy machine that stays well under 20 %.
        assert!(
            admitted >= 0.8 * bound - 15.0,
            "admitted only {admitted} of {bound:.0}"
        );
        assert!(
            refused > 0.0,
            "the replicas must have pushed past the limit"
        );
        let calls: u64 = replicas.iter().map(DistributedLimiter::redis_calls).sum();
        assert!(
            (calls as f64) < admitted + refused,
            "{calls} calls for {} decisions",
            admitted + refused
        );
    }

    #[tokio::test]
    async fn after_a_failed_call_the_key_falls_back_at_once_for_a_while() {
        // Nothing listens on port 1: every call fails.
        let limiter = DistributedLimiter::new(
            pool("redis://127.0.0.1:1"),
            "rl:",
            RateQuota::new(nz(1_000), Duration::from_secs(1)).unwrap(),
            Duration::from_secs(1),
        )
        .unwrap()
        .with_leases(LeaseConfig::default())
        .unwrap();
        assert!(limiter.check("k").await.is_err());
        assert_eq!(limiter.redis_calls(), 1);
        for _ in 0..10 {
            assert!(limiter.check("k").await.is_err());
        }
        assert_eq!(limiter.redis_calls(), 1, "not asked again during the pause");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(limiter.check("k").await.is_err());
        assert_eq!(limiter.redis_calls(), 2, "asked again after it");
    }
}
