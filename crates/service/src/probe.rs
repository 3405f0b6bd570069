//! Readiness checks of the dependencies: [`check`] times any [`Probe`] (the Postgres pool
//! of `haven-db` is one), [`redis`] the Redis pool.

use std::time::{Duration, Instant};

pub use haven_core::{Probe, ProbeError};
use serde::Serialize;

/// The result of checking one dependency.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    /// `up` or `down`.
    pub status: &'static str,
    /// Round-trip time of the check in milliseconds.
    pub latency_ms: f64,
    /// Why it is down (no secrets: the cause's kind only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Check {
    /// Whether the dependency answered.
    pub fn is_up(&self) -> bool {
        self.status == "up"
    }

    fn from_result<E: std::fmt::Display>(started: Instant, result: Result<(), E>) -> Self {
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(()) => Check {
                status: "up",
                latency_ms,
                error: None,
            },
            Err(e) => Check {
                status: "down",
                latency_ms,
                error: Some(haven_core_redact(&e.to_string())),
            },
        }
    }
}

fn haven_core_redact(text: &str) -> String {
    // Probe errors may quote connection strings.
    text.split_whitespace()
        .map(|w| {
            if w.contains("://") {
                "[REDACTED_URL]"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One call of `probe`, within `timeout`.
pub async fn check(probe: &dyn Probe, timeout: Duration) -> Check {
    let started = Instant::now();
    let result = match tokio::time::timeout(timeout, probe.probe()).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    };
    Check::from_result(started, result)
}

/// The Postgres check: [`check`] of the pool (`haven_db::PgPool` runs `SELECT 1`).
pub async fn postgres(pool: &dyn Probe, timeout: Duration) -> Check {
    check(pool, timeout).await
}

struct RedisPing<'a>(&'a deadpool_redis::Pool);

#[async_trait::async_trait]
impl Probe for RedisPing<'_> {
    async fn probe(&self) -> Result<(), ProbeError> {
        let mut conn = self.0.get().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(())
    }
}

/// `PING` on the pool, within `timeout`.
pub async fn redis(pool: &deadpool_redis::Pool, timeout: Duration) -> Check {
    check(&RedisPing(pool), timeout).await
}

/// A Redis pool that connects lazily (so a process can start while Redis is down) and gives
/// up quickly when it cannot connect.
pub fn redis_pool(url: &str, max_size: usize) -> Result<deadpool_redis::Pool, String> {
    let mut cfg = deadpool_redis::Config::from_url(url);
    cfg.pool = Some(deadpool_redis::PoolConfig {
        max_size,
        timeouts: deadpool_redis::Timeouts {
            wait: Some(Duration::from_secs(2)),
            create: Some(Duration::from_secs(2)),
            recycle: Some(Duration::from_secs(2)),
        },
        ..Default::default()
    });
    cfg.create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .map_err(|e| e.to_string())
}
