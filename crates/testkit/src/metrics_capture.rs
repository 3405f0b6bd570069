//! [`MetricsCapture`]: a `metrics` recorder that keeps every value, so a test can assert what
//! the code under test recorded through the facade.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, LocalRecorderGuard, Metadata, Recorder, SharedString,
    Unit,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Counter,
    Gauge,
}

/// Keeps the running total of every counter and the value of every gauge recorded while it
/// is the recorder (histograms are ignored).
///
/// Make it the recorder of the current thread with [`set_local`](Self::set_local): the
/// process-wide recorder (a binary's Prometheus exporter) is untouched and tests running in
/// parallel do not see each other's values. That covers code awaited directly by a test
/// body (`#[tokio::test]` polls it on the test's thread, whatever the flavor), not tasks
/// spawned onto other threads.
///
/// ```
/// use haven_testkit::MetricsCapture;
///
/// let capture = MetricsCapture::new();
/// {
///     let _local = capture.set_local();
///     metrics::counter!("jobs_total", "job" => "sync").increment(2);
///     metrics::gauge!("leases").increment(1.0);
/// }
/// assert_eq!(capture.counter("jobs_total", &[("job", "sync")]), 2);
/// assert_eq!(capture.counter("jobs_total", &[("job", "other")]), 0);
/// assert_eq!(capture.gauge("leases", &[]), 1.0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MetricsCapture {
    values: Arc<Mutex<Series>>,
}

/// Each series by kind and `name{labels}`, with its value (a gauge's as `f64` bits).
type Series = BTreeMap<(Kind, String), Arc<AtomicU64>>;

impl MetricsCapture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes this the current thread's recorder until the guard drops.
    #[must_use = "the capture records only while the guard lives"]
    pub fn set_local(&self) -> LocalRecorderGuard<'_> {
        metrics::set_default_local_recorder(self)
    }

    /// The total of counter `name` with exactly `labels` (in any order); 0 if never recorded.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.value(Kind::Counter, name, labels)
            .map_or(0, |v| v.load(Ordering::Acquire))
    }

    /// The value of gauge `name` with exactly `labels`; 0 if never recorded.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(Kind::Gauge, name, labels)
            .map_or(0.0, |v| f64::from_bits(v.load(Ordering::Acquire)))
    }

    /// Every series of counter `name` recorded so far, as `(labels, total)` with the labels
    /// written `a="x",b="y"` in name order.
    pub fn counters(&self, name: &str) -> Vec<(String, u64)> {
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values
            .iter()
            .filter_map(|((kind, id), value)| {
                let labels = id
                    .strip_prefix(name)?
                    .strip_prefix('{')?
                    .strip_suffix('}')?;
                (*kind == Kind::Counter).then(|| (labels.to_owned(), value.load(Ordering::Acquire)))
            })
            .collect()
    }

    fn value(&self, kind: Kind, name: &str, labels: &[(&str, &str)]) -> Option<Arc<AtomicU64>> {
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values.get(&(kind, series_id(name, labels))).cloned()
    }

    fn register(&self, kind: Kind, key: &Key) -> Arc<AtomicU64> {
        let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values
            .entry((kind, series_id(key.name(), &labels)))
            .or_insert_with(|| Arc::new(AtomicU64::new(0)))
            .clone()
    }
}

/// `name{a="x",b="y"}` with the labels sorted, so lookups ignore label order.
fn series_id(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels = labels.to_vec();
    labels.sort_unstable();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

impl Recorder for MetricsCapture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.register(Kind::Counter, key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.register(Kind::Gauge, key))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}
