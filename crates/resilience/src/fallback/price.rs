use std::fmt::{self, Debug};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// A trading pair, e.g. `ETH/USD`. Symbols are kept upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pair {
    /// The asset priced, e.g. `ETH`.
    pub base: String,
    /// The currency of the price, e.g. `USD`.
    pub quote: String,
}

impl Pair {
    /// `base/quote`, upper-cased.
    pub fn new(base: &str, quote: &str) -> Self {
        Self {
            base: base.to_ascii_uppercase(),
            quote: quote.to_ascii_uppercase(),
        }
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.quote)
    }
}

/// Somewhere a spot price can be fetched from.
///
/// **Invariant:** a returned price is finite and strictly positive.
#[async_trait]
pub trait PriceSource: Send + Sync + Debug {
    /// Upstream name for breakers, logs and interval gates, e.g. `coingecko`.
    fn name(&self) -> &'static str;
    /// The current price of one `pair.base` in `pair.quote`.
    async fn price(&self, pair: &Pair) -> Result<f64>;
}

/// The most bytes read from a price source's answer; a price is a few hundred.
pub const MAX_PRICE_RESPONSE_BYTES: usize = 64 * 1024;
