//! Rate limits: GCRA buckets shared by every replica in Redis
//! ([`haven_resilience::DistributedLimiter`]), with an in-process
//! [`haven_resilience::KeyedLimiter`] per replica taking over while Redis is unreachable.
//!
//! | class | default | key | applied by |
//! |---|---|---|---|
//! | [`RateClass::Public`] | 10/min (`HAVEN_RATE_LIMIT_PUBLIC_PER_MIN`) | client IP | [`limit`] on every route, when the request has no principal |
//! | [`RateClass::Authenticated`] | 100/min (`HAVEN_RATE_LIMIT_AUTHENTICATED_PER_MIN`) | [`PrincipalId`] | [`limit`] on every route, when the request has a principal |
//! | [`RateClass::Sensitive`] | 5/min (`HAVEN_RATE_LIMIT_SENSITIVE_PER_MIN`) | principal, else client IP | a route that opts in with [`sensitive`] |
//! | [`RateClass::Webhook`] | 600/min (`HAVEN_RATE_LIMIT_WEBHOOK_PER_MIN`) | configured webhook source, else client IP | [`per_source`] on `POST /api/v1/webhooks/{source}` (which [`limit`] skips) |
//!
//! [`limit`] is wrapped around the whole app; `/health`, `/ready` and `/metrics` are exempt
//! (probes and scrapers must not be throttled). A route adds a stricter class in one line:
//!
//! ```text
//! web::resource("/auth/login").wrap(from_fn(ratelimit::sensitive)).post(login)
//! ```
//!
//! Classes stack: a login counts against the caller's public bucket and the sensitive one;
//! the response reports the bucket with the fewest requests left.
//!
//! The principal is the [`PrincipalId`] request extension. For [`limit`] to see it, the
//! authentication middleware must run before it, i.e. be wrapped *outside* it (registered
//! after it in `Application::build`); a request without one is limited by client IP.
//!
//! A refused request gets 429 `RATE_LIMITED` with the core error body, `Retry-After` and
//! `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`; an allowed one gets the
//! `RateLimit-*` headers.
//!
//! The client IP is the TCP peer, unless the peer is one of `HAVEN_TRUSTED_PROXIES` (CIDRs):
//! then `X-Forwarded-For` is read from the right, skipping trusted proxies, and the first
//! address that is not one is the client. From any other peer the header is ignored, so a
//! client cannot pick its own bucket. An IPv6 client is counted per /64 ([`bucket_of`]).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, ResponseError, web};
use haven_core::ErrorCode;
use haven_resilience::{DistributedLimiter, KeyedLimiter, RateDecision, RateQuota};
use ipnet::IpNet;

use crate::error::ApiError;
use crate::idempotency::PrincipalId;

/// The inbound webhook route: limited per source by [`per_source`] instead of per client IP
/// (a partner's deliveries come from few addresses and must not share the public bucket).
pub const WEBHOOK_ROUTE: &str = "/api/v1/webhooks/{source}";

/// Paths never limited: liveness, readiness and the metrics scrape.
pub const EXEMPT_PATHS: [&str; 3] = ["/health", "/ready", "/metrics"];

/// How long a Redis decision may take before the local limiter decides instead.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// Local fallback buckets kept before idle ones are evicted.
const LOCAL_KEYS_SOFT_CAP: usize = 10_000;

/// The rate-limit settings (`HAVEN_RATE_LIMIT_*`, `HAVEN_TRUSTED_PROXIES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests per minute per client IP on public routes (default 10).
    pub public_per_min: NonZeroU32,
    /// Requests per minute per principal on authenticated routes (default 100).
    pub authenticated_per_min: NonZeroU32,
    /// Requests per minute on login and API-key creation (default 5).
    pub sensitive_per_min: NonZeroU32,
    /// Requests per minute per inbound webhook source (default 600).
    pub webhook_per_min: NonZeroU32,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Prefix of the Redis keys holding the buckets.
    pub key_prefix: String,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            public_per_min: NonZeroU32::MIN.saturating_add(9),
            authenticated_per_min: NonZeroU32::MIN.saturating_add(99),
            sensitive_per_min: NonZeroU32::MIN.saturating_add(4),
            webhook_per_min: NonZeroU32::MIN.saturating_add(599),
            trusted_proxies: Vec::new(),
            key_prefix: "haven:ratelimit:".into(),
        }
    }
}

/// Parses `HAVEN_TRUSTED_PROXIES`: comma-separated CIDRs or single addresses.
pub fn parse_trusted_proxies(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is neither a CIDR nor an IP address"))
        })
        .collect()
}

/// Which bucket a request is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// Unauthenticated requests, per client IP.
    Public,
    /// Authenticated requests, per principal.
    Authenticated,
    /// Login and API-key creation, per principal or client IP.
    Sensitive,
    /// Inbound webhooks, per configured source (unknown sources per client IP).
    Webhook,
}

impl RateClass {
    /// The name used in Redis keys and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Authenticated => "authenticated",
            Self::Sensitive => "sensitive",
            Self::Webhook => "webhook",
        }
    }
}

/// Resolves client addresses through the trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trust `X-Forwarded-For` from peers in `nets`.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request from `peer` carrying the `X-Forwarded-For` values
    /// `forwarded_for` (in header order).
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // The proxy that appended garbage is the last address we can vouch for.
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        client
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// The address a per-IP bucket is keyed on: an IPv4 address, or the /64 network of an IPv6
/// one (a single host usually holds a whole /64 and could otherwise rotate through it).
pub fn bucket_of(ip: IpAddr) -> IpNet {
    let ip = canonical(ip);
    let prefix = if ip.is_ipv4() { 32 } else { 64 };
    IpNet::new(ip, prefix).map_or_else(|_| IpNet::from(ip), |net| net.trunc())
}

/// The client address of `req` (see the module docs); `None` when the peer is unknown.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded_for = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok());
    Some(match req.app_data::<web::Data<RateLimits>>() {
        Some(limits) => limits.proxies.client_ip(peer, forwarded_for),
        None => canonical(peer),
    })
}

#[derive(Debug)]
struct ClassLimiter {
    shared: DistributedLimiter,
    local: KeyedLimiter<String>,
}

impl ClassLimiter {
    async fn check(&self, class: RateClass, key: String) -> RateDecision {
        match self.shared.check(&key).await {
            Ok(decision) => decision,
            Err(error) => {
                tracing::warn!(%error, class = class.as_str(), "rate limit store unavailable; limiting per replica");
                if self.local.len() > LOCAL_KEYS_SOFT_CAP {
                    self.local.evict_idle();
                }
                self.local.check(&key)
            }
        }
    }
}

/// The limiters of every class (put it in the app data).
#[derive(Debug, Clone)]
pub struct RateLimits {
    proxies: TrustedProxies,
    public: Arc<ClassLimiter>,
    authenticated: Arc<ClassLimiter>,
    sensitive: Arc<ClassLimiter>,
    webhook: Arc<ClassLimiter>,
}

impl RateLimits {
    /// Limiters for `config`, sharing buckets through `redis`.
    pub fn new(config: &RateLimitConfig, redis: deadpool_redis::Pool) -> anyhow::Result<Self> {
        let class = |class: RateClass, per_min: NonZeroU32| -> anyhow::Result<Arc<ClassLimiter>> {
            let quota = RateQuota::new(per_min, Duration::from_secs(60))?;
            Ok(Arc::new(ClassLimiter {
                shared: DistributedLimiter::new(
                    redis.clone(),
                    format!("{}{}:", config.key_prefix, class.as_str()),
                    quota,
                    REDIS_TIMEOUT,
                )?,
                local: KeyedLimiter::new(quota)?,
            }))
        };
        Ok(Self {
            proxies: TrustedProxies::new(config.trusted_proxies.clone()),
            public: class(RateClass::Public, config.public_per_min)?,
            authenticated: class(RateClass::Authenticated, config.authenticated_per_min)?,
            sensitive: class(RateClass::Sensitive, config.sensitive_per_min)?,
            webhook: class(RateClass::Webhook, config.webhook_per_min)?,
        })
    }

    fn limiter(&self, class: RateClass) -> &ClassLimiter {
        match class {
            RateClass::Public => &self.public,
            RateClass::Authenticated => &self.authenticated,
            RateClass::Sensitive => &self.sensitive,
            RateClass::Webhook => &self.webhook,
        }
    }
}

/// The default limit for every route: per principal when the request has one, else per
/// client IP. Exempts [`EXEMPT_PATHS`].
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if EXEMPT_PATHS.contains(&req.path()) || req.match_pattern().as_deref() == Some(WEBHOOK_ROUTE) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let class = if req.extensions().contains::<PrincipalId>() {
        RateClass::Authenticated
    } else {
        RateClass::Public
    };
    enforce(class, req, next).await
}

/// Login and API-key creation: 5/min per principal, or per client IP without one.
pub async fn sensitive(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    enforce(RateClass::Sensitive, req, next).await
}

/// Inbound webhooks: 600/min per configured source; a request naming an unknown source is
/// counted per client IP (so made-up names cannot mint fresh buckets).
pub async fn per_source(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    enforce(RateClass::Webhook, req, next).await
}

async fn enforce(
    class: RateClass,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(limits) = req.app_data::<web::Data<RateLimits>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let principal = req.extensions().get::<PrincipalId>().cloned();
    let source = (class == RateClass::Webhook)
        .then(|| req.match_info().get("source").map(str::to_owned))
        .flatten()
        .filter(|source| {
            req.app_data::<web::Data<crate::state::AppState>>()
                .is_some_and(|state| state.config.webhook_sources.contains(source))
        });
    let key = match (principal, source) {
        (_, Some(source)) => format!("source:{source}"),
        (Some(PrincipalId(id)), None) if class != RateClass::Public => format!("principal:{id}"),
        (_, None) => match client_ip(req.request()) {
            Some(ip) => format!("ip:{}", bucket_of(ip)),
            None => "ip:unknown".to_owned(),
        },
    };
    let decision = limits.limiter(class).check(class, key).await;
    if !decision.allowed {
        crate::metrics::rate_limited(class);
        let mut refusal = ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "the {} limit of {} requests per minute is used up",
                class.as_str(),
                decision.limit
            ),
        )
        .error_response();
        merge_headers(refusal.headers_mut(), &decision);
        return Ok(req.into_response(refusal));
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    merge_headers(response.headers_mut(), &decision);
    Ok(response)
}

/// Sets the `RateLimit-*` (and `Retry-After`) headers of `decision` unless the response
/// already reports a bucket with fewer requests left (an inner, stricter class).
fn merge_headers(headers: &mut HeaderMap, decision: &RateDecision) {
    let inner_remaining = headers
        .get("ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    if inner_remaining.is_some_and(|r| r <= decision.remaining) {
        return;
    }
    for (name, value) in decision.headers() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.to_ascii_lowercase()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        let proxies = TrustedProxies::new(parse_trusted_proxies("10.0.0.0/8").unwrap());
        assert_eq!(
            proxies.client_ip(ip("203.0.113.9"), ["198.51.100.1"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_through_trusted_hops() {
        let proxies = TrustedProxies::new(parse_trusted_proxies("10.0.0.0/8, 192.0.2.7").unwrap());
        // The client forged the leftmost entry; the trusted proxies appended the rest.
        assert_eq!(
            proxies.client_ip(ip("10.1.2.3"), ["1.1.1.1, 198.51.100.4", "192.0.2.7"]),
            ip("198.51.100.4")
        );
        assert_eq!(proxies.client_ip(ip("10.1.2.3"), []), ip("10.1.2.3"));
        assert_eq!(
            proxies.client_ip(ip("10.1.2.3"), ["garbage, 10.9.9.9"]),
            ip("10.9.9.9")
        );
        assert_eq!(
            proxies.client_ip(ip("::ffff:10.1.2.3"), ["198.51.100.4:5555"]),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        assert_eq!(
            bucket_of(ip("2001:db8:1:2:aaaa::1")),
            bucket_of(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            bucket_of(ip("2001:db8:1:2::1")),
            bucket_of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(bucket_of(ip("192.0.2.1")).to_string(), "192.0.2.1/32");
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_addresses() {
        assert_eq!(parse_trusted_proxies(" ").unwrap(), Vec::<IpNet>::new());
        assert_eq!(parse_trusted_proxies("10.0.0.0/8,::1").unwrap().len(), 2);
        assert!(parse_trusted_proxies("10.0.0.0/33").is_err());
    }

    #[test]
    fn the_stricter_bucket_is_reported() {
        let decision = |remaining| RateDecision {
            allowed: true,
            limit: 10,
            remaining,
            reset: Duration::from_secs(6),
            retry_after: None,
        };
        let mut headers = HeaderMap::new();
        merge_headers(&mut headers, &decision(2));
        merge_headers(&mut headers, &decision(7));
        assert_eq!(headers.get("ratelimit-remaining").unwrap(), "2");
        merge_headers(&mut headers, &decision(1));
        assert_eq!(headers.get("ratelimit-remaining").unwrap(), "1");
    }
}
