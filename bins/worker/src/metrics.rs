//! The worker's Prometheus metrics, served on its listener at `GET /metrics`.
//!
//! [`install`] puts the process-wide recorder of `haven_service::metrics` in place (the
//! first install wins) and describes the worker's own series; the domain crates the jobs
//! run record theirs through the `metrics` facade:
//!
//! | name | type | labels | recorded by |
//! |---|---|---|---|
//! | `haven_webhook_deliveries_total` | counter | `outcome` (`delivered`, `failed`, `dead`) | the `webhook_delivery` job, each attempt whose outcome it recorded ([`WEBHOOK_DELIVERIES`]) |
//! | `haven_tokens_minted_total` | counter | — | the `chain_monitor` job (`haven-chain`), each mint confirmed on chain |
//! | `haven_tokens_burned_total` | counter | — | the same, each burn |
//! | `haven_chain_alerts_total` | counter | `kind` | the same, each alert |
//! | `haven_nonce_leases_outstanding` | gauge | — | `haven-nonce`'s `NonceManager`: leases this process holds (the monitoring cycle signs queued records) |
//! | `haven_fraud_alerts_total` | counter | `rule` | `haven-fraud`'s `Engine`, wherever it runs in the process |
//! | `haven_breaker_state` | gauge | `breaker` | refreshed from the worker's breakers (`eth_rpc`) at each scrape: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled |
//! | `haven_breaker_shared` | gauge | `breaker` | the same: 1 while the state is shared through Redis, 0 while local |
//! | `haven_breaker_transitions_total` | counter | `breaker`, `from`, `to` | `haven_resilience::metrics::count_transitions`: each state change this process saw |
//!
//! Like the api's, this listener is meant for the internal network.

use std::sync::{Arc, Once};

use actix_web::HttpResponse;
use metrics_exporter_prometheus::PrometheusHandle;

/// Counter, labelled `outcome`: outbound webhook attempts whose outcome the
/// `webhook_delivery` job recorded — `delivered` (a 2xx), `failed` (another attempt is
/// scheduled) or `dead` (the last attempt failed; dead-lettered). An attempt whose lease
/// ran out before its outcome was recorded is counted by the worker that records it.
pub const WEBHOOK_DELIVERIES: &str = "haven_webhook_deliveries_total";

/// The `outcome` labels of [`WEBHOOK_DELIVERIES`].
pub const DELIVERY_OUTCOMES: [&str; 3] = ["delivered", "failed", "dead"];

/// Installs the process's Prometheus recorder (once; later calls return the same handle)
/// and describes the worker's series. `None` when another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    static DESCRIBED: Once = Once::new();
    let handle = haven_service::metrics::install()?;
    DESCRIBED.call_once(|| {
        haven_chain::metrics::describe();
        haven_fraud::metrics::describe();
        haven_nonce::metrics::describe();
        haven_resilience::metrics::describe();
        metrics::describe_counter!(
            WEBHOOK_DELIVERIES,
            "Outbound webhook attempts by recorded outcome: delivered, failed (retry scheduled), dead."
        );
        for outcome in DELIVERY_OUTCOMES {
            metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(0);
        }
    });
    Some(handle)
}

/// `GET /metrics`: the Prometheus text format; the breaker gauges are refreshed first.
pub(crate) async fn render(
    breakers: actix_web::web::Data<Arc<haven_resilience::BreakerRegistry>>,
) -> HttpResponse {
    if install().is_none() {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("metrics recorder unavailable\n");
    }
    haven_resilience::metrics::record_states(&breakers);
    HttpResponse::Ok()
        .content_type(haven_service::metrics::CONTENT_TYPE)
        .body(haven_service::metrics::render().unwrap_or_default())
}
