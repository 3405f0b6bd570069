//! The token API's settings: where fiat prices come from and how redemptions are approved.

use haven_rewards::Hnv;
use haven_service::config::ConfigError;
use serde::{Deserialize, Serialize};

/// Fiat prices and redemption rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreasuryConfig {
    /// `HAVEN_PRICE_PRIMARY_URL`: a CoinGecko-compatible `simple/price` API (none: no
    /// primary source).
    pub price_primary_url: Option<String>,
    /// `HAVEN_PRICE_COINGECKO_ID` (default `haven`): the primary source's id of HNV.
    pub price_coingecko_id: String,
    /// `HAVEN_PRICE_SECONDARY_URL`: a Binance-compatible `ticker/price` API (none: no
    /// secondary source).
    pub price_secondary_url: Option<String>,
    /// `HAVEN_PRICE_FRESH_SECS` (60): a fetched price is reused this long.
    pub price_fresh_secs: u64,
    /// `HAVEN_PRICE_STALE_SECS` (300): when every source fails, a cached price this old at
    /// most still prices a redemption; older, the redemption is refused.
    pub price_stale_secs: u64,
    /// `HAVEN_REDEMPTION_CURRENCIES` (default `CAD,USD,EUR`): fiat currencies redeemed into.
    pub redemption_currencies: Vec<String>,
    /// `HAVEN_REDEMPTION_DUAL_APPROVAL_HNV` (default 10000): redemptions of at least this
    /// many HNV need two distinct operators' approvals.
    pub dual_approval_at: Hnv,
    /// `HAVEN_STATS_CACHE_SECS` (300): how long the network statistics are cached.
    pub stats_cache_secs: u64,
}

impl Default for TreasuryConfig {
    /// [`DEFAULTS`], validated (a test holds the two equal).
    fn default() -> Self {
        Self {
            price_primary_url: None,
            price_coingecko_id: DEFAULTS.price_coingecko_id.into(),
            price_secondary_url: None,
            price_fresh_secs: DEFAULTS.price_fresh_secs,
            price_stale_secs: DEFAULTS.price_stale_secs,
            redemption_currencies: DEFAULTS
                .redemption_currencies
                .split(',')
                .map(Into::into)
                .collect(),
            dual_approval_at: Hnv::from_whole(10_000),
            stats_cache_secs: DEFAULTS.stats_cache_secs,
        }
    }
}

/// The environment's view, before validation.
#[derive(Debug, Deserialize)]
pub(crate) struct TreasuryOwn {
    price_primary_url: String,
    price_coingecko_id: String,
    price_secondary_url: String,
    price_fresh_secs: u64,
    price_stale_secs: u64,
    redemption_currencies: String,
    redemption_dual_approval_hnv: String,
    stats_cache_secs: u64,
}

/// The token API's defaults, flattened into the api's `DEFAULTS`.
#[derive(Debug, Serialize)]
pub(crate) struct TreasuryDefaults {
    price_primary_url: &'static str,
    price_coingecko_id: &'static str,
    price_secondary_url: &'static str,
    price_fresh_secs: u64,
    price_stale_secs: u64,
    redemption_currencies: &'static str,
    redemption_dual_approval_hnv: &'static str,
    stats_cache_secs: u64,
}

/// Every default of the token API's settings.
pub(crate) const DEFAULTS: TreasuryDefaults = TreasuryDefaults {
    price_primary_url: "",
    price_coingecko_id: "haven",
    price_secondary_url: "",
    price_fresh_secs: 60,
    price_stale_secs: 300,
    redemption_currencies: "CAD,USD,EUR",
    redemption_dual_approval_hnv: "10000",
    stats_cache_secs: 300,
};

impl Default for TreasuryOwn {
    fn default() -> Self {
        Self {
            price_primary_url: DEFAULTS.price_primary_url.into(),
            price_coingecko_id: DEFAULTS.price_coingecko_id.into(),
            price_secondary_url: DEFAULTS.price_secondary_url.into(),
            price_fresh_secs: DEFAULTS.price_fresh_secs,
            price_stale_secs: DEFAULTS.price_stale_secs,
            redemption_currencies: DEFAULTS.redemption_currencies.into(),
            redemption_dual_approval_hnv: DEFAULTS.redemption_dual_approval_hnv.into(),
            stats_cache_secs: DEFAULTS.stats_cache_secs,
        }
    }
}

fn url(var: &'static str, raw: &str) -> Result<Option<String>, ConfigError> {
    match raw.trim() {
        "" => Ok(None),
        raw => match url::Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(raw.to_owned())),
            _ => Err(ConfigError::Invalid {
                var,
                reason: format!("{raw:?} is not an http(s) URL"),
            }),
        },
    }
}

pub(crate) fn treasury_from(own: TreasuryOwn) -> Result<TreasuryConfig, ConfigError> {
    if own.price_fresh_secs == 0 {
        return Err(ConfigError::Invalid {
            var: "HAVEN_PRICE_FRESH_SECS",
            reason: "must be at least 1".into(),
        });
    }
    if own.price_stale_secs < own.price_fresh_secs {
        return Err(ConfigError::Invalid {
            var: "HAVEN_PRICE_STALE_SECS",
            reason: "must be at least HAVEN_PRICE_FRESH_SECS".into(),
        });
    }
    if own.stats_cache_secs == 0 {
        return Err(ConfigError::Invalid {
            var: "HAVEN_STATS_CACHE_SECS",
            reason: "must be at least 1".into(),
        });
    }
    let mut currencies = Vec::new();
    for code in own.redemption_currencies.split(',').map(str::trim) {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ConfigError::Invalid {
                var: "HAVEN_REDEMPTION_CURRENCIES",
                reason: format!("{code:?} is not an ISO 4217 code such as CAD"),
            });
        }
        currencies.push(code.to_owned());
    }
    let dual_approval_at =
        Hnv::parse(own.redemption_dual_approval_hnv.trim()).map_err(|e| ConfigError::Invalid {
            var: "HAVEN_REDEMPTION_DUAL_APPROVAL_HNV",
            reason: e.to_string(),
        })?;
    Ok(TreasuryConfig {
        price_primary_url: url("HAVEN_PRICE_PRIMARY_URL", &own.price_primary_url)?,
        price_coingecko_id: own.price_coingecko_id.trim().to_owned(),
        price_secondary_url: url("HAVEN_PRICE_SECONDARY_URL", &own.price_secondary_url)?,
        price_fresh_secs: own.price_fresh_secs,
        price_stale_secs: own.price_stale_secs,
        redemption_currencies: currencies,
        dual_approval_at,
        stats_cache_secs: own.stats_cache_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> TreasuryOwn {
        TreasuryOwn::default()
    }

    #[test]
    fn defaults_and_refusals() {
        let config = treasury_from(own()).unwrap();
        assert_eq!(config.price_coingecko_id, "haven");
        assert_eq!(
            (config.price_fresh_secs, config.price_stale_secs),
            (60, 300)
        );
        assert_eq!(config.redemption_currencies, ["CAD", "USD", "EUR"]);
        assert_eq!(config.dual_approval_at, Hnv::from_whole(10_000));
        assert_eq!(config.stats_cache_secs, 300);
        assert_eq!(config.price_primary_url, None);
        assert_eq!(config, TreasuryConfig::default());
        let refused = |change: fn(&mut TreasuryOwn)| {
            let mut o = own();
            change(&mut o);
            treasury_from(o).unwrap_err().to_string()
        };
        assert!(
            refused(|o| o.price_primary_url = "ftp://x".into()).contains("HAVEN_PRICE_PRIMARY_URL")
        );
        assert!(refused(|o| o.price_stale_secs = 10).contains("HAVEN_PRICE_STALE_SECS"));
        assert!(
            refused(|o| o.redemption_currencies = "CAD,usd".into())
                .contains("HAVEN_REDEMPTION_CURRENCIES")
        );
        assert!(
            refused(|o| o.redemption_dual_approval_hnv = "-5".into())
                .contains("HAVEN_REDEMPTION_DUAL_APPROVAL_HNV")
        );
        assert!(refused(|o| o.stats_cache_secs = 0).contains("HAVEN_STATS_CACHE_SECS"));
    }
}
