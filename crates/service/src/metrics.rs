//! Prometheus metrics for the haven binaries: [`install`] puts one process-wide recorder in
//! place; [`render`] is the text a binary serves on `/metrics`.
//!
//! The domain crates record through the `metrics` facade under names they own and describe
//! them in their own `metrics::describe()`; after calling [`install`], each binary calls the
//! `describe` of every domain crate it runs and describes the series of its own components
//! (the api: HTTP requests, rate limits, breakers; the worker: webhook deliveries). This
//! crate knows no series. The whole table is in docs/ARCHITECTURE.md.
//!
//! Install before any work starts: values recorded before the recorder exists are lost,
//! and a nonce lease taken before and ended after would leave the gauge at −1.

use std::sync::OnceLock;

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
/// handle). `None` when another recorder was
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
            spawn_upkeep(handle.clone());
            Some(handle)
        })
        .clone()
}

/// How often histogram samples are folded into their buckets when nobody scrapes.
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds recorded histogram samples into their buckets every [`UPKEEP_EVERY`] on a thread of
/// its own. The recorder keeps each sample until an upkeep: without one (no Prometheus
/// scraping `/metrics`) a process would grow by every request's latency sample.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no metrics upkeep thread: histogram samples wait for a scrape");
    }
}

/// The Prometheus text of every series recorded so far; `None` without a recorder (see
/// [`install`]).
pub fn render() -> Option<String> {
    let handle = install()?;
    handle.run_upkeep();
    Some(handle.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendered_text_holds_what_was_recorded() {
        install().expect("the first recorder in this test binary");
        metrics::describe_counter!("haven_test_events_total", "Events of this test.");
        metrics::counter!("haven_test_events_total").increment(2);
        let text = render().expect("a recorder is installed");
        assert!(
            text.contains("# HELP haven_test_events_total Events of this test."),
            "{text}"
        );
        assert!(text.contains("haven_test_events_total 2"), "{text}");
        assert!(
            install().is_some(),
            "a second install returns the same handle"
        );
    }
}
