//! The graph runtime's metrics, in the reference's names so dashboards
//! carry over, plus our own: pending events, backpressure, event-to-fire
//! latency. One [`GraphMetrics`] is shared by every tenant of a host; the
//! server registers it (a collector read at each scrape, and the latency
//! histogram) in its registry.
//!
//! Series are labelled by graph (and tenant), so their number is bounded
//! by the graphs loaded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::slot::GraphSlot;

/// Bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// Metrics of every graph on a host. Cheap to clone.
#[derive(Clone, Debug)]
pub struct GraphMetrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Event accepted -> the firing that consumed it started, seconds.
    event_to_fire: Histogram,
    /// Leases this host took from an owner whose lease had expired.
    takeovers: Counter,
    /// Commits refused because this host's lease was gone.
    fenced: Counter,
    graphs: Mutex<BTreeMap<(String, String), Arc<GraphSlot>>>,
}

impl Default for GraphMetrics {
    fn default() -> Self {
        GraphMetrics {
            inner: Arc::new(Inner {
                event_to_fire: Histogram::new(BUCKETS),
                takeovers: Counter::default(),
                fenced: Counter::default(),
                graphs: Mutex::new(BTreeMap::new()),
            }),
        }
    }
}

impl GraphMetrics {
    /// Adds these metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "cloacina_graph_event_to_fire",
            "From an event's acceptance to the start of the firing that consumed it",
            Unit::Seconds,
            self.inner.event_to_fire.clone(),
        );
        registry.register(
            "cloacina_graph_lease_takeovers",
            "Graph leases this host took over from an owner whose lease had expired",
            self.inner.takeovers.clone(),
        );
        registry.register(
            "cloacina_graph_fencing_rejections",
            "Graph commits refused because this host no longer held the graph's lease",
            self.inner.fenced.clone(),
        );
        registry.register_collector(Box::new(self.clone()));
    }

    pub(crate) fn took_over(&self) {
        self.inner.takeovers.inc();
    }

    pub(crate) fn fenced(&self) {
        self.inner.fenced.inc();
    }

    /// Leases taken over and commits fenced, since the host started.
    pub fn lease_counts(&self) -> (u64, u64) {
        (self.inner.takeovers.get(), self.inner.fenced.get())
    }

    pub(crate) fn observe_event_to_fire(&self, seconds: f64) {
        self.inner.event_to_fire.observe(seconds);
    }

    fn graphs(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Arc<GraphSlot>>> {
        self.inner
            .graphs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn add(&self, tenant: &str, slot: Arc<GraphSlot>) {
        self.graphs()
            .insert((tenant.to_owned(), slot.name().to_owned()), slot);
    }

    pub(crate) fn remove(&self, tenant: &str, graph: &str) {
        self.graphs().remove(&(tenant.to_owned(), graph.to_owned()));
    }
}

type Labels = Vec<(&'static str, String)>;

/// A value as exposed: counts are integers, durations seconds.
#[derive(Clone, Copy)]
enum Sample {
    Count(u64),
    Seconds(f64),
}

fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    series: &[(Labels, Sample)],
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in series {
        let encoder = family.encode_family(labels)?;
        match (kind, *value) {
            (MetricType::Counter, Sample::Count(n)) => ConstCounter::new(n).encode(encoder)?,
            (MetricType::Counter, Sample::Seconds(s)) => ConstCounter::new(s).encode(encoder)?,
            (_, Sample::Count(n)) => {
                ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX)).encode(encoder)?
            }
            (_, Sample::Seconds(s)) => ConstGauge::new(s).encode(encoder)?,
        }
    }
    Ok(())
}

impl Collector for GraphMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let slots: Vec<((String, String), Arc<GraphSlot>)> = self
            .graphs()
            .iter()
            .map(|(key, slot)| (key.clone(), slot.clone()))
            .collect();
        let mut fires = Vec::new();
        let mut restarts = Vec::new();
        let mut pending = Vec::new();
        let mut backpressure = Vec::new();
        let mut events = Vec::new();
        let mut health = Vec::new();
        for ((tenant, graph), slot) in &slots {
            let status = slot.status();
            let labels = || -> Labels {
                vec![
                    ("tenant", tenant.clone()),
                    ("graph", graph.clone()),
                    ("reactor", graph.clone()),
                ]
            };
            let mut fired = labels();
            fired.push((
                "strategy",
                match status.declaration.reactor.input_strategy {
                    cloacina_contract::manifest::InputStrategy::Sequential => "sequential".into(),
                    _ => status.declaration.reactor.reaction_mode.as_str().into(),
                },
            ));
            fires.push((fired, Sample::Count(status.fires)));
            let mut restarted = labels();
            restarted.push(("component", "reactor".into()));
            restarts.push((restarted, Sample::Count(u64::from(status.restarts))));
            pending.push((labels(), Sample::Count(status.pending_events)));
            backpressure.push((labels(), Sample::Seconds(slot.backpressure().as_secs_f64())));
            for (accumulator, count) in slot.events_by_accumulator() {
                let kind = status
                    .declaration
                    .accumulator(&accumulator)
                    .map_or("unknown", |a| a.kind.as_str());
                events.push((
                    vec![
                        ("tenant", tenant.clone()),
                        ("graph", graph.clone()),
                        ("accumulator", accumulator),
                        ("kind", kind.into()),
                    ],
                    Sample::Count(count),
                ));
            }
            let mut state = labels();
            let up = matches!(
                status.health,
                crate::ReactorHealth::Live | crate::ReactorHealth::Degraded { .. }
            );
            state.push(("component", "reactor".into()));
            health.push((state, Sample::Count(u64::from(up))));
        }
        family(
            &mut encoder,
            "cloacina_reactor_fires",
            "Graph firings (kept across restarts)",
            MetricType::Counter,
            &fires,
        )?;
        family(
            &mut encoder,
            "cloacina_supervisor_restarts",
            "Reactor restarts by the supervisor since the graph was loaded here",
            MetricType::Counter,
            &restarts,
        )?;
        family(
            &mut encoder,
            "cloacina_accumulator_events",
            "Events accepted (committed) per accumulator since the graph was loaded here",
            MetricType::Counter,
            &events,
        )?;
        family(
            &mut encoder,
            "cloacina_graph_pending_events",
            "Accepted events not yet consumed by a firing or checkpoint",
            MetricType::Gauge,
            &pending,
        )?;
        family(
            &mut encoder,
            "cloacina_graph_backpressure_seconds",
            "Time producers waited for room in the graph",
            MetricType::Counter,
            &backpressure,
        )?;
        family(
            &mut encoder,
            "cloacina_component_health",
            "1 when the reactor is live, 0 while starting, restarting or crashed",
            MetricType::Gauge,
            &health,
        )
    }
}
