//! A4: backoff with full jitter on paused Tokio time.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use haven_resilience::{GiveUp, Idempotency, Retry, RetryDecision, RetryPolicy};
use tokio::time::Instant;

fn policy(max_attempts: u32, max_elapsed: Duration) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_elapsed,
    }
}

/// Runs an always-failing retryable operation; returns the gaps between attempts.
async fn gaps(retry: &Retry, hint: Option<Duration>) -> (Vec<Duration>, GiveUp) {
    let attempts = Mutex::new(Vec::new());
    let err = retry
        .run(
            Idempotency::Idempotent,
            |_: &&str| RetryDecision::Retry { after: hint },
            |_| {
                attempts.lock().unwrap().push(Instant::now());
                async { Err::<(), _>("unavailable") }
            },
        )
        .await
        .unwrap_err();
    let at = attempts.into_inner().unwrap();
    assert_eq!(at.len() as u32, err.attempts);
    (at.windows(2).map(|w| w[1] - w[0]).collect(), err.reason)
}

#[tokio::test(start_paused = true)]
async fn delays_are_capped_distinct_and_bounded() {
    let retry = Retry::with_seed(policy(12, Duration::from_secs(60)), 7).unwrap();
    let (gaps, reason) = gaps(&retry, None).await;
    assert_eq!(reason, GiveUp::Attempts);
    assert_eq!(gaps.len(), 11);
    for (i, gap) in gaps.iter().enumerate() {
        let cap = retry.policy().backoff_cap(i as u32);
        assert!(*gap <= cap, "gap {i} = {gap:?} over cap {cap:?}");
        assert!(cap <= Duration::from_secs(1));
    }
    let distinct: BTreeSet<_> = gaps.iter().collect();
    assert_eq!(
        distinct.len(),
        gaps.len(),
        "jitter must spread delays: {gaps:?}"
    );
    assert!(gaps.iter().sum::<Duration>() <= Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_bounds_the_total() {
    let retry = Retry::with_seed(policy(1000, Duration::from_secs(3)), 1).unwrap();
    let start = Instant::now();
    let (gaps, reason) = gaps(&retry, None).await;
    assert_eq!(reason, GiveUp::Elapsed);
    assert!(gaps.len() > 3);
    assert!(start.elapsed() <= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn same_seed_same_delays() {
    let a = Retry::with_seed(policy(6, Duration::from_secs(60)), 42).unwrap();
    let b = Retry::with_seed(policy(6, Duration::from_secs(60)), 42).unwrap();
    assert_eq!(gaps(&a, None).await.0, gaps(&b, None).await.0);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let retry = Retry::with_seed(policy(3, Duration::from_secs(60)), 3).unwrap();
    let (waits, _) = gaps(&retry, Some(Duration::from_secs(5))).await;
    assert_eq!(waits.len(), 2);
    assert!(
        waits.iter().all(|g| *g >= Duration::from_secs(5)),
        "{waits:?}"
    );

    // A hint beyond the elapsed budget ends the loop instead of overrunning it.
    let retry = Retry::with_seed(policy(3, Duration::from_secs(2)), 3).unwrap();
    let (waits, reason) = gaps(&retry, Some(Duration::from_secs(5))).await;
    assert!(waits.is_empty());
    assert_eq!(reason, GiveUp::Elapsed);
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_operations_run_once() {
    let retry = Retry::with_seed(policy(5, Duration::from_secs(60)), 3).unwrap();
    let mut calls = 0;
    let err = retry
        .run(
            Idempotency::NonIdempotent,
            |_: &&str| RetryDecision::RETRY,
            |_| {
                calls += 1;
                async { Err::<(), _>("timeout") }
            },
        )
        .await
        .unwrap_err();
    assert_eq!(calls, 1);
    assert_eq!(err.reason, GiveUp::NotIdempotent);
}

#[tokio::test(start_paused = true)]
async fn classifier_stops_and_success_returns() {
    let retry = Retry::with_seed(policy(5, Duration::from_secs(60)), 3).unwrap();
    let err = retry
        .run(
            Idempotency::Idempotent,
            |e: &u16| {
                if *e >= 500 {
                    RetryDecision::RETRY
                } else {
                    RetryDecision::Stop
                }
            },
            |n| async move {
                if n == 1 {
                    Err::<(), u16>(503)
                } else {
                    Err(400)
                }
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.attempts, err.reason, err.last),
        (2, GiveUp::NotRetryable, 400)
    );

    let ok = retry
        .run(
            Idempotency::Idempotent,
            |_: &&str| RetryDecision::RETRY,
            |n| async move { if n < 3 { Err("flaky") } else { Ok(n) } },
        )
        .await
        .unwrap();
    assert_eq!(ok, 3);
}
