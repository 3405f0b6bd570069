//! Clients of the HAVEN rewards program's partners: Aurora (a hotel PMS) and Tribe (a
//! community app).
//!
//! Partners push events as signed webhooks; a webhook can be lost (an outage on either
//! side, a partner that gave up retrying). A **sync** asks the partner for what happened
//! recently and feeds every item through the same path as a webhook, where the reward
//! ledger's business keys make a sync plus the webhook (or two syncs over one window)
//! reward once.
//!
//! [`AuroraClient`] lists bookings updated since a time; [`TribeClient`] lists attendances.
//! Each turns its records into [`SyncItem`]s: the partner event they stand for (the same
//! event names as the webhook endpoints) with the record's own JSON as payload, byte for
//! byte (amounts are never re-encoded), and a stable [`SyncItem::origin`] per event.
//!
//! The partner APIs (what [`HttpAurora`] and [`HttpTribe`] call, `Authorization: Bearer
//! <api key>`):
//!
//! ```text
//! GET {base}/bookings?updated_since=<RFC 3339>[&cursor=<c>]
//!   → {"bookings": [{"booking_id", "guest_id", "total_price", "nights", "status",
//!                    "review": {"rating"}?, …}], "next_cursor": "…" | null}
//! GET {base}/attendances?since=<RFC 3339>[&cursor=<c>]
//!   → {"attendances": [{"event_id", "attendee_id", "type", "attended", …}],
//!      "next_cursor": "…" | null}
//! ```
//!
//! A booking yields `booking-created`, plus `booking-completed` or `booking-cancelled`
//! after its `status`, plus `review-submitted` when it carries a review; an attendance
//! yields `event-attendance`.
//!
//! ```no_run
//! # #[cfg(feature = "http")]
//! # async fn demo() -> Result<(), haven_partners::Error> {
//! use haven_partners::{AuroraClient, HttpAurora, PartnerConfig};
//!
//! let aurora = HttpAurora::new(PartnerConfig::new("https://pms.example/api", "key".into()))?;
//! let since = chrono::Utc::now() - chrono::Duration::hours(24);
//! for item in aurora.recent(since).await? {
//!     println!("{} {}", item.event, item.origin());
//! }
//! # Ok(()) }
//! ```
//!
//! ## Features
//! - `http`: the reqwest implementations (timeouts, retries of transport failures, 429 and
//!   5xx through `haven-resilience`, no redirects, capped answers). The caller installs the
//!   process's rustls crypto provider before building one.

#[cfg(feature = "http")]
mod http;
mod item;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[cfg(feature = "http")]
pub use http::{HttpAurora, HttpTribe};
pub use item::{SyncItem, aurora_items, tribe_items};

/// Where a partner's API is and how to call it.
#[derive(Debug, Clone)]
pub struct PartnerConfig {
    /// The API's base URL (`https://pms.example/api`).
    pub base_url: String,
    /// The API key, sent as `Authorization: Bearer <key>`.
    pub api_key: secrecy::SecretString,
    /// How long one request may take.
    pub timeout: std::time::Duration,
    /// Retries of transport failures, 429 and 5xx.
    pub retry: haven_resilience::RetryPolicy,
    /// Pages fetched at most per sync (a partner that never stops paging is cut off).
    pub max_pages: u32,
}

impl PartnerConfig {
    /// Defaults: 10 s per request, 3 attempts, at most 100 pages.
    pub fn new(base_url: impl Into<String>, api_key: secrecy::SecretString) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            timeout: std::time::Duration::from_secs(10),
            retry: haven_resilience::RetryPolicy::default(),
            max_pages: 100,
        }
    }

    /// The configuration from a URL setting and an API-key setting as written: `None` when
    /// the URL is empty (the partner is not configured); refused when the URL is not
    /// http(s) or the key is missing. The error names what is wrong, for the caller to
    /// attach to its setting.
    pub fn from_settings(
        url: &str,
        api_key: Option<secrecy::SecretString>,
    ) -> Result<Option<Self>, PartnerSettingError> {
        use secrecy::ExposeSecret;
        let url = url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(PartnerSettingError::Url(format!(
                "{url:?} is not an http(s) URL"
            )));
        }
        let key = api_key
            .filter(|k| !k.expose_secret().trim().is_empty())
            .ok_or(PartnerSettingError::MissingKey)?;
        Ok(Some(Self::new(url, key)))
    }
}

/// Why [`PartnerConfig::from_settings`] refused its settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartnerSettingError {
    /// The URL setting is unusable.
    #[error("{0}")]
    Url(String),
    /// The URL is set and the API key is not.
    #[error("required with the partner's URL")]
    MissingKey,
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable.
    #[error("invalid partner configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The partner could not be reached or answered with an error status.
    #[error("{partner} could not be read")]
    Upstream {
        /// `aurora` or `tribe`.
        partner: &'static str,
        /// What failed.
        #[source]
        source: haven_resilience::Error,
    },
    /// The partner answered something that is not the documented shape.
    #[error("{partner} answered an unexpected body: {reason}")]
    Decode {
        /// `aurora` or `tribe`.
        partner: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The partner kept paging beyond the configured limit.
    #[error("{partner} returned more than {max_pages} pages")]
    TooManyPages {
        /// `aurora` or `tribe`.
        partner: &'static str,
        /// The limit.
        max_pages: u32,
    },
}

impl Error {
    /// The wire code of this failure.
    pub fn code(&self) -> haven_core::ErrorCode {
        match self {
            Error::Config { .. } => haven_core::ErrorCode::InternalError,
            Error::Upstream { .. } | Error::Decode { .. } | Error::TooManyPages { .. } => {
                haven_core::ErrorCode::UpstreamError
            }
        }
    }
}

/// Aurora's bookings.
#[async_trait]
pub trait AuroraClient: Send + Sync + std::fmt::Debug {
    /// The events of every booking updated since `since`, oldest first as the partner
    /// lists them.
    async fn recent(&self, since: DateTime<Utc>) -> Result<Vec<SyncItem>, Error>;
}

/// Tribe's attendances.
#[async_trait]
pub trait TribeClient: Send + Sync + std::fmt::Debug {
    /// The attendance events since `since`.
    async fn recent(&self, since: DateTime<Utc>) -> Result<Vec<SyncItem>, Error>;
}
