//! The api's configuration: the only place it reads the environment.

pub mod auth;
pub mod guardian;
pub mod treasury;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use haven_service::config::{CommonConfig, ConfigError, Environment, load_with_common};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Everything the api needs to start.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Shared settings (`HAVEN_ENV`, `DATABASE_URL`, `REDIS_URL`, …).
    pub common: CommonConfig,
    /// `HAVEN_API_ADDR` (default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// `HAVEN_BODY_LIMIT` in bytes (default 1 MiB).
    pub body_limit: usize,
    /// `HAVEN_REQUEST_TIMEOUT_SECS` (default 30).
    pub request_timeout_secs: u64,
    /// `HAVEN_CORS_ORIGINS`: comma-separated allowed origins (empty: no cross-origin access).
    pub cors_origins: Vec<String>,
    /// Rate limits and trusted proxies (`HAVEN_RATE_LIMIT_*`, `HAVEN_TRUSTED_PROXIES`).
    pub rate_limits: crate::ratelimit::RateLimitConfig,
    /// `HAVEN_TLS_CERT` and `HAVEN_TLS_KEY`: serve HTTPS with this certificate and key.
    pub tls: Option<crate::tls::TlsConfig>,
    /// `HAVEN_HTTP_REDIRECT_ADDR`: a plain-HTTP listener redirecting to HTTPS (needs TLS).
    pub http_redirect_addr: Option<SocketAddr>,
    /// `HAVEN_PUBLIC_HOST`: the host name (optionally `:port`) HTTP→HTTPS redirects point
    /// at; required with `HAVEN_HTTP_REDIRECT_ADDR` (the request's `Host` is never used).
    pub public_host: Option<String>,
    /// `HAVEN_METRICS_ALLOW`: client networks `/metrics` is served to (default loopback
    /// only: `127.0.0.0/8,::1`); everyone else gets 403.
    pub metrics_allow: Vec<ipnet::IpNet>,
    /// JWT keys, issuer and audience, the API-key pepper (`HAVEN_JWT_*`, `HAVEN_API_KEY_PEPPER`).
    pub auth: auth::AuthConfig,
    /// `HAVEN_WEBHOOK_SOURCES`: the inbound webhook sources (JSON; default none).
    pub webhook_sources: webhooks::WebhookSources,
    /// `HAVEN_WEBHOOK_ALLOW` and `HAVEN_WEBHOOK_ALLOW_HTTP` (the worker's delivery settings):
    /// the URLs an admin may give an outbound webhook endpoint (public `https` by default).
    pub webhook_destinations: haven_webhooks::DestinationPolicy,
    /// `HAVEN_REWARDS_RULES`: the tokenomics rules file (default: the shipped rules).
    pub rewards_rules: Option<std::path::PathBuf>,
    /// `HAVEN_TOKEN_ADDRESS`: the HAVEN token, for on-chain balances (none: not shown).
    pub token_address: Option<alloy::primitives::Address>,
    /// Fiat prices and redemption rules (`HAVEN_PRICE_*`, `HAVEN_REDEMPTION_*`).
    pub treasury: treasury::TreasuryConfig,
    /// Guardian vaults and their WebSocket (`HAVEN_VAULT_*`, `HAVEN_GUARDIAN_*`).
    pub guardian: guardian::GuardianConfig,
    /// `HAVEN_MASTER_KEYS` (with `HAVEN_MIN_DECRYPTION_VERSION`): custody's master keys. Only
    /// creating and rotating wallets over HTTP needs them; unset, those two routes answer
    /// 503 and the keys stay with `haven-admin custody` and the worker.
    pub custody_keys: Option<Arc<haven_custody::LocalKeyProvider>>,
}

#[derive(Debug, Deserialize)]
struct Own {
    #[serde(default)]
    master_keys: Option<SecretString>,
    #[serde(default)]
    min_decryption_version: Option<u32>,
    api_addr: String,
    redis_prefix: String,
    rewards_rules: String,
    token_address: String,
    body_limit: usize,
    request_timeout_secs: u64,
    cors_origins: String,
    webhook_sources: String,
    webhook_allow: String,
    webhook_allow_http: bool,
    #[serde(flatten)]
    hardening: HardeningOwn,
    #[serde(flatten)]
    auth: auth::AuthOwn,
    #[serde(flatten)]
    treasury: treasury::TreasuryOwn,
    #[serde(flatten)]
    guardian: guardian::GuardianOwn,
}

#[derive(Debug, Serialize)]
struct Defaults {
    master_keys: &'static str,
    min_decryption_version: Option<u32>,
    api_addr: &'static str,
    redis_prefix: &'static str,
    rewards_rules: &'static str,
    token_address: &'static str,
    body_limit: usize,
    request_timeout_secs: u64,
    cors_origins: &'static str,
    webhook_sources: &'static str,
    webhook_allow: &'static str,
    webhook_allow_http: bool,
    #[serde(flatten)]
    hardening: HardeningDefaults,
    #[serde(flatten)]
    auth: auth::AuthDefaults,
    #[serde(flatten)]
    treasury: treasury::TreasuryDefaults,
    #[serde(flatten)]
    guardian: guardian::GuardianDefaults,
}

/// Every default of the api, in one place (with the hardening and auth parts it flattens);
/// every key the api reads has one, so [`variables`] lists every setting.
const DEFAULTS: Defaults = Defaults {
    master_keys: "",
    min_decryption_version: None,
    api_addr: "127.0.0.1:8080",
    redis_prefix: "haven:",
    rewards_rules: "",
    token_address: "",
    body_limit: 1024 * 1024,
    request_timeout_secs: 30,
    cors_origins: "",
    webhook_sources: "",
    webhook_allow: "",
    webhook_allow_http: false,
    hardening: HARDENING_DEFAULTS,
    auth: auth::DEFAULTS,
    treasury: treasury::DEFAULTS,
    guardian: guardian::DEFAULTS,
};

/// Every environment variable the api reads, sorted.
pub fn variables() -> Vec<String> {
    let mut names = haven_service::config::common_variables();
    names.extend(haven_service::config::variables(&DEFAULTS));
    names.sort();
    names
}

/// Rate limits, trusted proxies and TLS.
#[derive(Debug, Deserialize)]
struct HardeningOwn {
    rate_limit_public_per_min: u32,
    rate_limit_authenticated_per_min: u32,
    rate_limit_sensitive_per_min: u32,
    rate_limit_webhook_per_min: u32,
    trusted_proxies: String,
    ipv6_prefix: u8,
    tls_cert: String,
    tls_key: String,
    http_redirect_addr: String,
    public_host: String,
    metrics_allow: String,
}

#[derive(Debug, Serialize)]
struct HardeningDefaults {
    rate_limit_public_per_min: u32,
    rate_limit_authenticated_per_min: u32,
    rate_limit_sensitive_per_min: u32,
    rate_limit_webhook_per_min: u32,
    trusted_proxies: &'static str,
    ipv6_prefix: u8,
    tls_cert: &'static str,
    tls_key: &'static str,
    http_redirect_addr: &'static str,
    public_host: &'static str,
    metrics_allow: &'static str,
}

const HARDENING_DEFAULTS: HardeningDefaults = HardeningDefaults {
    rate_limit_public_per_min: 10,
    rate_limit_authenticated_per_min: 100,
    rate_limit_sensitive_per_min: 5,
    rate_limit_webhook_per_min: 600,
    trusted_proxies: "",
    ipv6_prefix: crate::ratelimit::DEFAULT_IPV6_PREFIX,
    tls_cert: "",
    tls_key: "",
    http_redirect_addr: "",
    public_host: "",
    metrics_allow: "127.0.0.0/8,::1",
};

/// The validated hardening settings.
#[derive(Debug)]
struct Hardening {
    rate_limits: crate::ratelimit::RateLimitConfig,
    tls: Option<crate::tls::TlsConfig>,
    http_redirect_addr: Option<SocketAddr>,
    public_host: Option<String>,
    metrics_allow: Vec<ipnet::IpNet>,
}

fn hardening_from(own: &HardeningOwn) -> Result<Hardening, ConfigError> {
    let per_min = |var: &'static str, value: u32| {
        std::num::NonZeroU32::new(value).ok_or(ConfigError::Invalid {
            var,
            reason: "must be at least 1 request per minute".into(),
        })
    };
    let rate_limits = crate::ratelimit::RateLimitConfig {
        public_per_min: per_min(
            "HAVEN_RATE_LIMIT_PUBLIC_PER_MIN",
            own.rate_limit_public_per_min,
        )?,
        authenticated_per_min: per_min(
            "HAVEN_RATE_LIMIT_AUTHENTICATED_PER_MIN",
            own.rate_limit_authenticated_per_min,
        )?,
        sensitive_per_min: per_min(
            "HAVEN_RATE_LIMIT_SENSITIVE_PER_MIN",
            own.rate_limit_sensitive_per_min,
        )?,
        webhook_per_min: per_min(
            "HAVEN_RATE_LIMIT_WEBHOOK_PER_MIN",
            own.rate_limit_webhook_per_min,
        )?,
        trusted_proxies: crate::ratelimit::parse_trusted_proxies(&own.trusted_proxies).map_err(
            |reason| ConfigError::Invalid {
                var: "HAVEN_TRUSTED_PROXIES",
                reason,
            },
        )?,
        ipv6_prefix: match own.ipv6_prefix {
            prefix @ 32..=128 => prefix,
            other => {
                return Err(ConfigError::Invalid {
                    var: "HAVEN_IPV6_PREFIX",
                    reason: format!("{other} is not an IPv6 prefix length between 32 and 128"),
                });
            }
        },
        ..crate::ratelimit::RateLimitConfig::default()
    };
    let metrics_allow = crate::ratelimit::parse_networks(&own.metrics_allow).map_err(|reason| {
        ConfigError::Invalid {
            var: "HAVEN_METRICS_ALLOW",
            reason,
        }
    })?;
    let tls = match (own.tls_cert.trim(), own.tls_key.trim()) {
        ("", "") => None,
        ("", _) | (_, "") => {
            return Err(ConfigError::Invalid {
                var: "HAVEN_TLS_CERT",
                reason: "HAVEN_TLS_CERT and HAVEN_TLS_KEY must be set together".into(),
            });
        }
        (cert, key) => Some(crate::tls::TlsConfig {
            cert: cert.into(),
            key: key.into(),
        }),
    };
    let http_redirect_addr = match own.http_redirect_addr.trim() {
        "" => None,
        raw => {
            if tls.is_none() {
                return Err(ConfigError::Invalid {
                    var: "HAVEN_HTTP_REDIRECT_ADDR",
                    reason: "redirecting to HTTPS needs HAVEN_TLS_CERT and HAVEN_TLS_KEY".into(),
                });
            }
            Some(raw.parse().map_err(|e| ConfigError::Invalid {
                var: "HAVEN_HTTP_REDIRECT_ADDR",
                reason: format!("{raw:?} is not host:port ({e})"),
            })?)
        }
    };
    let public_host = match own.public_host.trim() {
        "" if http_redirect_addr.is_some() => {
            return Err(ConfigError::Invalid {
                var: "HAVEN_PUBLIC_HOST",
                reason: "required with HAVEN_HTTP_REDIRECT_ADDR: redirects go to this host, never to the request's Host header".into(),
            });
        }
        "" => None,
        raw => Some(
            crate::tls::check_public_host(raw).map_err(|reason| ConfigError::Invalid {
                var: "HAVEN_PUBLIC_HOST",
                reason,
            })?,
        ),
    };
    Ok(Hardening {
        rate_limits,
        tls,
        http_redirect_addr,
        public_host,
        metrics_allow,
    })
}

impl ApiConfig {
    /// Loads and validates the configuration (defaults → `HAVEN_CONFIG` file → environment).
    pub fn load() -> Result<Self, ConfigError> {
        let (common, own) = load_with_common::<Own>(DEFAULTS)?;
        Self::from_parts(common, own)
    }

    fn from_parts(common: CommonConfig, own: Own) -> Result<Self, ConfigError> {
        let addr = own.api_addr.parse().map_err(|e| ConfigError::Invalid {
            var: "HAVEN_API_ADDR",
            reason: format!("{:?} is not host:port ({e})", own.api_addr),
        })?;
        if own.body_limit == 0 {
            return Err(ConfigError::Invalid {
                var: "HAVEN_BODY_LIMIT",
                reason: "must be at least 1 byte".into(),
            });
        }
        let cors_origins: Vec<String> = own
            .cors_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        if common.env == Environment::Production && cors_origins.iter().any(|o| o == "*") {
            return Err(ConfigError::Invalid {
                var: "HAVEN_CORS_ORIGINS",
                reason: "a wildcard origin is refused with HAVEN_ENV=production".into(),
            });
        }
        let mut hardening = hardening_from(&own.hardening)?;
        let mut auth = auth::auth_from(common.env, own.auth)?;
        let prefix = own.redis_prefix.trim();
        if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::Invalid {
                var: "HAVEN_REDIS_PREFIX",
                reason: "must be non-empty, without spaces or control characters".into(),
            });
        }
        auth.redis_prefix = prefix.to_owned();
        hardening.rate_limits.key_prefix = format!("{prefix}ratelimit:");
        let listeners: Vec<SocketAddr> = std::iter::once(addr)
            .chain(hardening.http_redirect_addr)
            .collect();
        auth::refuse_dev_secrets_off_loopback(&auth, &listeners)?;
        let webhook_sources = webhooks::WebhookSources::parse(&own.webhook_sources)?;
        if own.webhook_allow_http && common.env == Environment::Production {
            return Err(ConfigError::Invalid {
                var: "HAVEN_WEBHOOK_ALLOW_HTTP",
                reason: "plain http webhooks are not allowed in production".into(),
            });
        }
        let webhook_destinations = haven_webhooks::DestinationPolicy::from_settings(
            &own.webhook_allow,
            own.webhook_allow_http,
        )
        .map_err(|reason| ConfigError::Invalid {
            var: "HAVEN_WEBHOOK_ALLOW",
            reason,
        })?;
        let rewards_rules = match own.rewards_rules.trim() {
            "" => None,
            path => {
                let path = std::path::PathBuf::from(path);
                haven_rewards::Rules::from_path(&path).map_err(|e| ConfigError::Invalid {
                    var: "HAVEN_REWARDS_RULES",
                    reason: e.to_string(),
                })?;
                Some(path)
            }
        };
        let token_address = match own.token_address.trim() {
            "" => None,
            raw => Some(raw.parse().map_err(|e| ConfigError::Invalid {
                var: "HAVEN_TOKEN_ADDRESS",
                reason: format!("{raw:?} is not an address ({e})"),
            })?),
        };
        Ok(Self {
            common,
            addr,
            body_limit: own.body_limit,
            request_timeout_secs: own.request_timeout_secs,
            cors_origins,
            rate_limits: hardening.rate_limits,
            tls: hardening.tls,
            http_redirect_addr: hardening.http_redirect_addr,
            public_host: hardening.public_host,
            metrics_allow: hardening.metrics_allow,
            auth,
            webhook_sources,
            webhook_destinations,
            rewards_rules,
            token_address,
            treasury: treasury::treasury_from(own.treasury)?,
            guardian: guardian::guardian_from(own.guardian)?,
            custody_keys: custody_keys(own.master_keys, own.min_decryption_version)?,
        })
    }

    /// A configuration for tests: development defaults with the given service URLs.
    pub fn for_tests(database_url: &str, redis_url: &str) -> Self {
        Self {
            common: CommonConfig {
                env: Environment::Test,
                database_url: database_url.to_owned().into(),
                redis_url: redis_url.to_owned().into(),
                eth_rpc_url: "http://127.0.0.1:8545".into(),
                log_format: haven_service::config::LogFormat::Json,
                db_pool_size: 4,
            },
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            body_limit: DEFAULTS.body_limit,
            request_timeout_secs: DEFAULTS.request_timeout_secs,
            cors_origins: Vec::new(),
            // Generous limits and a private key prefix, so tests never share or exhaust a
            // bucket unless they lower the limits themselves.
            rate_limits: crate::ratelimit::RateLimitConfig {
                public_per_min: std::num::NonZeroU32::MIN.saturating_add(9_999),
                authenticated_per_min: std::num::NonZeroU32::MIN.saturating_add(9_999),
                sensitive_per_min: std::num::NonZeroU32::MIN.saturating_add(9_999),
                webhook_per_min: std::num::NonZeroU32::MIN.saturating_add(9_999),
                trusted_proxies: Vec::new(),
                ipv6_prefix: crate::ratelimit::DEFAULT_IPV6_PREFIX,
                key_prefix: format!("haven:test:{}:ratelimit:", uuid::Uuid::new_v4()),
            },
            tls: None,
            http_redirect_addr: None,
            public_host: None,
            metrics_allow: crate::ratelimit::parse_networks(HARDENING_DEFAULTS.metrics_allow)
                .unwrap_or_default(),
            // Lenient lockout: tests that send bad credentials on purpose must not ban
            // 127.0.0.1; the lockout tests set their own policy.
            auth: auth::AuthConfig {
                lockout: haven_resilience::LockoutPolicy {
                    free_failures: 10_000,
                    ban_after: 20_000,
                    ..haven_resilience::LockoutPolicy::default()
                },
                redis_prefix: format!("haven:test:{}:", uuid::Uuid::new_v4()),
                ..auth::AuthConfig::development()
            },
            webhook_sources: webhooks::WebhookSources::default(),
            webhook_destinations: haven_webhooks::DestinationPolicy::strict(),
            rewards_rules: None,
            token_address: None,
            treasury: treasury::TreasuryConfig::default(),
            guardian: guardian::GuardianConfig::default(),
            custody_keys: None,
        }
    }
}

/// The master keys, parsed at start-up so a bad value stops the api naming its variable
/// (never its content).
fn custody_keys(
    keys: Option<SecretString>,
    min_decryption_version: Option<u32>,
) -> Result<Option<Arc<haven_custody::LocalKeyProvider>>, ConfigError> {
    use secrecy::ExposeSecret;
    let Some(keys) = keys.filter(|k| !k.expose_secret().trim().is_empty()) else {
        return Ok(None);
    };
    let invalid = |var: &'static str| {
        move |e: haven_custody::Error| ConfigError::Invalid {
            var,
            reason: e.to_string(),
        }
    };
    let provider = haven_custody::LocalKeyProvider::parse(keys.expose_secret())
        .map_err(invalid("HAVEN_MASTER_KEYS"))?;
    let provider = match min_decryption_version {
        Some(min) => provider
            .with_min_decryption_version(min)
            .map_err(invalid("HAVEN_MIN_DECRYPTION_VERSION"))?,
        None => provider,
    };
    Ok(Some(Arc::new(provider)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(addr: &str, cors: &str) -> Own {
        Own {
            master_keys: None,
            min_decryption_version: None,
            api_addr: addr.into(),
            redis_prefix: "haven:".into(),
            rewards_rules: String::new(),
            token_address: String::new(),
            body_limit: 1024,
            request_timeout_secs: 30,
            cors_origins: cors.into(),
            webhook_sources: String::new(),
            webhook_allow: String::new(),
            webhook_allow_http: false,
            hardening: hardening(""),
            auth: auth::dev_own(),
            treasury: treasury::TreasuryOwn::default(),
            guardian: guardian::GuardianOwn::default(),
        }
    }

    fn hardening(proxies: &str) -> HardeningOwn {
        HardeningOwn {
            rate_limit_public_per_min: 10,
            rate_limit_authenticated_per_min: 100,
            rate_limit_sensitive_per_min: 5,
            rate_limit_webhook_per_min: 600,
            trusted_proxies: proxies.into(),
            ipv6_prefix: 56,
            tls_cert: String::new(),
            tls_key: String::new(),
            http_redirect_addr: String::new(),
            public_host: String::new(),
            metrics_allow: "127.0.0.0/8".into(),
        }
    }

    #[test]
    fn hardening_settings_are_validated() {
        let h = hardening_from(&hardening("10.0.0.0/8")).unwrap();
        assert_eq!(h.rate_limits.public_per_min.get(), 10);
        assert_eq!(h.rate_limits.trusted_proxies.len(), 1);
        assert_eq!(h.rate_limits.ipv6_prefix, 56);
        assert_eq!((h.tls, h.http_redirect_addr), (None, None));

        let err = |h: HardeningOwn| hardening_from(&h).unwrap_err().to_string();
        assert!(err(hardening("10.0.0.0/99")).contains("HAVEN_TRUSTED_PROXIES"));
        let mut h = hardening("");
        h.tls_cert = "/c.pem".into();
        assert!(err(h).contains("HAVEN_TLS_CERT"));
        let mut h = hardening("");
        h.http_redirect_addr = "0.0.0.0:80".into();
        assert!(err(h).contains("HAVEN_HTTP_REDIRECT_ADDR"));
        let mut h = hardening("");
        h.rate_limit_sensitive_per_min = 0;
        assert!(err(h).contains("HAVEN_RATE_LIMIT_SENSITIVE_PER_MIN"));
        let mut h = hardening("");
        h.ipv6_prefix = 129;
        assert!(err(h).contains("HAVEN_IPV6_PREFIX"));
        let mut h = hardening("");
        h.metrics_allow = "internal".into();
        assert!(err(h).contains("HAVEN_METRICS_ALLOW"));
    }

    /// The redirect listener needs the public host it points at; it never trusts `Host`.
    #[test]
    fn redirects_need_the_public_host() {
        let mut h = hardening("");
        (h.tls_cert, h.tls_key) = ("/c.pem".into(), "/k.pem".into());
        h.http_redirect_addr = "127.0.0.1:8081".into();
        assert!(err_of(&h).contains("HAVEN_PUBLIC_HOST"));
        h.public_host = "api.example.com/evil".into();
        assert!(err_of(&h).contains("HAVEN_PUBLIC_HOST"));
        h.public_host = "api.example.com".into();
        let ok = hardening_from(&h).unwrap();
        assert_eq!(ok.public_host.as_deref(), Some("api.example.com"));
    }

    fn err_of(h: &HardeningOwn) -> String {
        hardening_from(h)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    /// Without `HAVEN_ENV`, the development JWT secret and pepper serve loopback only: on
    /// any other address the api refuses to start, naming the variable.
    #[test]
    fn development_secrets_never_serve_a_public_listener() {
        let mut common = ApiConfig::for_tests("postgres://a@b/c", "redis://x").common;
        common.env = Environment::Development;
        let mut dev = own("0.0.0.0:8080", "");
        dev.auth = auth::lockout_defaults_with_kid();
        let err = ApiConfig::from_parts(common.clone(), dev)
            .unwrap_err()
            .to_string();
        assert!(err.contains("HAVEN_JWT_SECRET"), "{err}");
        let mut dev = own("127.0.0.1:8080", "");
        dev.auth = auth::lockout_defaults_with_kid();
        assert!(ApiConfig::from_parts(common.clone(), dev).is_ok());
        let mut dev = own("[::1]:8080", "");
        dev.auth = auth::lockout_defaults_with_kid();
        assert!(ApiConfig::from_parts(common.clone(), dev).is_ok());
        // With real secrets any address serves.
        assert!(ApiConfig::from_parts(common, own("0.0.0.0:8080", "")).is_ok());
    }

    #[test]
    fn production_refuses_wildcard_cors() {
        let mut common = ApiConfig::for_tests("postgres://a@b/c", "redis://x").common;
        common.env = Environment::Production;
        let err = ApiConfig::from_parts(common.clone(), own("127.0.0.1:1", "https://a.example, *"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("HAVEN_CORS_ORIGINS"), "{err}");
        let ok = ApiConfig::from_parts(
            common,
            own("127.0.0.1:1", "https://a.example, https://b.example"),
        )
        .unwrap();
        assert_eq!(
            ok.cors_origins,
            vec!["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn a_bad_address_names_the_variable() {
        let common = ApiConfig::for_tests("postgres://a@b/c", "redis://x").common;
        let err = ApiConfig::from_parts(common, own("localhost", ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("HAVEN_API_ADDR"), "{err}");
    }

    /// Bad master keys stop the api naming the variable, never echoing the value; good
    /// ones are parsed once; blank means none.
    #[test]
    fn master_keys_are_checked_at_start_up_without_echoing_them() {
        let leaky = "v1:c2VjcmV0LXRoYXQtbXVzdC1ub3QtbGVhaw";
        let err = custody_keys(Some(leaky.to_owned().into()), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("HAVEN_MASTER_KEYS"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
        let good = haven_custody::LocalKeyProvider::generate_entry(1).unwrap();
        let err = custody_keys(Some(good.to_string().into()), Some(2))
            .unwrap_err()
            .to_string();
        assert!(err.contains("HAVEN_MIN_DECRYPTION_VERSION"), "{err}");
        let keys = custody_keys(Some(good.to_string().into()), None)
            .unwrap()
            .unwrap();
        assert!(
            !format!("{keys:?}").contains(&good[3..]),
            "Debug shows versions only"
        );
        assert!(
            custody_keys(Some(" ".to_owned().into()), None)
                .unwrap()
                .is_none()
        );
        assert!(custody_keys(None, None).unwrap().is_none());
    }
}
