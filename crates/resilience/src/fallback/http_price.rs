//! The HTTP price sources (feature `http`): [`CoinGecko`] and [`Binance`] over reqwest.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::price::{MAX_PRICE_RESPONSE_BYTES, Pair, Price, PriceSource};
use crate::{Error, Result};

/// The price sources' client: the timeout, no redirects (a price comes from the configured
/// host or not at all). It needs the process's rustls crypto provider, which the library
/// does not choose (the binaries install ring at start-up): without one, building it panics.
fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("haven-resilience/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Reads at most `limit` bytes of `response`'s body, refusing a longer one without
/// buffering it.
async fn read_capped(
    mut response: reqwest::Response,
    upstream: &'static str,
    limit: usize,
) -> Result<Vec<u8>> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Error::ResponseTooLarge { upstream, limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|source| Error::Http {
        upstream,
        source: source.into(),
    })? {
        if body.len() + chunk.len() > limit {
            return Err(Error::ResponseTooLarge { upstream, limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

async fn get_json(
    client: &reqwest::Client,
    upstream: &'static str,
    url: &str,
    query: &[(&str, &str)],
) -> Result<Vec<u8>> {
    let url = url::Url::parse_with_params(url, query).map_err(|_| Error::InvalidConfig {
        field: "base_url",
        reason: "not a valid URL",
    })?;
    let response = client.get(url).send().await.map_err(|source| Error::Http {
        upstream,
        source: source.into(),
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::UpstreamStatus {
            upstream,
            status: status.as_u16(),
            retry_after: retry_after(response.headers()),
        });
    }
    read_capped(response, upstream, MAX_PRICE_RESPONSE_BYTES).await
}

fn checked(upstream: &'static str, pair: &Pair, text: &str) -> Result<Price> {
    Price::parse(text).map_err(|_| Error::InvalidPrice {
        upstream,
        pair: pair.to_string(),
    })
}

/// CoinGecko's `/api/v3/simple/price`.
#[derive(Debug, Clone)]
pub struct CoinGecko {
    client: reqwest::Client,
    base_url: String,
    ids: HashMap<String, String>,
}

impl CoinGecko {
    /// The public API endpoint.
    pub const PUBLIC_URL: &'static str = "https://api.coingecko.com";

    /// A source on `base_url` (e.g. [`CoinGecko::PUBLIC_URL`]) with the built-in symbol→id
    /// table; `timeout` bounds every request.
    pub fn new(base_url: impl Into<String>, timeout: Duration) -> Self {
        let ids = [
            ("BTC", "bitcoin"),
            ("ETH", "ethereum"),
            ("SOL", "solana"),
            ("USDT", "tether"),
            ("USDC", "usd-coin"),
            ("POL", "polygon-ecosystem-token"),
            ("AVAX", "avalanche-2"),
            ("TON", "the-open-network"),
            ("NEAR", "near"),
            ("ARB", "arbitrum"),
            ("OP", "optimism"),
        ]
        .into_iter()
        .map(|(s, id)| (s.to_owned(), id.to_owned()))
        .collect();
        Self {
            client: http_client(timeout),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            ids,
        }
    }

    /// Maps another symbol to a CoinGecko coin id.
    pub fn with_id(mut self, symbol: &str, id: &str) -> Self {
        self.ids.insert(symbol.to_ascii_uppercase(), id.to_owned());
        self
    }
}

#[async_trait]
impl PriceSource for CoinGecko {
    fn name(&self) -> &'static str {
        "coingecko"
    }

    async fn price(&self, pair: &Pair) -> Result<Price> {
        let missing = || Error::MissingPrice {
            upstream: "coingecko",
            pair: pair.to_string(),
        };
        let id = self.ids.get(&pair.base).ok_or_else(missing)?;
        let vs = pair.quote.to_ascii_lowercase();
        let url = format!("{}/api/v3/simple/price", self.base_url);
        let body = get_json(
            &self.client,
            "coingecko",
            &url,
            &[("ids", id), ("vs_currencies", &vs)],
        )
        .await?;
        // The number's own text: read exactly, never through a float.
        let parsed: HashMap<String, HashMap<String, Box<serde_json::value::RawValue>>> =
            serde_json::from_slice(&body).map_err(|source| Error::Decode {
                upstream: "coingecko",
                source,
            })?;
        let raw = parsed
            .get(id)
            .and_then(|m| m.get(&vs))
            .ok_or_else(missing)?;
        checked("coingecko", pair, raw.get())
    }
}

/// Binance's `/api/v3/ticker/price`. A `USD` quote is read from the `USDT` market.
#[derive(Debug, Clone)]
pub struct Binance {
    client: reqwest::Client,
    base_url: String,
}

impl Binance {
    /// The public API endpoint.
    pub const PUBLIC_URL: &'static str = "https://api.binance.com";

    /// A source on `base_url`; `timeout` bounds every request.
    pub fn new(base_url: impl Into<String>, timeout: Duration) -> Self {
        Self {
            client: http_client(timeout),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }
}

#[derive(Deserialize)]
struct BinanceTicker {
    symbol: String,
    price: String,
}

#[async_trait]
impl PriceSource for Binance {
    fn name(&self) -> &'static str {
        "binance"
    }

    async fn price(&self, pair: &Pair) -> Result<Price> {
        let quote = if pair.quote == "USD" {
            "USDT"
        } else {
            &pair.quote
        };
        let symbol = format!("{}{}", pair.base, quote);
        let url = format!("{}/api/v3/ticker/price", self.base_url);
        let body = get_json(&self.client, "binance", &url, &[("symbol", &symbol)]).await?;
        let ticker: BinanceTicker =
            serde_json::from_slice(&body).map_err(|source| Error::Decode {
                upstream: "binance",
                source,
            })?;
        let invalid = || Error::InvalidPrice {
            upstream: "binance",
            pair: pair.to_string(),
        };
        if ticker.symbol != symbol {
            return Err(Error::MissingPrice {
                upstream: "binance",
                pair: pair.to_string(),
            });
        }
        Price::parse(&ticker.price).map_err(|_| invalid())
    }
}
