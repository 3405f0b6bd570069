//! Prometheus metrics for the haven binaries: [`install`] puts one process-wide recorder in
//! place and describes the business series the domain crates record; [`render`] is the text
//! a binary serves on `/metrics`.
//!
//! The domain crates record through the `metrics` facade under names they own (the
//! constants re-exported here); each binary adds the series of its own components (the api:
//! HTTP requests, rate limits, breakers; the worker: webhook deliveries) and describes them
//! after calling [`install`]. The whole table is in docs/ARCHITECTURE.md.
//!
//! Install before any work starts: values recorded before the recorder exists are lost,
//! and a nonce lease taken before and ended after would leave the gauge at −1.

use std::sync::OnceLock;

pub use haven_chain::metrics::{ALERTS as CHAIN_ALERTS, TOKENS_BURNED, TOKENS_MINTED};
pub use haven_fraud::metrics::ALERTS as FRAUD_ALERTS;
pub use haven_nonce::metrics::LEASES_OUTSTANDING as NONCE_LEASES_OUTSTANDING;
pub use metrics_exporter_prometheus::PrometheusHandle;

/// The `Content-Type` of [`render`]'s text (the Prometheus text exposition format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets in seconds of every histogram whose name ends in `_seconds`: 1 ms to 30 s (the
/// api's request timeout).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder for the process (once; later calls return the same
/// handle) and describes the domain crates' series. `None` when another recorder was
/// installed first (the failure is logged once).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = match metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                    &LATENCY_BUCKETS,
                ) {
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

/// The Prometheus text of every series recorded so far; `None` without a recorder (see
/// [`install`]).
pub fn render() -> Option<String> {
    let handle = install()?;
    handle.run_upkeep();
    Some(handle.render())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(TOKENS_MINTED, "Mint transactions confirmed on chain.");
    describe_counter!(TOKENS_BURNED, "Burn transactions confirmed on chain.");
    describe_counter!(
        CHAIN_ALERTS,
        "Alerts raised by the chain monitoring cycle, by kind."
    );
    describe_counter!(FRAUD_ALERTS, "Fraud alerts raised, by rule.");
    describe_gauge!(
        NONCE_LEASES_OUTSTANDING,
        "Nonce leases this process holds: reserved, not yet committed, released or expired."
    );
    // Unlabelled series exist from the start, so dashboards show 0 rather than no data.
    // Adding 0 registers them without overwriting anything recorded meanwhile.
    metrics::counter!(TOKENS_MINTED).increment(0);
    metrics::counter!(TOKENS_BURNED).increment(0);
    metrics::gauge!(NONCE_LEASES_OUTSTANDING).increment(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendered_text_describes_the_business_series() {
        let text = render().expect("the first recorder in this test binary");
        for name in [TOKENS_MINTED, TOKENS_BURNED, NONCE_LEASES_OUTSTANDING] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} in {text}"
            );
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} in {text}"
            );
        }
        assert!(
            install().is_some(),
            "a second install returns the same handle"
        );
    }
}
