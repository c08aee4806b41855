//! Prometheus metrics, kept in a `prometheus-client` registry that the
//! server state owns: no global recorder, so every server (and every test)
//! has its own, and the crate does the bucketing, the label escaping and
//! the text exposition.
//!
//! Labels come from fixed sets (route templates, status codes, outcomes),
//! so the number of series is bounded. Family names, label names and
//! bucket bounds are a contract with dashboards and tests: keep them.
//! A labelled family with no series yet (no upload so far, say) is left
//! out of the exposition until its first sample.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use cloacina_host::HostStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Ack latency buckets, seconds: finer, acks are sub-millisecond.
const ACK_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// The labels of a request's latency, in the order they are written.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route template (`/v1/tenants/{tenant_id}/...`), not the path,
    /// so that the number of series stays bounded.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// A constructor for the request family: every series gets [`BUCKETS`].
fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// (method, route template, status) -> latency.
    http: Family<RequestLabels, Histogram>,
    executions: Family<Outcome, Counter>,
    uploads: Family<Outcome, Counter>,
    websocket_connections: Gauge,
    /// Set at each scrape: the tickets live in the server state, which
    /// holds this registry.
    ws_tickets: Gauge,
    /// Accumulator socket: frame read -> its ack sent.
    accumulator_ack: Histogram,
    accumulator_rejected: Family<Reason, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

impl Metrics {
    /// The server's metrics, `host`'s and its graphs', in one registry.
    pub fn new(host: Arc<HostStats>, graphs: &cloacina_graphs::GraphMetrics) -> Self {
        let mut registry = Registry::default();
        registry.register("cloacina_up", "Server is running", ConstGauge::new(1_i64));
        let http: Family<RequestLabels, Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "cloacina_http_request_duration",
            "HTTP requests by route template and status",
            Unit::Seconds,
            http.clone(),
        );
        let executions = Family::default();
        registry.register(
            "cloacina_executions_requested",
            "Executions requested over HTTP by outcome",
            executions.clone(),
        );
        let uploads = Family::default();
        registry.register(
            "cloacina_package_uploads",
            "Package uploads by outcome",
            uploads.clone(),
        );
        let websocket_connections = Gauge::default();
        registry.register(
            "cloacina_websocket_connections",
            "Open WebSocket connections",
            websocket_connections.clone(),
        );
        let ws_tickets = Gauge::default();
        registry.register(
            "cloacina_ws_tickets",
            "Unexpired WebSocket tickets held",
            ws_tickets.clone(),
        );
        register_host(&mut registry, host);
        graphs.register(&mut registry);
        let accumulator_ack = Histogram::new(ACK_BUCKETS);
        registry.register_with_unit(
            "cloacina_accumulator_ack",
            "Accumulator socket, acknowledged mode: from reading a frame to sending its ack",
            Unit::Seconds,
            accumulator_ack.clone(),
        );
        let accumulator_rejected = Family::default();
        registry.register(
            "cloacina_accumulator_events_rejected",
            "Accumulator socket frames refused, by reason",
            accumulator_rejected.clone(),
        );
        Metrics {
            accumulator_ack,
            accumulator_rejected,
            registry,
            http,
            executions,
            uploads,
            websocket_connections,
            ws_tickets,
        }
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let labels = RequestLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        self.http.get_or_create(&labels).observe(took.as_secs_f64());
    }

    pub fn execution_started(&self, outcome: &'static str) {
        self.executions.get_or_create(&Outcome { outcome }).inc();
    }

    pub fn upload(&self, outcome: &'static str) {
        self.uploads.get_or_create(&Outcome { outcome }).inc();
    }

    pub fn websocket_opened(&self) {
        self.websocket_connections.inc();
    }

    pub fn observe_ack(&self, took: Duration) {
        self.accumulator_ack.observe(took.as_secs_f64());
    }

    pub fn event_rejected(&self, reason: &'static str) {
        self.accumulator_rejected
            .get_or_create(&Reason { reason })
            .inc();
    }

    pub fn websocket_closed(&self) {
        self.websocket_connections.dec();
    }

    /// The Prometheus text exposition (version 0.0.4), with `ws_tickets`
    /// as the tickets held now.
    pub fn render(&self, ws_tickets: usize) -> Result<String, std::fmt::Error> {
        self.ws_tickets
            .set(i64::try_from(ws_tickets).unwrap_or(i64::MAX));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Registers what the host counts: its duration histograms as they are
/// (they are the crate's, shared with the host), its counters through a
/// collector that reads them at each scrape.
fn register_host(registry: &mut Registry, host: Arc<HostStats>) {
    registry.register_with_unit(
        "cloacina_task_duration",
        "Task attempt durations on this host",
        Unit::Seconds,
        host.task_duration.clone(),
    );
    registry.register_with_unit(
        "cloacina_reconcile_duration",
        "Reconcile passes (drop directory and every tenant)",
        Unit::Seconds,
        host.reconcile_duration.clone(),
    );
    registry.register_collector(Box::new(HostCounters(host)));
}

/// The host's counters, which are plain atomics, as counters labelled by
/// outcome.
#[derive(Debug)]
struct HostCounters(Arc<HostStats>);

impl Collector for HostCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = &self.0;
        encode_by_outcome(
            &mut encoder,
            "cloacina_executions",
            "Executions ended on this host by outcome.",
            &[
                ("completed", &stats.executions_completed),
                ("failed", &stats.executions_failed),
                ("cancelled", &stats.executions_cancelled),
            ],
        )?;
        encode_by_outcome(
            &mut encoder,
            "cloacina_tasks",
            "Task attempts ended on this host by outcome.",
            &[
                ("completed", &stats.tasks_completed),
                ("failed", &stats.tasks_failed),
            ],
        )?;
        encode_by_outcome(
            &mut encoder,
            "cloacina_package_loads",
            "Package loads by the reconciler by outcome.",
            &[
                ("loaded", &stats.packages_loaded),
                ("failed", &stats.package_load_failures),
                ("unloaded", &stats.packages_unloaded),
            ],
        )
    }
}

/// One counter family, `<name>_total{outcome="..."}`: the crate adds the
/// `_total` suffix to a counter's name.
fn encode_by_outcome(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(&'static str, &AtomicU64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for &(outcome, counter) in series {
        let labels = Outcome { outcome };
        ConstCounter::new(HostStats::get(counter)).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn metrics() -> (Metrics, Arc<HostStats>) {
        let host = Arc::new(HostStats::default());
        (
            Metrics::new(host.clone(), &cloacina_graphs::GraphMetrics::default()),
            host,
        )
    }

    fn render(metrics: &Metrics) -> String {
        metrics.render(3).expect("renders")
    }

    #[test]
    fn request_latency_has_the_same_series_and_buckets() {
        let (metrics, _) = metrics();
        metrics.observe_request("GET", "/health", 200, Duration::from_millis(3));
        let text = render(&metrics);
        let labels = r#"method="GET",route="/health",status="200""#;
        for (le, count) in [
            ("0.0005", 0),
            ("0.001", 0),
            ("0.0025", 0),
            ("0.005", 1),
            ("0.01", 1),
            ("0.025", 1),
            ("0.05", 1),
            ("0.1", 1),
            ("0.25", 1),
            ("0.5", 1),
            ("1", 1),
            ("5", 1),
            ("+Inf", 1),
        ] {
            let line = format!(
                "cloacina_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {count}\n"
            );
            assert!(text.contains(&line), "{line} in\n{text}");
        }
        assert!(text.contains(&format!(
            "cloacina_http_request_duration_seconds_count{{{labels}}} 1\n"
        )));
        assert!(text.contains("# TYPE cloacina_http_request_duration_seconds histogram\n"));
    }

    #[test]
    fn server_counters_and_gauges_keep_their_names() {
        let (metrics, _) = metrics();
        metrics.execution_started("started");
        metrics.execution_started("started");
        metrics.execution_started("refused");
        metrics.upload("registered");
        metrics.websocket_opened();
        metrics.websocket_opened();
        metrics.websocket_closed();
        let text = render(&metrics);
        for line in [
            "# TYPE cloacina_up gauge\ncloacina_up 1\n",
            "# TYPE cloacina_executions_requested_total counter\n",
            "cloacina_executions_requested_total{outcome=\"started\"} 2\n",
            "cloacina_executions_requested_total{outcome=\"refused\"} 1\n",
            "# TYPE cloacina_package_uploads_total counter\n",
            "cloacina_package_uploads_total{outcome=\"registered\"} 1\n",
            "# TYPE cloacina_websocket_connections gauge\ncloacina_websocket_connections 1\n",
            "# TYPE cloacina_ws_tickets gauge\ncloacina_ws_tickets 3\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }

    #[test]
    fn host_stats_are_read_at_each_scrape() {
        let (metrics, host) = metrics();
        host.tasks_completed.fetch_add(4, Ordering::Relaxed);
        host.packages_unloaded.fetch_add(1, Ordering::Relaxed);
        host.task_duration.observe(0.2);
        host.reconcile_duration.observe(0.0001);
        let text = render(&metrics);
        for line in [
            "# TYPE cloacina_executions_total counter\n",
            "cloacina_executions_total{outcome=\"completed\"} 0\n",
            "cloacina_executions_total{outcome=\"failed\"} 0\n",
            "cloacina_executions_total{outcome=\"cancelled\"} 0\n",
            "cloacina_tasks_total{outcome=\"completed\"} 4\n",
            "cloacina_tasks_total{outcome=\"failed\"} 0\n",
            "cloacina_package_loads_total{outcome=\"loaded\"} 0\n",
            "cloacina_package_loads_total{outcome=\"failed\"} 0\n",
            "cloacina_package_loads_total{outcome=\"unloaded\"} 1\n",
            "# TYPE cloacina_task_duration_seconds histogram\n",
            "cloacina_task_duration_seconds_bucket{le=\"0.1\"} 0\n",
            "cloacina_task_duration_seconds_bucket{le=\"0.25\"} 1\n",
            "cloacina_task_duration_seconds_bucket{le=\"+Inf\"} 1\n",
            "cloacina_task_duration_seconds_count 1\n",
            "cloacina_reconcile_duration_seconds_bucket{le=\"0.0005\"} 1\n",
            "cloacina_reconcile_duration_seconds_count 1\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        host.tasks_completed.fetch_add(1, Ordering::Relaxed);
        assert!(render(&metrics).contains("cloacina_tasks_total{outcome=\"completed\"} 5\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let (metrics, _) = metrics();
        metrics.observe_request("GET", "/a\"b\\c\nd", 404, Duration::from_millis(1));
        let text = render(&metrics);
        let escaped = r#"cloacina_http_request_duration_seconds_count{method="GET",route="/a\"b\\c\nd",status="404"} 1"#;
        assert!(text.contains(escaped), "{escaped} in\n{text}");
        // Every sample stays on one line: no raw newline leaked.
        assert!(!text.contains("\nd\""), "{text}");
    }
}
