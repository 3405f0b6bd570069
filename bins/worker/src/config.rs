//! The worker's configuration: the only place it reads the environment.

use std::net::SocketAddr;

use haven_service::config::{CommonConfig, ConfigError, Environment, LogFormat, load_with_common};
use serde::{Deserialize, Serialize};

/// Everything the worker needs to start.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// `HAVEN_WORKER_ADDR`: the health listener (default `127.0.0.1:8081`).
    pub addr: SocketAddr,
    /// `HAVEN_WORKER_TICK_SECS`: how often periodic jobs run (default 60).
    pub tick_secs: u64,
}

#[derive(Debug, Deserialize)]
struct Own {
    worker_addr: String,
    worker_tick_secs: u64,
}

#[derive(Debug, Serialize)]
struct Defaults {
    worker_addr: &'static str,
    worker_tick_secs: u64,
}

impl WorkerConfig {
    /// Loads and validates the configuration (defaults → `HAVEN_CONFIG` file → environment).
    pub fn load() -> Result<Self, ConfigError> {
        let (common, own) = load_with_common::<Own>(Defaults {
            worker_addr: "127.0.0.1:8081",
            worker_tick_secs: 60,
        })?;
        let addr = own.worker_addr.parse().map_err(|e| ConfigError::Invalid {
            var: "HAVEN_WORKER_ADDR",
            reason: format!("{:?} is not host:port ({e})", own.worker_addr),
        })?;
        if own.worker_tick_secs == 0 {
            return Err(ConfigError::Invalid {
                var: "HAVEN_WORKER_TICK_SECS",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            common,
            addr,
            tick_secs: own.worker_tick_secs,
        })
    }

    /// A configuration for tests with the given service URLs.
    pub fn for_tests(database_url: &str, redis_url: &str) -> Self {
        Self {
            common: CommonConfig {
                env: Environment::Test,
                database_url: database_url.to_owned().into(),
                redis_url: redis_url.to_owned().into(),
                eth_rpc_url: "http://127.0.0.1:8545".into(),
                log_format: LogFormat::Json,
                db_pool_size: 4,
            },
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tick_secs: 60,
        }
    }
}
