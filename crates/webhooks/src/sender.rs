//! The HTTP sender: one attempt per call, no redirects, no proxy, no retries of its own,
//! and every resolved address checked against the destination policy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use http::HeaderMap;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::delivery::parse_retry_after;
use crate::destination::DestinationPolicy;
use crate::error::{Error, Refusal};

/// Timeouts and identification of the sender.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Whole-request timeout (default 15 s).
    pub timeout: Duration,
    /// Connection timeout (default 5 s).
    pub connect_timeout: Duration,
    /// `User-Agent` (default `haven-webhooks/<version>`).
    pub user_agent: String,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            user_agent: concat!("haven-webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The result of one attempt that reached the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// The response status; `None` when the attempt failed in transport (connect error,
    /// timeout, reset).
    pub status: Option<u16>,
    /// The receiver's `Retry-After`, parsed.
    pub retry_after: Option<Duration>,
    /// A short description of the transport failure, for the delivery log.
    pub transport_error: Option<String>,
}

impl AttemptResult {
    /// Whether the receiver accepted the message (2xx).
    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("destination {host} refused: {reason}")]
struct ResolveRefused {
    host: String,
    ip: Option<std::net::IpAddr>,
    reason: Refusal,
}

#[derive(Debug)]
struct GuardedResolver {
    policy: Arc<DestinationPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(Box::new(ResolveRefused {
                    host,
                    ip: None,
                    reason: Refusal::Unresolved,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            // Every address must pass: connecting to "the first allowed one" would let a
            // name with one public and one internal record reach the internal one on retry.
            if let Some(bad) = addrs.iter().find(|a| !policy.is_allowed(a.ip())) {
                return Err(Box::new(ResolveRefused {
                    host,
                    ip: Some(bad.ip()),
                    reason: Refusal::NonPublicAddress,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Sends outbound webhooks over HTTPS (rustls with the ring provider).
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    policy: Arc<DestinationPolicy>,
}

impl HttpSender {
    /// A sender enforcing `policy`.
    ///
    /// # Panics
    /// When the process has no rustls crypto provider installed: the library does not choose
    /// one (the binaries install ring at start-up).
    pub fn new(policy: DestinationPolicy, config: SenderConfig) -> Result<Self, Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .retry(reqwest::retry::never())
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent)
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .build()
            .map_err(Error::Client)?;
        Ok(Self { client, policy })
    }

    /// The policy.
    pub fn policy(&self) -> &DestinationPolicy {
        &self.policy
    }

    /// Makes one POST attempt. A refused destination is an `Err` (permanent: the endpoint
    /// must be fixed); network failures are an `Ok` result without a status (retryable).
    pub async fn send(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<AttemptResult, Error> {
        let url = self.policy.check_url(url)?;
        let outcome = self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, Utc::now()));
                Ok(AttemptResult {
                    status: Some(status),
                    retry_after,
                    transport_error: None,
                })
            }
            Err(err) => {
                if let Some(refused) = find_refusal(&err) {
                    return Err(Error::DestinationRefused {
                        host: refused.host.clone(),
                        ip: refused.ip,
                        reason: refused.reason,
                    });
                }
                Ok(AttemptResult {
                    status: None,
                    retry_after: None,
                    transport_error: Some(describe(&err)),
                })
            }
        }
    }
}

fn find_refusal(err: &reqwest::Error) -> Option<&ResolveRefused> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(refused) = e.downcast_ref::<ResolveRefused>() {
            return Some(refused);
        }
        next = e.source();
    }
    None
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timeout".to_owned()
    } else if err.is_connect() {
        "connection failed".to_owned()
    } else {
        "transport error".to_owned()
    }
}
