//! What this host did, counted for metrics: executions and tasks by
//! outcome, task durations, package loads by outcome, reconcile passes.
//! Counters only grow; the server renders them for Prometheus.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the duration buckets, seconds.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A histogram of durations, lock-free.
#[derive(Debug, Default)]
pub struct DurationHistogram {
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl DurationHistogram {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(DURATION_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (cumulative count per bucket bound, sum in seconds, count).
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let buckets = DURATION_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, count)| (*bound, count.load(Ordering::Relaxed)))
            .collect();
        (
            buckets,
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            self.count.load(Ordering::Relaxed),
        )
    }
}

#[derive(Debug, Default)]
pub struct HostStats {
    pub executions_completed: AtomicU64,
    pub executions_failed: AtomicU64,
    pub executions_cancelled: AtomicU64,
    pub tasks_completed: AtomicU64,
    pub tasks_failed: AtomicU64,
    pub task_duration: DurationHistogram,
    pub packages_loaded: AtomicU64,
    pub package_load_failures: AtomicU64,
    pub packages_unloaded: AtomicU64,
    pub reconcile_duration: DurationHistogram,
}

impl HostStats {
    pub(crate) fn count(counter: &AtomicU64, by: usize) {
        counter.fetch_add(u64::try_from(by).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
