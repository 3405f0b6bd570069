//! Resilience for haven services.
#![allow(missing_docs)]

mod breaker;
mod bulkhead;
mod clock;
mod error;
mod fallback;
mod limiter;
mod retry;

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
pub use fallback::{
    Binance, CachedValue, CoinGecko, FallbackChain, InMemoryIntervalGate, IntervalGate, Pair,
    PriceSource, Quote, Stage, TtlCache, classify_breaker, classify_retry,
};
#[cfg(feature = "redis")]
pub use limiter::DistributedLimiter;
pub use limiter::{ClassedLimiter, KeyClass, KeyedLimiter, RateDecision, RateQuota};
pub use retry::{GiveUp, Idempotency, Retry, RetryDecision, RetryError, RetryPolicy};
