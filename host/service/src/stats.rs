//! What this host did, counted for metrics: executions and tasks by
//! outcome, task durations, package loads by outcome, reconcile passes.
//! Counters only grow; the server exposes them for Prometheus.
//!
//! The counters are plain atomics, read at scrape time: the server decides
//! how they are named and labelled. The durations are `prometheus-client`
//! histograms, so the bucketing is the crate's and the server registers
//! them as they are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;

/// Upper bounds of the duration buckets, seconds. Dashboards depend on
/// them: change them only with the dashboards.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug)]
pub struct HostStats {
    pub executions_completed: AtomicU64,
    pub executions_failed: AtomicU64,
    pub executions_cancelled: AtomicU64,
    pub tasks_completed: AtomicU64,
    pub tasks_failed: AtomicU64,
    /// Task attempt durations, seconds.
    pub task_duration: Histogram,
    pub packages_loaded: AtomicU64,
    pub package_load_failures: AtomicU64,
    pub packages_unloaded: AtomicU64,
    /// Reconcile pass durations, seconds.
    pub reconcile_duration: Histogram,
}

impl Default for HostStats {
    fn default() -> Self {
        HostStats {
            executions_completed: AtomicU64::default(),
            executions_failed: AtomicU64::default(),
            executions_cancelled: AtomicU64::default(),
            tasks_completed: AtomicU64::default(),
            tasks_failed: AtomicU64::default(),
            task_duration: duration_histogram(),
            packages_loaded: AtomicU64::default(),
            package_load_failures: AtomicU64::default(),
            packages_unloaded: AtomicU64::default(),
            reconcile_duration: duration_histogram(),
        }
    }
}

/// An empty histogram over [`DURATION_BUCKETS`].
fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl HostStats {
    pub(crate) fn count(counter: &AtomicU64, by: usize) {
        counter.fetch_add(u64::try_from(by).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Records `took` in `histogram`, in seconds as Prometheus expects.
    pub(crate) fn observe(histogram: &Histogram, took: Duration) {
        histogram.observe(took.as_secs_f64());
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
