//! Rate limits: GCRA buckets shared by every replica in Redis
//! ([`haven_resilience::DistributedLimiter`]), with an in-process
//! [`haven_resilience::KeyedLimiter`] per replica taking over while Redis is unreachable.
//!
//! A busy bucket is not a Redis call per request: each replica takes a batch of up to 64
//! requests (never more than a tenth of the bucket's burst) in one call and admits them
//! locally for up to 1 s ([`haven_resilience::LeaseConfig`]). Requests are charged before
//! they are admitted, so the cluster never passes the quota's rate; in a short window it may
//! pass at most `replicas × batch` more than the burst allows, and a bucket used through
//! several replicas may pass up to that many fewer. The default limits (10, 5 and 100 per
//! minute) batch at most 10 (authenticated), 1 (public, sensitive) and 60 (webhooks).
//!
//! Which buckets a route is charged to is declared in its row of
//! [`crate::access::ROUTE_ACCESS`] ([`Limit`]) and applied by the route's guard
//! ([`crate::auth::guard`]), after the router chose the route:
//!
//! | class | default | key | charged |
//! |---|---|---|---|
//! | [`RateClass::Public`] | 10/min (`HAVEN_RATE_LIMIT_PUBLIC_PER_MIN`) | client network | a public route with [`Limit::Standard`] or [`Limit::Sensitive`] |
//! | [`RateClass::Authenticated`] | 100/min (`HAVEN_RATE_LIMIT_AUTHENTICATED_PER_MIN`) | principal | a protected route, once its credential verified |
//! | [`RateClass::Sensitive`] | 5/min (`HAVEN_RATE_LIMIT_SENSITIVE_PER_MIN`) | principal, else client network | a [`Limit::Sensitive`] route (login, API-key creation), on top of the above |
//! | [`RateClass::Webhook`] | 600/min (`HAVEN_RATE_LIMIT_WEBHOOK_PER_MIN`) | configured webhook source | `POST /api/v1/webhooks/{source}`, only once the signature verified |
//!
//! Two more buckets per client network live in process only, so that what they guard costs
//! no I/O at all (each replica applies the public quota on its own):
//!
//! - **unverified credentials**: a request to a protected route without a credential, with
//!   one that fails its local checks (JWT signature and claims, API-key format and
//!   checksum), or with an API key this replica has not cached yet, is charged here
//!   **before** any database or Redis lookup; once it is used up such requests get 429
//!   without touching either;
//! - **webhook junk**: an inbound webhook for an unknown source, or whose signature does not
//!   verify, is charged here, never to the partner's bucket.
//!
//! `/health`, `/ready` and `/metrics` are exempt ([`Limit::Exempt`]): probes and scrapers
//! must not be throttled. Classes stack: a login counts against the caller's public bucket
//! and the sensitive one; the response reports the bucket with the fewest requests left.
//!
//! A refused request gets 429 `RATE_LIMITED` with the core error body, `Retry-After` and
//! `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`; an allowed one gets the
//! `RateLimit-*` headers.
//!
//! The client address is the TCP peer, unless the peer is one of `HAVEN_TRUSTED_PROXIES`
//! (CIDRs): then `X-Forwarded-For` is read from the right, skipping trusted proxies, and the
//! first address that is not one is the client. From any other peer the header is ignored,
//! so a client cannot pick its own bucket. Limits, lockout and fraud rules count a client
//! **network**: an IPv4 address, or the IPv6 prefix of `HAVEN_IPV6_PREFIX` bits (default
//! /56, what providers commonly delegate to one customer) ([`network`]).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use haven_core::ErrorCode;
use haven_resilience::{DistributedLimiter, KeyedLimiter, LeaseConfig, RateDecision, RateQuota};
use ipnet::IpNet;

pub use crate::access::Limit;
use crate::error::ApiError;

/// How long a Redis decision may take before the local limiter decides instead.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// Local buckets kept before idle ones are evicted.
const LOCAL_KEYS_SOFT_CAP: usize = 10_000;
/// The IPv6 prefix a client network spans unless `HAVEN_IPV6_PREFIX` says otherwise.
pub const DEFAULT_IPV6_PREFIX: u8 = 56;

/// The rate-limit settings (`HAVEN_RATE_LIMIT_*`, `HAVEN_TRUSTED_PROXIES`,
/// `HAVEN_IPV6_PREFIX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests per minute per client network on public routes (default 10).
    pub public_per_min: NonZeroU32,
    /// Requests per minute per principal on authenticated routes (default 100).
    pub authenticated_per_min: NonZeroU32,
    /// Requests per minute on login and API-key creation (default 5).
    pub sensitive_per_min: NonZeroU32,
    /// Verified inbound webhooks per minute per source (default 600).
    pub webhook_per_min: NonZeroU32,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The IPv6 prefix length one client network spans (default 56).
    pub ipv6_prefix: u8,
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
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
            key_prefix: "haven:ratelimit:".into(),
        }
    }
}

/// Parses a comma-separated list of CIDRs or single addresses (`HAVEN_TRUSTED_PROXIES`,
/// `HAVEN_METRICS_ALLOW`, `HAVEN_AUTH_TRUSTED_NETWORKS`).
pub fn parse_networks(raw: &str) -> Result<Vec<IpNet>, String> {
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

/// Parses `HAVEN_TRUSTED_PROXIES`: comma-separated CIDRs or single addresses.
pub fn parse_trusted_proxies(raw: &str) -> Result<Vec<IpNet>, String> {
    parse_networks(raw)
}

/// Whether `ip` (IPv4-mapped IPv6 read as IPv4) lies in one of `nets`.
pub fn in_networks(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    nets.iter().any(|net| net.contains(&ip))
}

/// Which bucket a request is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// Unauthenticated requests, per client network.
    Public,
    /// Authenticated requests, per principal.
    Authenticated,
    /// Login and API-key creation, per principal or client network.
    Sensitive,
    /// Verified inbound webhooks, per configured source.
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
        in_networks(&self.0, ip)
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

/// The client network of `ip`: the IPv4 address itself, or the IPv6 network of
/// `ipv6_prefix` bits around it (a single customer usually holds a whole /56 or /64 and
/// could otherwise rotate through it).
pub fn network(ip: IpAddr, ipv6_prefix: u8) -> IpNet {
    let ip = canonical(ip);
    let prefix = if ip.is_ipv4() {
        32
    } else {
        ipv6_prefix.min(128)
    };
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

/// The client network of `req` ([`client_ip`] grouped by [`network`]).
pub fn client_net(req: &HttpRequest) -> Option<IpNet> {
    let ip = client_ip(req)?;
    let prefix = req
        .app_data::<web::Data<RateLimits>>()
        .map_or(DEFAULT_IPV6_PREFIX, |l| l.ipv6_prefix);
    Some(network(ip, prefix))
}

/// The bucket key of a client network (`net:unknown` when the peer is unknown).
pub fn net_key(net: Option<IpNet>) -> String {
    net.map_or_else(|| "net:unknown".to_owned(), |net| format!("net:{net}"))
}

#[derive(Debug)]
struct ClassLimiter {
    shared: DistributedLimiter,
    local: KeyedLimiter<String>,
}

impl ClassLimiter {
    async fn check(&self, class: RateClass, key: &str) -> RateDecision {
        match self.shared.check(key).await {
            Ok(decision) => decision,
            Err(error) => {
                tracing::warn!(%error, class = class.as_str(), "rate limit store unavailable; limiting per replica");
                self.local.check_bounded(key)
            }
        }
    }
}

trait CheckBounded {
    fn check_bounded(&self, key: &str) -> RateDecision;
}

impl CheckBounded for KeyedLimiter<String> {
    fn check_bounded(&self, key: &str) -> RateDecision {
        if self.len() > LOCAL_KEYS_SOFT_CAP {
            self.evict_idle();
        }
        self.check(&key.to_owned())
    }
}

/// The limiters of every class (put it in the app data).
#[derive(Debug, Clone)]
pub struct RateLimits {
    proxies: TrustedProxies,
    ipv6_prefix: u8,
    public: Arc<ClassLimiter>,
    authenticated: Arc<ClassLimiter>,
    sensitive: Arc<ClassLimiter>,
    webhook: Arc<ClassLimiter>,
    unverified: Arc<KeyedLimiter<String>>,
    junk: Arc<KeyedLimiter<String>>,
}

impl RateLimits {
    /// Limiters for `config`, sharing buckets through `redis`.
    pub fn new(config: &RateLimitConfig, redis: deadpool_redis::Pool) -> anyhow::Result<Self> {
        let quota = |per_min: NonZeroU32| RateQuota::new(per_min, Duration::from_secs(60));
        let class = |class: RateClass, per_min: NonZeroU32| -> anyhow::Result<Arc<ClassLimiter>> {
            let quota = quota(per_min)?;
            Ok(Arc::new(ClassLimiter {
                shared: DistributedLimiter::new(
                    redis.clone(),
                    format!("{}{}:", config.key_prefix, class.as_str()),
                    quota,
                    REDIS_TIMEOUT,
                )?
                .with_leases(LeaseConfig::default())?,
                local: KeyedLimiter::new(quota)?,
            }))
        };
        Ok(Self {
            proxies: TrustedProxies::new(config.trusted_proxies.clone()),
            ipv6_prefix: config.ipv6_prefix,
            public: class(RateClass::Public, config.public_per_min)?,
            authenticated: class(RateClass::Authenticated, config.authenticated_per_min)?,
            sensitive: class(RateClass::Sensitive, config.sensitive_per_min)?,
            webhook: class(RateClass::Webhook, config.webhook_per_min)?,
            unverified: Arc::new(KeyedLimiter::new(quota(config.public_per_min)?)?),
            junk: Arc::new(KeyedLimiter::new(quota(config.public_per_min)?)?),
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

    /// Charges one request to `key`'s bucket of `class` (Redis, or this replica's own while
    /// Redis is unreachable).
    pub async fn check(&self, class: RateClass, key: &str) -> RateDecision {
        self.limiter(class).check(class, key).await
    }

    /// Charges `charges` in order and stops at the first refusal: the decisions of every
    /// bucket charged, or the 429 to answer.
    pub async fn check_all(
        &self,
        charges: &[(RateClass, String)],
    ) -> Result<Vec<RateDecision>, HttpResponse> {
        let mut decisions = Vec::with_capacity(charges.len());
        for (class, key) in charges {
            let decision = self.check(*class, key).await;
            if !decision.allowed {
                return Err(refusal(*class, &decision));
            }
            decisions.push(decision);
        }
        Ok(decisions)
    }

    /// Charges a request whose credential is not verified yet to its network's in-process
    /// bucket (no I/O).
    pub fn check_unverified(&self, net: Option<IpNet>) -> RateDecision {
        self.unverified.check_bounded(&net_key(net))
    }

    /// Charges an unverified inbound webhook to its network's in-process junk bucket.
    pub fn check_junk(&self, net: Option<IpNet>) -> RateDecision {
        self.junk.check_bounded(&net_key(net))
    }

    /// The IPv6 prefix length of a client network.
    pub fn ipv6_prefix(&self) -> u8 {
        self.ipv6_prefix
    }
}

/// The 429 answer of a refused `class` decision, with its headers.
pub fn refusal(class: RateClass, decision: &RateDecision) -> HttpResponse {
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
    merge_headers(refusal.headers_mut(), decision);
    refusal
}

/// Sets the `RateLimit-*` (and `Retry-After`) headers of `decision` unless the response
/// already reports a bucket with fewer requests left (a stricter class).
pub fn merge_headers(headers: &mut HeaderMap, decision: &RateDecision) {
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
    fn ipv6_clients_share_a_network_of_the_configured_prefix() {
        assert_eq!(
            network(ip("2001:db8:1:2:aaaa::1"), 56),
            network(ip("2001:db8:1:ff:bbbb::9"), 56)
        );
        assert_ne!(
            network(ip("2001:db8:1:2::1"), 56),
            network(ip("2001:db8:1:100::1"), 56)
        );
        assert_ne!(
            network(ip("2001:db8:1:2::1"), 64),
            network(ip("2001:db8:1:3::1"), 64)
        );
        assert_eq!(network(ip("192.0.2.1"), 56).to_string(), "192.0.2.1/32");
        assert_eq!(
            network(ip("::ffff:192.0.2.1"), 56).to_string(),
            "192.0.2.1/32"
        );
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
