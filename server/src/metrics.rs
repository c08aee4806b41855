//! Prometheus metrics, rendered by hand in the text format: counters and
//! histograms whose labels come from fixed sets (route templates, status
//! codes, outcomes), so their number is bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// (method, route template, status) -> latency.
    http: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    /// outcome -> count.
    executions: Mutex<BTreeMap<&'static str, u64>>,
    uploads: Mutex<BTreeMap<&'static str, u64>>,
    pub websocket_connections: AtomicI64,
}

impl Metrics {
    pub fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.http
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default()
            .observe(took.as_secs_f64());
    }

    pub fn execution_started(&self, outcome: &'static str) {
        *self
            .executions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(outcome)
            .or_default() += 1;
    }

    pub fn upload(&self, outcome: &'static str) {
        *self
            .uploads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(outcome)
            .or_default() += 1;
    }

    /// The text exposition, with `extra` gauges appended.
    pub fn render(&self, extra: &[(&str, &str, i64)]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP cloacina_up Server is running\n# TYPE cloacina_up gauge\ncloacina_up 1\n",
        );
        out.push_str("# HELP cloacina_http_request_duration_seconds HTTP requests by route template and status\n# TYPE cloacina_http_request_duration_seconds histogram\n");
        for ((method, route, status), histogram) in self
            .http
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            histogram.render(
                &mut out,
                "cloacina_http_request_duration_seconds",
                &format!("method=\"{method}\",route=\"{route}\",status=\"{status}\""),
            );
        }
        out.push_str("# HELP cloacina_executions_requested_total Executions requested over HTTP by outcome\n# TYPE cloacina_executions_requested_total counter\n");
        for (outcome, count) in self
            .executions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "cloacina_executions_requested_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        out.push_str("# HELP cloacina_package_uploads_total Package uploads by outcome\n# TYPE cloacina_package_uploads_total counter\n");
        for (outcome, count) in self
            .uploads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "cloacina_package_uploads_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP cloacina_websocket_connections Open WebSocket connections\n# TYPE cloacina_websocket_connections gauge\ncloacina_websocket_connections {}",
            self.websocket_connections.load(Ordering::Relaxed)
        );
        for (name, help, value) in extra {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

/// The host's counters: executions and tasks by outcome, task durations,
/// package loads by outcome, reconcile passes.
pub fn render_host(stats: &cloacina_host::HostStats) -> String {
    use cloacina_host::HostStats as S;
    let mut out = String::new();
    let counter = |out: &mut String, name: &str, help: &str, series: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (outcome, value) in series {
            let _ = writeln!(out, "{name}{{outcome=\"{outcome}\"}} {value}");
        }
    };
    counter(
        &mut out,
        "cloacina_executions_total",
        "Executions ended on this host by outcome",
        &[
            ("completed", S::get(&stats.executions_completed)),
            ("failed", S::get(&stats.executions_failed)),
            ("cancelled", S::get(&stats.executions_cancelled)),
        ],
    );
    counter(
        &mut out,
        "cloacina_tasks_total",
        "Task attempts ended on this host by outcome",
        &[
            ("completed", S::get(&stats.tasks_completed)),
            ("failed", S::get(&stats.tasks_failed)),
        ],
    );
    counter(
        &mut out,
        "cloacina_package_loads_total",
        "Package loads by the reconciler by outcome",
        &[
            ("loaded", S::get(&stats.packages_loaded)),
            ("failed", S::get(&stats.package_load_failures)),
            ("unloaded", S::get(&stats.packages_unloaded)),
        ],
    );
    let histogram =
        |out: &mut String, name: &str, help: &str, h: &cloacina_host::DurationHistogram| {
            let (buckets, sum, count) = h.snapshot();
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (bound, value) in buckets {
                let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {value}");
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
            );
        };
    histogram(
        &mut out,
        "cloacina_task_duration_seconds",
        "Task attempt durations on this host",
        &stats.task_duration,
    );
    histogram(
        &mut out,
        "cloacina_reconcile_duration_seconds",
        "Reconcile passes (drop directory and every tenant)",
        &stats.reconcile_duration,
    );
    out
}
