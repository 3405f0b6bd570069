//! The api's configuration: the only place it reads the environment.

use std::net::SocketAddr;

use haven_service::config::{CommonConfig, ConfigError, Environment, load_with_common};
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
}

#[derive(Debug, Deserialize)]
struct Own {
    api_addr: String,
    body_limit: usize,
    request_timeout_secs: u64,
    cors_origins: String,
}

#[derive(Debug, Serialize)]
struct Defaults {
    api_addr: &'static str,
    body_limit: usize,
    request_timeout_secs: u64,
    cors_origins: &'static str,
}

const DEFAULTS: Defaults = Defaults {
    api_addr: "127.0.0.1:8080",
    body_limit: 1024 * 1024,
    request_timeout_secs: 30,
    cors_origins: "",
};

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
        Ok(Self {
            common,
            addr,
            body_limit: own.body_limit,
            request_timeout_secs: own.request_timeout_secs,
            cors_origins,
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(addr: &str, cors: &str) -> Own {
        Own {
            api_addr: addr.into(),
            body_limit: 1024,
            request_timeout_secs: 30,
            cors_origins: cors.into(),
        }
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
}
