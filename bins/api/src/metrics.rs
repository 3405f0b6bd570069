//! Prometheus metrics: `GET /metrics` in the text exposition format.
//!
//! [`install`] puts the process-wide recorder of `haven_service::metrics` in place (the
//! first install wins) and describes the api's own series, so any crate linked into the
//! process records through the [`metrics`] facade under its own names and the series
//! appear on `/metrics`; no crate needs to depend on this one.
//!
//! | name | type | labels | recorded by |
//! |---|---|---|---|
//! | `haven_http_requests_total` | counter | `method`, `route` (the route pattern, `unmatched` for a 404), `status` | [`track`], every request |
//! | `haven_http_request_duration_seconds` | histogram | `method`, `route`, `status` | [`track`], every request |
//! | `haven_rate_limited_total` | counter | `class` (`public`, `authenticated`, `sensitive`, `webhook`) | the rate limiter, each 429 |
//! | `haven_password_hashes_in_flight` | gauge | — | [`crate::passwords::HashGate`]: argon2 hashes running now |
//! | `haven_password_hashes_in_flight_peak` | gauge | — | the same: the most that ever ran at once in this process |
//! | `haven_password_hashes_refused_total` | counter | — | the same: hashes refused (503) because every slot was taken |
//! | `haven_fraud_signals_dropped_total` | counter | — | [`crate::lockout::FraudQueue`]: authentication failures not evaluated because the queue was full |
//! | `haven_breaker_state` | gauge | `breaker` | refreshed from the app's `BreakerRegistry` at each scrape: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled |
//! | `haven_breaker_shared` | gauge | `breaker` | the same: 1 while the state is shared through Redis, 0 while local (Redis unreachable) |
//! | `haven_breaker_transitions_total` | counter | `breaker`, `from`, `to` | `haven_resilience::metrics::count_transitions`: each state change this process saw (its own and, for a shared breaker, another replica's) |
//! | `haven_tokens_minted_total` | counter | — | `haven-chain`'s monitoring cycle, each mint confirmed on chain ([`TOKENS_MINTED`]) |
//! | `haven_tokens_burned_total` | counter | — | the same, each burn ([`TOKENS_BURNED`]) |
//! | `haven_chain_alerts_total` | counter | `kind` | the same, each alert ([`CHAIN_ALERTS`]) |
//! | `haven_fraud_alerts_total` | counter | `rule` | `haven-fraud`'s `Engine::evaluate`, each alert ([`FRAUD_ALERTS`]) |
//! | `haven_nonce_leases_outstanding` | gauge | — | `haven-nonce`'s `NonceManager`, leases of this process ([`NONCE_LEASES_OUTSTANDING`]) |
//! | `haven_db_pool_connections_in_use` | gauge | — | refreshed from the api's Postgres pool at each scrape: connections checked out |
//! | `haven_db_pool_connections_max` | gauge | — | the same: the most the pool opens (`HAVEN_DB_POOL_SIZE`) |
//! | `haven_outbox_pending` | gauge | `outbox` | refreshed at each scrape from Postgres (`haven_db::outbox_backlogs`): items not yet done |
//! | `haven_outbox_oldest_age_seconds` | gauge | `outbox` | the same: how long the oldest of them has waited (0 when none) |
//!
//! The business series are recorded where the fact is known, in whichever process that
//! is: the api serves them for the components it runs; mints and burns are confirmed, and
//! webhooks delivered (`haven_webhook_deliveries_total{outcome}`), by the worker, whose own
//! `/metrics` serves them (docs/ARCHITECTURE.md has the table of both).
//!
//! Route labels are the pattern of the route the router matched (`/api/v1/things/{id}`, from
//! [`crate::access::MatchedRoute`]), never the raw path, so a client cannot grow the label
//! set; a request no route matched is `unmatched`. `/metrics` is served only to the client
//! networks of `HAVEN_METRICS_ALLOW` (default loopback); everyone else gets 403.

use std::sync::Once;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
pub use haven_chain::metrics::{ALERTS as CHAIN_ALERTS, TOKENS_BURNED, TOKENS_MINTED};
pub use haven_fraud::metrics::ALERTS as FRAUD_ALERTS;
pub use haven_nonce::metrics::LEASES_OUTSTANDING as NONCE_LEASES_OUTSTANDING;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::ratelimit::RateClass;
use crate::state::AppState;

/// Requests served.
pub const HTTP_REQUESTS: &str = "haven_http_requests_total";
/// Gauge: vault requests waiting for their guardians (refreshed at each scrape).
pub const VAULT_REQUESTS_OPEN: &str = "haven_vault_requests_open";
/// Counter: vault requests submitted, by operation kind.
pub const VAULT_REQUESTS_CREATED: &str = "haven_vault_requests_created_total";
/// Counter: guardian decisions, by kind (`approve`, `reject`) and result.
pub const VAULT_DECISIONS: &str = "haven_vault_decisions_total";
/// Histogram: how long threshold jobs took, by kind (`signing`).
pub const VAULT_ROUND_DURATION: &str = "haven_vault_round_duration_seconds";
/// Counter: FROST rounds that timed out.
pub const VAULT_ROUND_TIMEOUTS: &str = "haven_vault_round_timeouts_total";
/// Gauge: open guardian sockets of this process.
pub const GUARDIAN_SOCKETS: &str = "haven_guardian_sockets";
/// Request latency in seconds (buckets: `haven_service::metrics::LATENCY_BUCKETS`).
pub const HTTP_DURATION: &str = "haven_http_request_duration_seconds";
/// Requests refused by a rate limit.
pub const RATE_LIMITED: &str = "haven_rate_limited_total";
pub use haven_resilience::metrics::{
    SHARED as BREAKER_SHARED, STATE as BREAKER_STATE, TRANSITIONS as BREAKER_TRANSITIONS,
    state_value as breaker_state_value,
};
/// Password hashes running now.
pub const PASSWORD_HASHES_IN_FLIGHT: &str = "haven_password_hashes_in_flight";
/// The most password hashes that ran at once in this process.
pub const PASSWORD_HASHES_PEAK: &str = "haven_password_hashes_in_flight_peak";
/// Password hashes refused because every slot was taken.
pub const PASSWORD_HASHES_REFUSED: &str = "haven_password_hashes_refused_total";
/// Authentication failures dropped by the full fraud signal queue.
pub const FRAUD_SIGNALS_DROPPED: &str = "haven_fraud_signals_dropped_total";

/// Postgres pool connections checked out now.
pub const DB_POOL_IN_USE: &str = "haven_db_pool_connections_in_use";
/// The most connections the Postgres pool opens.
pub const DB_POOL_MAX: &str = "haven_db_pool_connections_max";
/// Outbox items not yet done, by `outbox`.
pub const OUTBOX_PENDING: &str = "haven_outbox_pending";
/// How long the oldest item of an outbox has waited, by `outbox` (0 when none).
pub const OUTBOX_OLDEST_AGE: &str = "haven_outbox_oldest_age_seconds";

/// The client networks `/metrics` is served to (app data).
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess(pub Vec<ipnet::IpNet>);

/// Installs the process's Prometheus recorder (once; later calls return the same handle)
/// and describes the api's series. `None` when another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    static DESCRIBED: Once = Once::new();
    let handle = haven_service::metrics::install()?;
    DESCRIBED.call_once(describe);
    Some(handle)
}

fn describe() {
    // the domain series this process may record (the chain's stay at 0 here: the worker
    // confirms transactions)
    haven_chain::metrics::describe();
    haven_fraud::metrics::describe();
    haven_nonce::metrics::describe();
    haven_resilience::metrics::describe();
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests served, by method, route pattern and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency, by method, route pattern and status."
    );
    describe_counter!(
        RATE_LIMITED,
        "Requests refused with 429, by rate-limit class."
    );
    describe_gauge!(PASSWORD_HASHES_IN_FLIGHT, "Password hashes running now.");
    describe_gauge!(
        PASSWORD_HASHES_PEAK,
        "The most password hashes that ran at once in this process."
    );
    describe_counter!(
        PASSWORD_HASHES_REFUSED,
        "Password hashes refused (503) because every slot was taken."
    );
    describe_counter!(
        FRAUD_SIGNALS_DROPPED,
        "Authentication failures not evaluated by the fraud rules because their queue was full."
    );
    describe_gauge!(
        VAULT_REQUESTS_OPEN,
        "Vault requests waiting for their guardians."
    );
    describe_counter!(
        VAULT_REQUESTS_CREATED,
        "Vault requests submitted to guardians, by operation kind."
    );
    describe_counter!(
        VAULT_DECISIONS,
        "Guardian decisions over the WebSocket, by kind and result."
    );
    describe_histogram!(
        VAULT_ROUND_DURATION,
        Unit::Seconds,
        "How long FROST threshold jobs took, by kind."
    );
    describe_counter!(VAULT_ROUND_TIMEOUTS, "FROST rounds that timed out.");
    describe_gauge!(
        GUARDIAN_SOCKETS,
        "Open guardian WebSockets of this process."
    );
    describe_gauge!(DB_POOL_IN_USE, "Postgres pool connections checked out now.");
    describe_gauge!(DB_POOL_MAX, "The most connections the Postgres pool opens.");
    describe_gauge!(OUTBOX_PENDING, "Outbox items not yet done, by outbox.");
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "How long the oldest item of an outbox has waited (0 when none), by outbox."
    );
}

/// Sets the gauges read from the database pool and the outboxes. An outbox query that
/// fails leaves the outbox gauges as they were: the scrape still answers.
async fn refresh_database_gauges(state: &AppState) {
    let usage = state.db.usage();
    metrics::gauge!(DB_POOL_IN_USE).set(usage.in_use as f64);
    metrics::gauge!(DB_POOL_MAX).set(usage.max as f64);
    match haven_db::outbox_backlogs(&state.db).await {
        Ok(backlogs) => {
            for backlog in backlogs {
                metrics::gauge!(OUTBOX_PENDING, "outbox" => backlog.outbox)
                    .set(backlog.pending as f64);
                metrics::gauge!(OUTBOX_OLDEST_AGE, "outbox" => backlog.outbox)
                    .set(backlog.oldest_age_seconds.unwrap_or(0.0));
            }
        }
        Err(err) => tracing::warn!(error = %err, "outbox backlogs not refreshed"),
    }
    match haven_db::PgVaultStore::new(state.db.clone())
        .open_requests()
        .await
    {
        Ok(open) => metrics::gauge!(VAULT_REQUESTS_OPEN).set(open as f64),
        Err(err) => tracing::warn!(error = %err, "open vault requests not counted"),
    }
}

/// Counts one 429 of `class`.
pub fn rate_limited(class: RateClass) {
    metrics::counter!(RATE_LIMITED, "class" => class.as_str()).increment(1);
}

/// Counts and times every request by method, route pattern and final status.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let outcome = next
        .call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body);
    let (status, matched) = match &outcome {
        Ok(response) => (
            response.status(),
            crate::access::MatchedRoute::of(response.request()),
        ),
        Err(err) => (err.as_response_error().status_code(), None),
    };
    let route = matched.map_or_else(|| "unmatched".to_owned(), |m| m.0.path.to_owned());
    let labels = [
        ("method", method),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    outcome
}

/// `GET /metrics`: the Prometheus text format; breaker, pool and outbox gauges are
/// refreshed first.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 403, description = "The client is not in HAVEN_METRICS_ALLOW", body = crate::openapi::ErrorBodySchema),
        (status = 500, description = "Server error", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn render(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    access: web::Data<MetricsAccess>,
) -> HttpResponse {
    let allowed = crate::ratelimit::client_ip(&req)
        .is_some_and(|ip| crate::ratelimit::in_networks(&access.0, ip));
    if !allowed {
        return crate::error::ApiError::new(
            haven_core::ErrorCode::Forbidden,
            "/metrics is served to internal networks only (HAVEN_METRICS_ALLOW)",
        )
        .error_response();
    }
    if install().is_none() {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("metrics recorder unavailable\n");
    }
    haven_resilience::metrics::record_states(&state.breakers);
    refresh_database_gauges(&state).await;
    let text = haven_service::metrics::render().unwrap_or_default();
    HttpResponse::Ok()
        .content_type(haven_service::metrics::CONTENT_TYPE)
        .body(text)
}
