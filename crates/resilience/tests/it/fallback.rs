//! A6: the price fallback chain against local mock HTTP servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use haven_resilience::{
    Binance, BreakerConfig, CircuitBreaker, CoinGecko, Error, FallbackChain, InMemoryIntervalGate,
    IntervalGate, ManualClock, Outcome, Pair, PriceSource, Retry, RetryPolicy, Stage, TtlCache,
    classify_breaker,
};

use haven_testkit::{StubRequest, StubResponse, StubServer};

/// A CoinGecko source; the test process chooses the TLS crypto provider first (the
/// library never does).
fn coingecko(url: impl Into<String>, timeout: Duration) -> CoinGecko {
    haven_testkit::install_crypto_provider();
    CoinGecko::new(url, timeout)
}

/// A Binance source, like [`coingecko`].
fn binance(url: impl Into<String>, timeout: Duration) -> Binance {
    haven_testkit::install_crypto_provider();
    Binance::new(url, timeout)
}

fn coingecko_reply(request: &StubRequest) -> StubResponse {
    assert_eq!(request.path(), "/api/v3/simple/price", "{}", request.target);
    let param = |name: &str| request.query(name).unwrap_or_default();
    StubResponse::json(format!(
        r#"{{"{}":{{"{}":3012.5}}}}"#,
        param("ids"),
        param("vs_currencies")
    ))
}

fn binance_reply(request: &StubRequest) -> StubResponse {
    assert_eq!(request.path(), "/api/v3/ticker/price", "{}", request.target);
    StubResponse::json(format!(
        r#"{{"symbol":"{}","price":"3001.25000000"}}"#,
        request.query("symbol").unwrap_or_default()
    ))
}

fn once() -> Arc<Retry> {
    Arc::new(
        Retry::with_seed(
            RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            },
            1,
        )
        .unwrap(),
    )
}

fn stage(source: Arc<dyn PriceSource>, timeout: Duration) -> Stage {
    Stage {
        breaker: Arc::new(CircuitBreaker::new(source.name(), BreakerConfig::default()).unwrap()),
        source,
        timeout,
        retry: once(),
        min_interval: None,
    }
}

fn cache(clock: Arc<ManualClock>) -> TtlCache<Pair, (haven_resilience::Price, String)> {
    TtlCache::with_clock(Duration::from_secs(30), Duration::from_secs(120), clock).unwrap()
}

#[tokio::test]
async fn sources_parse_their_upstream_formats() {
    let cg = StubServer::start(coingecko_reply).await;
    let bn = StubServer::start(binance_reply).await;
    let pair = Pair::new("eth", "usd");
    let price = coingecko(cg.url(), Duration::from_secs(5))
        .price(&pair)
        .await
        .unwrap();
    assert_eq!(price.as_str(), "3012.5");
    assert!(cg.requests()[0].target.contains("ids=ethereum"));
    assert!(cg.requests()[0].target.contains("vs_currencies=usd"));
    let price = binance(bn.url(), Duration::from_secs(5))
        .price(&pair)
        .await
        .unwrap();
    assert_eq!(price.as_str(), "3001.25");
    assert!(bn.requests()[0].target.ends_with("symbol=ETHUSDT"));
    let unknown = coingecko(cg.url(), Duration::from_secs(5))
        .price(&Pair::new("NOPE", "USD"))
        .await;
    assert!(matches!(unknown, Err(Error::MissingPrice { .. })));
}

/// Prices are read from the answer's text exactly: digits a binary float cannot hold come
/// through unchanged, an exponent is expanded, zero is refused.
#[tokio::test]
async fn prices_are_exact_decimals_never_floats() {
    let pair = Pair::new("eth", "usd");
    for (answer, expected) in [
        ("0.30000000000000000001", Some("0.30000000000000000001")),
        ("0.1", Some("0.1")),
        ("1.25e-7", Some("0.000000125")),
        (
            "123456789012345678901234567890",
            Some("123456789012345678901234567890"),
        ),
        ("0", None),
        ("1e400", None),
    ] {
        let body = format!(r#"{{"ethereum":{{"usd":{answer}}}}}"#);
        let cg = StubServer::start(move |_| StubResponse::json(body.clone())).await;
        let price = coingecko(cg.url(), Duration::from_secs(5))
            .price(&pair)
            .await;
        match expected {
            Some(text) => assert_eq!(price.unwrap().as_str(), text, "{answer}"),
            None => assert!(
                matches!(
                    price,
                    Err(Error::InvalidPrice { .. }) | Err(Error::Decode { .. })
                ),
                "{answer}: {price:?}"
            ),
        }
    }
    let bn = StubServer::start(|request: &StubRequest| {
        StubResponse::json(format!(
            r#"{{"symbol":"{}","price":"0.10000000000000000000"}}"#,
            request.query("symbol").unwrap_or_default()
        ))
    })
    .await;
    let price = binance(bn.url(), Duration::from_secs(5))
        .price(&pair)
        .await
        .unwrap();
    assert_eq!(price.as_str(), "0.1");
}

#[tokio::test]
async fn upstream_errors_are_classified() {
    let limited =
        StubServer::start(|_| StubResponse::status(429).with_header("Retry-After", "7")).await;
    let bad = StubServer::start(|_| StubResponse::status(400)).await;
    let garbage = StubServer::start(|_| StubResponse::json(r#"{"ethereum":{"usd":-1}}"#)).await;
    let pair = Pair::new("ETH", "USD");
    let err = coingecko(limited.url(), Duration::from_secs(5))
        .price(&pair)
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(classify_breaker(&Err(err)), Outcome::Failure);
    let err = coingecko(bad.url(), Duration::from_secs(5))
        .price(&pair)
        .await
        .unwrap_err();
    // A 4xx is the request's fault, not the dependency's.
    assert_eq!(classify_breaker(&Err(err)), Outcome::Ignored);
    let err = coingecko(garbage.url(), Duration::from_secs(5))
        .price(&pair)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPrice { .. }));
}

/// A price comes from the configured host or not at all, and an answer far larger than a
/// price is refused without being kept.
#[tokio::test]
async fn redirects_are_not_followed_and_answers_are_capped() {
    let elsewhere = StubServer::start(coingecko_reply).await;
    let target = format!(
        "{}/api/v3/simple/price?ids=ethereum&vs_currencies=usd",
        elsewhere.url()
    );
    let redirecting =
        StubServer::start(move |_| StubResponse::status(302).with_header("Location", &target))
            .await;
    let pair = Pair::new("ETH", "USD");
    let err = coingecko(redirecting.url(), Duration::from_secs(5))
        .price(&pair)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UpstreamStatus { status: 302, .. }),
        "{err:?}"
    );
    assert_eq!(elsewhere.count(), 0, "the redirect was not followed");

    let padding = "x".repeat(haven_resilience::MAX_PRICE_RESPONSE_BYTES);
    let huge = StubServer::start(move |_| {
        StubResponse::json(format!(r#"{{"ethereum":{{"usd":1}},"pad":"{padding}"}}"#))
    })
    .await;
    let err = coingecko(huge.url(), Duration::from_secs(5))
        .price(&pair)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ResponseTooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn primary_timeout_falls_through_to_secondary() {
    let slow = StubServer::start(|t| coingecko_reply(t).delayed(Duration::from_secs(5))).await;
    let bn = StubServer::start(binance_reply).await;
    let clock = Arc::new(ManualClock::new());
    let chain = FallbackChain::new(
        vec![
            stage(
                Arc::new(coingecko(slow.url(), Duration::from_secs(30))),
                Duration::from_millis(200),
            ),
            stage(
                Arc::new(binance(bn.url(), Duration::from_secs(30))),
                Duration::from_secs(5),
            ),
        ],
        cache(clock),
        Arc::new(InMemoryIntervalGate::default()),
    );
    let quote = chain.quote(&Pair::new("ETH", "USD")).await.unwrap();
    assert_eq!(quote.source, "binance");
    assert_eq!(quote.price.as_str(), "3001.25");
    assert!(!quote.stale);
    assert_eq!(slow.count(), 1);
}

#[tokio::test]
async fn stale_values_are_served_only_within_the_bound() {
    let failing = Arc::new(AtomicBool::new(false));
    let flag = failing.clone();
    let cg = StubServer::start(move |t| {
        if flag.load(Ordering::SeqCst) {
            StubResponse::status(503)
        } else {
            coingecko_reply(t)
        }
    })
    .await;
    let clock = Arc::new(ManualClock::new());
    let chain = FallbackChain::new(
        vec![stage(
            Arc::new(coingecko(cg.url(), Duration::from_secs(5))),
            Duration::from_secs(5),
        )],
        cache(clock.clone()),
        Arc::new(InMemoryIntervalGate::default()),
    );
    let pair = Pair::new("ETH", "USD");
    assert!(!chain.quote(&pair).await.unwrap().stale);
    // Fresh for 30 s: answered from cache without calling upstream.
    clock.advance(Duration::from_secs(29));
    let cached = chain.quote(&pair).await.unwrap();
    assert!(!cached.stale);
    assert_eq!(cg.count(), 1);

    failing.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(2));
    let stale = chain.quote(&pair).await.unwrap();
    assert!(stale.stale);
    assert_eq!(stale.price.as_str(), "3012.5");
    assert_eq!(stale.age, Duration::from_secs(31));
    assert_eq!(cg.count(), 2);

    clock.advance(Duration::from_secs(88));
    assert!(chain.quote(&pair).await.unwrap().stale);
    clock.advance(Duration::from_secs(1));
    let gone = chain.quote(&pair).await.unwrap_err();
    assert!(matches!(gone, Error::Unavailable { .. }));
    assert_eq!(gone.code(), haven_core::ErrorCode::ServiceUnavailable);
}

#[tokio::test]
async fn retries_go_through_the_breaker_and_honour_the_interval_gate() {
    let cg = StubServer::start(|_| StubResponse::status(502)).await;
    let gate: Arc<dyn IntervalGate> = Arc::new(InMemoryIntervalGate::default());
    let retry = Arc::new(
        Retry::with_seed(
            RetryPolicy {
                max_attempts: 10,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
                max_elapsed: Duration::from_secs(5),
            },
            9,
        )
        .unwrap(),
    );
    let breaker = Arc::new(CircuitBreaker::new("coingecko", BreakerConfig::default()).unwrap());
    let chain = FallbackChain::new(
        vec![Stage {
            source: Arc::new(coingecko(cg.url(), Duration::from_secs(5))),
            breaker: breaker.clone(),
            timeout: Duration::from_secs(5),
            retry: retry.clone(),
            min_interval: None,
        }],
        cache(Arc::new(ManualClock::new())),
        gate.clone(),
    );
    let pair = Pair::new("BTC", "USD");
    assert!(chain.quote(&pair).await.is_err());
    // Five failures open the breaker; the remaining attempts never reach the upstream.
    assert_eq!(cg.count(), 5);
    assert_eq!(breaker.status().state, haven_resilience::BreakerState::Open);

    let gated = FallbackChain::new(
        vec![Stage {
            source: Arc::new(coingecko(cg.url(), Duration::from_secs(5))),
            breaker: Arc::new(CircuitBreaker::new("cg2", BreakerConfig::default()).unwrap()),
            timeout: Duration::from_secs(5),
            retry,
            min_interval: Some(Duration::from_secs(4)),
        }],
        cache(Arc::new(ManualClock::new())),
        gate,
    );
    assert!(gated.quote(&pair).await.is_err());
    assert_eq!(cg.count(), 6, "the gate allows one call per 4 s");
}

#[cfg(feature = "redis")]
pub use cross_process::child_gate_poll;

#[cfg(feature = "redis")]
mod cross_process {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use haven_resilience::{
        BreakerConfig, CircuitBreaker, FallbackChain, ManualClock, Pair, RedisIntervalGate, Stage,
    };
    use haven_testkit::TestRedis;

    use super::{coingecko, coingecko_reply, once};
    use haven_testkit::StubServer;

    use crate::support::{Reports, pool, report, spawn_child};

    const RUN: Duration = Duration::from_millis(2500);
    const INTERVAL: Duration = Duration::from_millis(500);

    fn chain(upstream: &str, redis_url: &str, prefix: &str) -> FallbackChain {
        let gate = RedisIntervalGate::new(pool(redis_url), prefix, Duration::from_secs(1));
        FallbackChain::new(
            vec![Stage {
                source: Arc::new(coingecko(upstream, Duration::from_secs(5))),
                breaker: Arc::new(CircuitBreaker::new("cg", BreakerConfig::default()).unwrap()),
                timeout: Duration::from_secs(5),
                retry: once(),
                min_interval: Some(INTERVAL),
            }],
            // Never fresh (the clock does not move but the fresh TTL is zero).
            haven_resilience::TtlCache::with_clock(
                Duration::ZERO,
                Duration::ZERO,
                Arc::new(ManualClock::new()),
            )
            .unwrap(),
            Arc::new(gate),
        )
    }

    async fn poll_for(chain: &FallbackChain, run: Duration) -> usize {
        let deadline = Instant::now() + run;
        let mut answered = 0;
        while Instant::now() < deadline {
            if chain.quote(&Pair::new("ETH", "USD")).await.is_ok() {
                answered += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        answered
    }

    /// Child: polls the chain against the parent's upstream and gate.
    pub async fn child_gate_poll() {
        let chain = chain(
            &std::env::var("GATE_UPSTREAM").unwrap(),
            &std::env::var("GATE_REDIS_URL").unwrap(),
            &std::env::var("GATE_PREFIX").unwrap(),
        );
        report("ready");
        let answered = poll_for(&chain, RUN).await;
        report(format!("answered {answered}"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn minimum_interval_holds_across_two_processes() {
        let redis = TestRedis::new().await;
        let upstream = StubServer::start(coingecko_reply).await;
        let prefix = redis.key("gate:");
        let mut child = spawn_child(
            "gate-poll",
            &[
                ("GATE_UPSTREAM", upstream.url().to_owned()),
                ("GATE_REDIS_URL", redis.url().to_owned()),
                ("GATE_PREFIX", prefix.clone()),
            ],
        );
        let mut reports = Reports::of(&mut child);
        assert_eq!(reports.next().await, "ready");
        let chain = chain(upstream.url(), redis.url(), &prefix);
        let mine = poll_for(&chain, RUN).await;
        let theirs: usize = reports
            .next()
            .await
            .strip_prefix("answered ")
            .unwrap()
            .parse()
            .unwrap();
        assert!(child.wait().await.unwrap().success());
        drop(reports);

        let calls = upstream.requests();
        assert_eq!(calls.len(), mine + theirs);
        assert!(calls.len() >= 2, "both processes polled: {mine} + {theirs}");
        // Both processes polled every 10 ms for 2.5 s; the shared gate let through at most
        // one claim per interval, plus one for a run that straddles interval edges.
        let bound = (RUN.as_millis() / INTERVAL.as_millis()) as usize + 2;
        assert!(
            calls.len() <= bound,
            "{} calls, at most {bound} allowed",
            calls.len()
        );
        // Claims are spaced by the interval on the Redis clock; arrival at the upstream adds
        // each client's scheduling delay, so allow half an interval of jitter on a busy host.
        let mut at: Vec<_> = calls.iter().map(|r| r.received_at).collect();
        at.sort();
        for w in at.windows(2) {
            let gap = w[1] - w[0];
            assert!(gap >= INTERVAL / 2, "two upstream calls only {gap:?} apart");
        }
    }
}

#[cfg(feature = "test-utils")]
#[tokio::test]
async fn in_memory_gate_passes_conformance() {
    haven_resilience::conformance::interval_gate(&InMemoryIntervalGate::default(), "cg").await;
}

#[cfg(all(feature = "test-utils", feature = "redis"))]
#[tokio::test]
async fn redis_gate_passes_conformance() {
    let redis = haven_testkit::TestRedis::new().await;
    let gate = haven_resilience::RedisIntervalGate::new(
        redis.pool(),
        redis.key("gate:"),
        Duration::from_secs(1),
    );
    haven_resilience::conformance::interval_gate(&gate, "cg").await;
}
