//! What the token API routes share: the treasury tables, fiat prices, the on-chain reader and
//! the network statistics cache (app data).

use std::sync::Arc;
use std::time::Duration;

use haven_core::{ErrorCode, Problem};
use haven_resilience::{
    Binance, BreakerRegistry, CoinGecko, FallbackChain, InMemoryIntervalGate, Pair, Retry,
    RetryPolicy, Stage, TtlCache,
};
use haven_rewards::{Decimal, Hnv};
use haven_service::cache::SharedCache;

use crate::config::treasury::TreasuryConfig;
use crate::error::ApiError;

/// The token API's parts (app data).
#[derive(Debug, Clone)]
pub struct TreasuryService {
    /// Redemptions, withdrawals, movements, totals.
    pub treasury: haven_db::PgTreasury,
    /// Fiat prices of HNV; `None` when no source is configured (redemptions are refused).
    pub prices: Option<Arc<FallbackChain>>,
    /// The settings.
    pub config: TreasuryConfig,
    /// The network statistics (`GET /api/v1/network/stats`).
    pub stats: Arc<SharedCache>,
}

/// A fiat price of HNV that may price a redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiatQuote {
    /// Fiat per HNV, truncated to 18 decimals.
    pub rate: Decimal,
    /// Which source answered (`coingecko`, `binance`), `+cache` when served from cache.
    pub source: String,
    /// When the price was observed.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// `amount × rate`, truncated to the currency's cents (two decimals): the member is never
/// paid a fraction of a cent more than the tokens are worth.
pub fn fiat_amount(amount: Hnv, rate: Decimal) -> Option<Decimal> {
    let value = amount.to_decimal()?.checked_mul(rate)?;
    const CENT: i128 = 10_000_000_000_000_000; // 10^16 in units of 10^-18
    Some(Decimal::from_scaled(value.scaled() / CENT * CENT))
}

/// `text` as a [`Decimal`], digits past the 18th decimal dropped (truncated).
fn rate_of(text: &str) -> Option<Decimal> {
    let truncated = match text.split_once('.') {
        Some((int, frac)) if frac.len() > 18 => format!("{int}.{}", &frac[..18]),
        _ => text.to_owned(),
    };
    Decimal::parse(&truncated).ok().filter(|d| d.is_positive())
}

impl TreasuryService {
    /// Builds the price chain from the settings: the configured sources in order, each
    /// behind its breaker (`price:primary`, `price:secondary`, created in `breakers` so
    /// `/health`, `/metrics` and the admin breaker routes see them, and shared by the
    /// replicas when the registry is), a 5 s timeout and two
    /// attempts, their answers cached `price_fresh_secs` and served up to `price_stale_secs`
    /// when every source fails.
    pub fn prices(
        config: &TreasuryConfig,
        breakers: &BreakerRegistry,
    ) -> anyhow::Result<Option<Arc<FallbackChain>>> {
        let timeout = Duration::from_secs(5);
        let mut stages = Vec::new();
        let retry = Arc::new(Retry::new(RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        })?);
        if let Some(url) = &config.price_primary_url {
            let source =
                CoinGecko::new(url.clone(), timeout).with_id("HNV", &config.price_coingecko_id);
            stages.push(Stage {
                source: Arc::new(source),
                breaker: breakers.get_or_create("price:primary")?,
                timeout,
                retry: retry.clone(),
                min_interval: None,
            });
        }
        if let Some(url) = &config.price_secondary_url {
            stages.push(Stage {
                source: Arc::new(Binance::new(url.clone(), timeout)),
                breaker: breakers.get_or_create("price:secondary")?,
                timeout,
                retry,
                min_interval: None,
            });
        }
        if stages.is_empty() {
            return Ok(None);
        }
        let cache = TtlCache::new(
            Duration::from_secs(config.price_fresh_secs),
            Duration::from_secs(config.price_stale_secs),
        )?;
        Ok(Some(Arc::new(FallbackChain::new(
            stages,
            cache,
            Arc::new(InMemoryIntervalGate::default()),
        ))))
    }

    /// The price of one HNV in `currency`, or a 503 `PRICE_UNAVAILABLE` when no source
    /// answers and no cached price is within its bound (never a guess).
    pub async fn quote(&self, currency: &str) -> Result<FiatQuote, ApiError> {
        let unavailable = |why: String| {
            ApiError(
                Problem::new(ErrorCode::PriceUnavailable, why)
                    .with_detail("currency", currency.to_owned()),
            )
        };
        let Some(prices) = &self.prices else {
            return Err(unavailable(
                "no price source is configured (HAVEN_PRICE_PRIMARY_URL, HAVEN_PRICE_SECONDARY_URL)"
                    .into(),
            ));
        };
        let quote = prices
            .quote(&Pair::new("HNV", currency))
            .await
            .map_err(|e| {
                unavailable(format!(
                    "no current HNV/{currency} price: every source failed and no cached price is \
                     younger than {} s ({e})",
                    self.config.price_stale_secs
                ))
            })?;
        let rate = rate_of(quote.price.as_str())
            .ok_or_else(|| unavailable(format!("the price {} cannot be used", quote.price)))?;
        let age = chrono::Duration::from_std(quote.age).unwrap_or_default();
        Ok(FiatQuote {
            rate,
            source: if quote.age.is_zero() {
                quote.source
            } else {
                format!("{}+cache", quote.source)
            },
            at: chrono::Utc::now() - age,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiat_amounts_are_truncated_to_cents() {
        let rate = rate_of("0.123456789").unwrap();
        // 1000 × 0.123456789 = 123.456789 → 123.45
        let paid = fiat_amount(Hnv::from_whole(1000), rate).unwrap();
        assert_eq!(paid.to_string(), "123.45");
        // 0.01 HNV at 0.99 = 0.0099 → 0
        let tiny = fiat_amount(Hnv::parse("0.01").unwrap(), rate_of("0.99").unwrap()).unwrap();
        assert_eq!(tiny.to_string(), "0");
        // Exact values stay exact.
        let exact = fiat_amount(Hnv::from_whole(3), rate_of("1.25").unwrap()).unwrap();
        assert_eq!(exact.to_string(), "3.75");
    }

    #[test]
    fn rates_keep_eighteen_decimals_and_must_be_positive() {
        assert_eq!(
            rate_of("0.1234567890123456789999").unwrap().to_string(),
            "0.123456789012345678"
        );
        assert!(rate_of("0.0000000000000000001").is_none());
        assert_eq!(rate_of("3001.25").unwrap().to_string(), "3001.25");
    }
}
