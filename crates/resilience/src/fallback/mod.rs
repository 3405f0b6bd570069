//! The price-feed fallback chain: [`PriceSource`]s tried in order, a [`TtlCache`] with a
//! bounded stale period and an [`IntervalGate`] spacing calls to one upstream.

mod cache;
mod chain;
mod gate;
#[cfg(feature = "http")]
mod http_price;
mod price;

pub use cache::{CachedValue, TtlCache};
pub use chain::{FallbackChain, Quote, Stage, classify_breaker, classify_retry};
#[cfg(feature = "redis")]
pub use gate::RedisIntervalGate;
pub use gate::{InMemoryIntervalGate, IntervalGate};
#[cfg(feature = "http")]
pub use http_price::{Binance, CoinGecko};
pub use price::{InvalidPrice, MAX_PRICE_RESPONSE_BYTES, Pair, Price, PriceSource};
