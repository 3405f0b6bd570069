use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

/// Liveness: the process answers. Touches no dependency; lists the circuit breakers' states
/// (a breaker's state is informative here, never a reason to fail liveness).
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses(
        (status = 200, description = "Alive", body = crate::openapi::Health),
        (status = 500, description = "Server error", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok", "breakers": state.breakers.statuses()}))
}

/// Readiness: Postgres and Redis answer, each with its latency; 503 naming what is down.
/// The node (`ETH_RPC_URL`) is checked too — chain id, latest block and its age, through
/// the shared `eth_rpc` breaker — and reported under `checks.rpc` (and `degraded` when it
/// is not up), but never makes the api unready: only balance and supply reads need it.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = crate::openapi::Ready),
        (status = 503, description = "A dependency is down", body = crate::openapi::Ready),
        (status = 500, description = "Server error", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let timeout = Duration::from_secs(2);
    let (postgres, redis, rpc) = tokio::join!(
        haven_service::probe::postgres(&state.db, timeout),
        haven_service::probe::redis(&state.redis, timeout),
        node(&state),
    );
    let ready = postgres.is_up() && redis.is_up();
    let down: Vec<&str> = [("postgres", &postgres), ("redis", &redis)]
        .iter()
        .filter(|(_, c)| !c.is_up())
        .map(|(n, _)| *n)
        .collect();
    let degraded: Vec<&str> = match &rpc {
        Some(rpc) if rpc.status != "up" => vec!["rpc"],
        _ => Vec::new(),
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "down": down,
        "degraded": degraded,
        "checks": {"postgres": postgres, "redis": redis, "rpc": rpc},
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The node check, or `None` when the breaker cannot be made (never in practice).
async fn node(state: &AppState) -> Option<crate::chain::NodeCheck> {
    let breaker = state
        .breakers
        .get_or_create(crate::chain::NODE_BREAKER)
        .ok()?;
    let provider = state.node.as_ref()?;
    Some(crate::chain::check_node(provider, breaker.as_ref()).await)
}
