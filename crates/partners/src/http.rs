//! The reqwest implementations of the partner clients.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use haven_resilience::{Idempotency, Retry, classify_retry};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{AuroraClient, Error, PartnerConfig, SyncItem, TribeClient, aurora_items, tribe_items};

/// The most bytes read of one page.
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// One partner API: a client, its base URL and key, and the retry policy.
#[derive(Debug)]
struct Api {
    partner: &'static str,
    client: reqwest::Client,
    base: url::Url,
    config: PartnerConfig,
    retry: Retry,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default, alias = "bookings", alias = "attendances")]
    items: Vec<Box<RawValue>>,
    #[serde(default, alias = "nextCursor", alias = "cursor")]
    next_cursor: Option<String>,
}

impl Api {
    fn new(partner: &'static str, config: PartnerConfig) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Config { reason };
        let mut base = url::Url::parse(&config.base_url)
            .map_err(|e| invalid(format!("{partner} base URL {:?}: {e}", config.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid(format!("{partner} base URL must be http(s)")));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("haven-partners/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("{partner} HTTP client: {e}")))?;
        let retry = Retry::new(config.retry.clone())
            .map_err(|e| invalid(format!("{partner} retry policy: {e}")))?;
        Ok(Self {
            partner,
            client,
            base,
            config,
            retry,
        })
    }

    /// Every page of `path` since `since` (`since_param` names the parameter).
    async fn list(
        &self,
        path: &str,
        since_param: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Box<RawValue>>, Error> {
        let mut url = self.base.join(path).map_err(|e| Error::Config {
            reason: format!("{} URL: {e}", self.partner),
        })?;
        let since = since.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..self.config.max_pages {
            url.query_pairs_mut()
                .clear()
                .append_pair(since_param, &since);
            if let Some(cursor) = &cursor {
                url.query_pairs_mut().append_pair("cursor", cursor);
            }
            let page = self.page(&url).await?;
            items.extend(page.items);
            match page.next_cursor.filter(|c| !c.is_empty()) {
                Some(next) => cursor = Some(next),
                None => return Ok(items),
            }
        }
        Err(Error::TooManyPages {
            partner: self.partner,
            max_pages: self.config.max_pages,
        })
    }

    async fn page(&self, url: &url::Url) -> Result<Page, Error> {
        let body = self
            .retry
            .run(Idempotency::Idempotent, classify_retry, |_| self.get(url))
            .await
            .map_err(|e| Error::Upstream {
                partner: self.partner,
                source: e.last,
            })?;
        serde_json::from_slice(&body).map_err(|e| Error::Decode {
            partner: self.partner,
            reason: e.to_string(),
        })
    }

    async fn get(&self, url: &url::Url) -> Result<Vec<u8>, haven_resilience::Error> {
        let upstream = self.partner;
        let mut response = self
            .client
            .get(url.clone())
            .bearer_auth(self.config.api_key.expose_secret())
            .send()
            .await
            .map_err(|source| haven_resilience::Error::Http {
                upstream,
                source: source.into(),
            })?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(std::time::Duration::from_secs);
            return Err(haven_resilience::Error::UpstreamStatus {
                upstream,
                status: status.as_u16(),
                retry_after,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) =
            response
                .chunk()
                .await
                .map_err(|source| haven_resilience::Error::Http {
                    upstream,
                    source: source.into(),
                })?
        {
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(haven_resilience::Error::ResponseTooLarge {
                    upstream,
                    limit: MAX_PAGE_BYTES,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Aurora's bookings over HTTP (see the crate docs for the API).
#[derive(Debug)]
pub struct HttpAurora(Api);

impl HttpAurora {
    /// A client of the Aurora API of `config`.
    pub fn new(config: PartnerConfig) -> Result<Self, Error> {
        Api::new("aurora", config).map(Self)
    }
}

#[async_trait]
impl AuroraClient for HttpAurora {
    async fn recent(&self, since: DateTime<Utc>) -> Result<Vec<SyncItem>, Error> {
        let records = self.0.list("bookings", "updated_since", since).await?;
        aurora_items(&records)
    }
}

/// Tribe's attendances over HTTP (see the crate docs for the API).
#[derive(Debug)]
pub struct HttpTribe(Api);

impl HttpTribe {
    /// A client of the Tribe API of `config`.
    pub fn new(config: PartnerConfig) -> Result<Self, Error> {
        Api::new("tribe", config).map(Self)
    }
}

#[async_trait]
impl TribeClient for HttpTribe {
    async fn recent(&self, since: DateTime<Utc>) -> Result<Vec<SyncItem>, Error> {
        let records = self.0.list("attendances", "since", since).await?;
        tribe_items(&records)
    }
}
