//! Circuit breakers for operators: the states of the breakers this process registered, and
//! the operator transitions of `haven_resilience::Breaker` — reset (back to CLOSED, counts
//! cleared), force open (every call refused until a reset) and disable (every call passes,
//! nothing recorded).
//!
//! A breaker is in memory (per process) or shared through Redis (every replica sees the
//! transition); the api answers for its own registry. A breaker's state is not in Postgres,
//! so its audit row is written after the transition succeeded: force-open and disable are
//! HIGH, reset MEDIUM.

use actix_web::{HttpRequest, HttpResponse, web};
use haven_core::audit::Severity;
use haven_core::{ErrorCode, Problem};
use haven_resilience::BreakerStatus;
use serde::Serialize;
use serde_json::json;

use crate::auth::{AuthContext, Authenticated};
use crate::error::ApiError;
use crate::routes::admin::{applied, event};
use crate::state::AppState;

/// The breakers of the answering process.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BreakerListView {
    /// Every breaker's status, by name: `state` is `CLOSED`, `OPEN`, `HALF_OPEN`,
    /// `FORCED_OPEN` or `DISABLED`; `degraded` when a shared breaker lost Redis.
    #[schema(value_type = Vec<Object>)]
    pub breakers: Vec<BreakerStatus>,
}

/// One breaker after an operator transition.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BreakerView {
    /// Its status now.
    #[schema(value_type = Object)]
    pub breaker: BreakerStatus,
    /// Its state before the transition.
    pub previous_state: String,
}

/// Every circuit breaker of the answering api process.
#[utoipa::path(
    get,
    path = "/api/v1/admin/health/circuit-breakers",
    tag = "admin",
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The breakers", body = BreakerListView)),
)]
pub async fn list(_: Authenticated, state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(BreakerListView {
        breakers: state.breakers.statuses(),
    })
}

/// An operator transition of a breaker.
#[derive(Debug, Clone, Copy)]
enum Transition {
    Reset,
    ForceOpen,
    Disable,
}

impl Transition {
    fn action(self) -> &'static str {
        match self {
            Transition::Reset => "breaker.reset",
            Transition::ForceOpen => "breaker.force_open",
            Transition::Disable => "breaker.disable",
        }
    }

    fn severity(self) -> Severity {
        match self {
            Transition::Reset => Severity::Medium,
            Transition::ForceOpen | Transition::Disable => Severity::High,
        }
    }
}

async fn apply(
    req: HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    ctx: web::Data<AuthContext>,
    name: String,
    transition: Transition,
) -> Result<HttpResponse, ApiError> {
    let breaker = state.breakers.get(&name).ok_or_else(|| {
        ApiError(
            Problem::new(ErrorCode::NotFound, format!("no circuit breaker {name:?}"))
                .with_detail("field", "name"),
        )
    })?;
    let previous = breaker.status().state;
    let result = match transition {
        Transition::Reset => breaker.reset().await,
        Transition::ForceOpen => breaker.force_open().await,
        Transition::Disable => breaker.disable().await,
    };
    result.map_err(|e| ApiError(Problem::new(e.code(), e.to_string()).with_source(e)))?;
    let status = breaker.status();
    let audit = event(&req, &principal, transition.action(), transition.severity())
        .target(format!("breaker:{name}"))
        .details(applied(json!({
            "from": previous.as_str(),
            "to": status.state.as_str(),
        })));
    haven_core::audit::AuditSink::append(&ctx.audit, audit)
        .await
        .map_err(|e| {
            ApiError(
                Problem::new(ErrorCode::ServiceUnavailable, "audit log unavailable").with_source(e),
            )
        })?;
    Ok(HttpResponse::Ok().json(BreakerView {
        breaker: status,
        previous_state: previous.as_str().to_owned(),
    }))
}

/// Resets a breaker to CLOSED with its counts cleared (also ends FORCED_OPEN and DISABLED).
#[utoipa::path(
    post,
    path = "/api/v1/admin/health/circuit-breakers/{name}/reset",
    tag = "admin",
    params(("name" = String, Path, description = "The breaker's name")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Reset", body = BreakerView),
        (status = 404, description = "No breaker of that name in this process", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn reset(
    req: HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    ctx: web::Data<AuthContext>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    apply(
        req,
        principal,
        state,
        ctx,
        name.into_inner(),
        Transition::Reset,
    )
    .await
}

/// Forces a breaker open: every call is refused until a reset. Audited HIGH.
#[utoipa::path(
    post,
    path = "/api/v1/admin/health/circuit-breakers/{name}/force-open",
    tag = "admin",
    params(("name" = String, Path, description = "The breaker's name")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Forced open", body = BreakerView),
        (status = 404, description = "No breaker of that name in this process", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn force_open(
    req: HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    ctx: web::Data<AuthContext>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    apply(
        req,
        principal,
        state,
        ctx,
        name.into_inner(),
        Transition::ForceOpen,
    )
    .await
}

/// Disables a breaker: every call passes and nothing is recorded until a reset. Audited HIGH.
#[utoipa::path(
    post,
    path = "/api/v1/admin/health/circuit-breakers/{name}/disable",
    tag = "admin",
    params(("name" = String, Path, description = "The breaker's name")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Disabled", body = BreakerView),
        (status = 404, description = "No breaker of that name in this process", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn disable(
    req: HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    ctx: web::Data<AuthContext>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    apply(
        req,
        principal,
        state,
        ctx,
        name.into_inner(),
        Transition::Disable,
    )
    .await
}
