//! Resilience for haven services: circuit breakers (in-process and shared across replicas
//! through Redis), retry with full jitter, timeouts, bulkheads, GCRA rate limiters (keyed
//! in-process and distributed) and the price-feed fallback chain with a bounded-staleness
//! cache, and back-off with temporary bans after repeated failures ([`LockoutPolicy`]).
//!
//! Semantics follow resilience4j with haven's seed defaults: 5 consecutive failures open a
//! breaker, it stays OPEN for 30 s, HALF_OPEN admits 2 probes and 2 successes close it.
//!
//! ```
//! use std::time::Duration;
//! use haven_resilience::{
//!     BreakerConfig, CallError, CircuitBreaker, Error, Idempotency, KeyedLimiter, RateQuota,
//!     Retry, RetryDecision, RetryPolicy,
//! };
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let breaker = CircuitBreaker::new("chain-rpc", BreakerConfig::default())?;
//! for _ in 0..5 {
//!     let _ = breaker.call(|| async { Err::<(), _>("node down") }).await;
//! }
//! // Open now: the operation is not called at all.
//! let refused = breaker.call(|| async { Ok::<_, &str>(1) }).await;
//! assert!(matches!(refused, Err(CallError::Resilience(Error::CircuitOpen { .. }))));
//!
//! let retry = Retry::with_seed(RetryPolicy { base_delay: Duration::from_millis(1), ..RetryPolicy::default() }, 7)?;
//! let value = retry
//!     .run(Idempotency::Idempotent, |_: &&str| RetryDecision::RETRY, |attempt| async move {
//!         if attempt < 2 { Err("flaky") } else { Ok(attempt) }
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(value, 2);
//!
//! let limiter = KeyedLimiter::new(RateQuota::new(10.try_into().unwrap(), Duration::from_secs(1))?)?;
//! let decision = limiter.check(&"203.0.113.7");
//! assert!(decision.allowed);
//! assert_eq!((decision.limit, decision.remaining), (10, 9));
//! # Ok::<_, Error>(())
//! # }).unwrap();
//! ```
//!
//! ## Features
//! - `http`: the price sources `CoinGecko` and `Binance` (reqwest). They need a process-wide
//!   rustls crypto provider, which this crate never installs: the binary (or the test)
//!   chooses it before building a source.
//! - `redis`: [`SharedBreaker`] (breaker state in Redis, Lua scripts, batched outcomes, local
//!   copy refreshed at most every 250 ms, probe leases, local fallback when Redis is down),
//!   [`DistributedLimiter`] (GCRA in one Lua call, or batches of requests leased per
//!   replica for busy keys, [`LeaseConfig`]), [`RedisFailureTracker`] (failure counts
//!   and blocks shared by every replica) and [`RedisIntervalGate`] (minimum
//!   interval between upstream calls across processes).
//! - `test-utils`: the [`conformance`] checks any [`IntervalGate`] or [`Breaker`]
//!   implementation must pass, for implementations in other crates.
//!
//! This crate depends on no web, database or job framework.

#![warn(missing_docs)]

mod breaker;
mod bulkhead;
mod clock;
mod error;
mod fallback;
mod limiter;
mod lockout;
pub mod metrics;
mod retry;

#[cfg(feature = "test-utils")]
pub mod conformance;

#[cfg(feature = "redis")]
pub use breaker::shared::{SharedBreaker, SharedBreakerConfig};
pub use breaker::{
    Breaker, BreakerConfig, BreakerExt, BreakerPermit, BreakerRegistry, BreakerState,
    BreakerStatus, CircuitBreaker, Outcome, Permit, SlidingWindow, SlowCallConfig, StateChange,
    classify_by_result,
};
pub use bulkhead::{Bulkhead, with_timeout};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{CallError, Error, Result};
#[cfg(feature = "redis")]
pub use fallback::RedisIntervalGate;
#[cfg(feature = "http")]
pub use fallback::{Binance, CoinGecko};
pub use fallback::{
    CachedValue, FallbackChain, InMemoryIntervalGate, IntervalGate, InvalidPrice,
    MAX_PRICE_RESPONSE_BYTES, Pair, Price, PriceSource, Quote, Stage, TtlCache, classify_breaker,
    classify_retry,
};
pub use limiter::{ClassedLimiter, KeyClass, KeyedLimiter, RateDecision, RateQuota};
#[cfg(feature = "redis")]
pub use limiter::{DistributedLimiter, LeaseConfig};
#[cfg(feature = "redis")]
pub use lockout::RedisFailureTracker;
pub use lockout::{FailureOutcome, FailureTracker, LockoutPolicy, MemoryFailureTracker};
pub use retry::{GiveUp, Idempotency, Retry, RetryDecision, RetryError, RetryPolicy};
