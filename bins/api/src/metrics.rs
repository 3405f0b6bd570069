//! Prometheus metrics: `GET /metrics` in the text exposition format.
//!
//! The api installs a process-wide [`metrics`] recorder (the first [`install`] wins), so any
//! crate linked into the process records through the `metrics` facade with the names below
//! and they appear on `/metrics`; no crate needs to depend on this one.
//!
//! | name | type | labels | recorded by |
//! |---|---|---|---|
//! | `haven_http_requests_total` | counter | `method`, `route` (the route pattern, `unmatched` for a 404), `status` | [`track`], every request |
//! | `haven_http_request_duration_seconds` | histogram | `method`, `route`, `status` | [`track`], every request |
//! | `haven_rate_limited_total` | counter | `class` (`public`, `authenticated`, `sensitive`) | the rate limiter, each 429 |
//! | `haven_tokens_minted_total` | counter | — | mint operations confirmed on chain |
//! | `haven_tokens_burned_total` | counter | — | burn operations confirmed on chain |
//! | `haven_fraud_alerts_total` | counter | `rule` | fraud evaluation, each alert raised |
//! | `haven_breaker_state` | gauge | `breaker` | refreshed from the app's `BreakerRegistry` at each scrape: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled |
//! | `haven_nonce_leases_outstanding` | gauge | — | the nonce manager: reserved, not yet committed or released |
//! | `haven_webhook_deliveries_total` | counter | `outcome` (`delivered`, `failed`, `dead`) | the webhook delivery job, each attempt |
//!
//! Route labels are the registered pattern (`/api/v1/things/{id}`), never the raw path, so a
//! client cannot grow the label set. `/metrics` is meant for the internal network; keep it
//! off the public listener at the load balancer.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use haven_resilience::BreakerState;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::ratelimit::RateClass;
use crate::state::AppState;

/// Requests served.
pub const HTTP_REQUESTS: &str = "haven_http_requests_total";
/// Request latency in seconds.
pub const HTTP_DURATION: &str = "haven_http_request_duration_seconds";
/// Requests refused by a rate limit.
pub const RATE_LIMITED: &str = "haven_rate_limited_total";
/// Mint operations confirmed.
pub const TOKENS_MINTED: &str = "haven_tokens_minted_total";
/// Burn operations confirmed.
pub const TOKENS_BURNED: &str = "haven_tokens_burned_total";
/// Fraud alerts raised, by `rule`.
pub const FRAUD_ALERTS: &str = "haven_fraud_alerts_total";
/// Circuit breaker state by `breaker` (0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled).
pub const BREAKER_STATE: &str = "haven_breaker_state";
/// Nonce leases reserved and not yet committed or released.
pub const NONCE_LEASES_OUTSTANDING: &str = "haven_nonce_leases_outstanding";
/// Webhook delivery attempts, by `outcome`.
pub const WEBHOOK_DELIVERIES: &str = "haven_webhook_deliveries_total";

/// Latency buckets in seconds: 1 ms to 30 s (the request timeout).
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder for the process (once; later calls return the same
/// handle) and describes every metric above. `None` when another recorder was installed
/// first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = match PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &DURATION_BUCKETS)
            {
                Ok(builder) => builder,
                Err(error) => {
                    tracing::error!(%error, "metrics buckets refused; /metrics disabled");
                    return None;
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(error) = metrics::set_global_recorder(recorder) {
                tracing::warn!(%error, "another metrics recorder is installed; /metrics disabled");
                return None;
            }
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
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
    describe_counter!(TOKENS_MINTED, "Mint operations confirmed on chain.");
    describe_counter!(TOKENS_BURNED, "Burn operations confirmed on chain.");
    describe_counter!(FRAUD_ALERTS, "Fraud alerts raised, by rule.");
    describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker state: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled."
    );
    describe_gauge!(
        NONCE_LEASES_OUTSTANDING,
        "Nonce leases reserved and not yet committed or released."
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Outbound webhook delivery attempts, by outcome."
    );
    // Unlabelled series exist from the start, so dashboards show 0 rather than no data.
    metrics::counter!(TOKENS_MINTED).absolute(0);
    metrics::counter!(TOKENS_BURNED).absolute(0);
    metrics::gauge!(NONCE_LEASES_OUTSTANDING).set(0.0);
}

/// Counts one 429 of `class`.
pub fn rate_limited(class: RateClass) {
    metrics::counter!(RATE_LIMITED, "class" => class.as_str()).increment(1);
}

/// The gauge value of a breaker state.
pub fn breaker_state_value(state: BreakerState) -> f64 {
    match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
        BreakerState::ForcedOpen => 3.0,
        BreakerState::Disabled => 4.0,
    }
}

/// Counts and times every request by method, route pattern and final status.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let outcome = next
        .call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body);
    let status = match &outcome {
        Ok(response) => response.status(),
        Err(err) => err.as_response_error().status_code(),
    };
    let labels = [
        ("method", method),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    outcome
}

/// `GET /metrics`: the Prometheus text format; breaker gauges are refreshed first.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 500, description = "Server error", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn render(state: web::Data<AppState>) -> HttpResponse {
    let Some(handle) = install() else {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("metrics recorder unavailable\n");
    };
    for status in state.breakers.statuses() {
        metrics::gauge!(BREAKER_STATE, "breaker" => status.name.clone())
            .set(breaker_state_value(status.state));
    }
    handle.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}
