//! What every handler can reach.

use std::sync::Arc;

use crate::config::ApiConfig;

/// Shared, cheaply cloned application state.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The configuration the server started with.
    pub config: Arc<ApiConfig>,
    /// Postgres.
    pub db: haven_db::PgPool,
    /// Redis.
    pub redis: deadpool_redis::Pool,
    /// Where 5xx errors are recorded.
    pub error_logs: haven_db::ErrorLogRepo,
    /// The circuit breakers of this process, by name; `/health` lists their states and
    /// `/metrics` exports them.
    pub breakers: Arc<haven_resilience::BreakerRegistry>,
    /// The node at `ETH_RPC_URL` (built once; no connection until `/ready` asks), `None`
    /// when the URL does not parse.
    pub node: Option<alloy::providers::DynProvider>,
    /// The inbox of verified inbound webhooks: one per process, so that concurrent
    /// deliveries share its group commit.
    pub inbox: haven_db::PgInbox,
}
