//! What every part of the runtime shares about one graph: its current
//! specification, the way into its reactor, its backpressure permits, its
//! sequence counter and the status the health routes read (a plain mutex,
//! never held across an await, so a crash-looping graph never blocks a
//! reader).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use cloacina_contract::manifest::{AccumulatorKind, ComputationGraphDeclaration, TaskDeclaration};
use cloacina_loader::Plugin;
use cloacina_runtime::PackageRef;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::GraphError;
use crate::model::{
    AccumulatorHealth, AccumulatorStatus, CommandReply, GraphCommand, GraphStatus, InboxEvent,
    ReactorHealth,
};

/// A graph as loaded: its declaration, its package and the plugin whose
/// tasks are its nodes.
pub(crate) struct GraphSpec {
    pub declaration: ComputationGraphDeclaration,
    pub package: PackageRef,
    pub plugin: Arc<dyn Plugin>,
    /// The node tasks' declarations (retry policy, timeout).
    pub tasks: HashMap<String, TaskDeclaration>,
}

/// What a reactor is sent.
pub(crate) enum ReactorInput {
    /// Committed events, in sequence order.
    Events(Vec<InboxEvent>),
    /// Another host appended to the inbox: read what is new.
    InboxChanged,
    Command(
        GraphCommand,
        oneshot::Sender<Result<CommandReply, GraphError>>,
    ),
    /// Fault injection: the reactor panics (tests and the restart bench).
    Panic,
}

#[derive(Debug, Clone)]
struct Status {
    health: ReactorHealth,
    restarts: u32,
    paused: bool,
    fires: i64,
    last_fired_at: Option<i64>,
    polling: BTreeMap<String, AccumulatorHealth>,
}

/// Shown by name only (its parts are shared state, not a value).
impl std::fmt::Debug for GraphSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphSlot")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

pub(crate) struct GraphSlot {
    name: String,
    spec: RwLock<Arc<GraphSpec>>,
    reactor: Mutex<Option<mpsc::UnboundedSender<ReactorInput>>>,
    permits: Arc<Semaphore>,
    /// Set when the graph stops for good on this runtime.
    retired: std::sync::atomic::AtomicBool,
    /// Permits taken by events accepted here and not yet given back: what
    /// may be given back (a reactor that took over consumes events other
    /// hosts accepted, which took no permit here).
    held: AtomicUsize,
    pending: AtomicI64,
    backpressure_ns: AtomicU64,
    /// Committed events per accumulator, since loaded here.
    events: Mutex<BTreeMap<String, u64>>,
    metrics: crate::GraphMetrics,
    status: Mutex<Status>,
}

impl GraphSlot {
    pub fn new(spec: GraphSpec, max_pending: usize, metrics: crate::GraphMetrics) -> Self {
        GraphSlot {
            name: spec.declaration.name.to_string(),
            spec: RwLock::new(Arc::new(spec)),
            reactor: Mutex::new(None),
            permits: Arc::new(Semaphore::new(max_pending)),
            retired: std::sync::atomic::AtomicBool::new(false),
            held: AtomicUsize::new(0),
            pending: AtomicI64::new(0),
            backpressure_ns: AtomicU64::new(0),
            events: Mutex::new(BTreeMap::new()),
            metrics,
            status: Mutex::new(Status {
                health: ReactorHealth::Starting,
                restarts: 0,
                paused: false,
                fires: 0,
                last_fired_at: None,
                polling: BTreeMap::new(),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn metrics(&self) -> &crate::GraphMetrics {
        &self.metrics
    }

    pub fn spec(&self) -> Arc<GraphSpec> {
        self.spec
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until the graph may take one more event: the bound on
    /// accepted, unconsumed events is what slows producers down. The permit
    /// is handed back if the caller gives up before queueing the event.
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, GraphError> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.is_retired() {
            return Err(GraphError::ShuttingDown);
        }
        let started = std::time::Instant::now();
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| GraphError::ShuttingDown)?;
        let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.backpressure_ns.fetch_add(waited, Ordering::Relaxed);
        Ok(permit)
    }

    /// The graph stopped for good here: producers waiting for room are
    /// refused, and the writer refuses events not yet written.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.permits.close();
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    /// A new version of the graph's package.
    pub fn replace_spec(&self, spec: GraphSpec) {
        *self.spec.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(spec);
    }

    /// Keeps `permit` until its event is consumed (or never commits).
    pub fn hold(&self, permit: OwnedSemaphorePermit) {
        permit.forget();
        self.held.fetch_add(1, Ordering::SeqCst);
    }

    /// Gives back permits: events consumed, or never committed; never more
    /// than are held, so the bound stays the bound.
    pub fn release(&self, events: usize) {
        if events == 0 {
            return;
        }
        let given = self
            .held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                Some(held.saturating_sub(events))
            })
            .map_or(0, |held| held.min(events));
        if given > 0 {
            self.permits.add_permits(given);
        }
    }

    /// Gives back every permit held: no reactor here will consume the
    /// events they stand for (the graph runs on another host now).
    pub fn release_all(&self) {
        let held = self.held.swap(0, Ordering::SeqCst);
        if held > 0 {
            self.permits.add_permits(held);
        }
    }

    /// The events waiting in the inbox, as a starting reactor found them.
    pub fn set_pending(&self, events: usize) {
        self.pending
            .store(i64::try_from(events).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// How long producers have waited for this graph, in all.
    pub fn backpressure(&self) -> Duration {
        Duration::from_nanos(self.backpressure_ns.load(Ordering::Relaxed))
    }

    pub fn consumed(&self, events: usize) {
        let events_i64 = i64::try_from(events).unwrap_or(i64::MAX);
        let _ = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |pending| {
                Some((pending - events_i64).max(0))
            });
        self.release(events);
    }

    /// Committed events for the reactor. When none runs here (it is
    /// restarting, or another host owns the graph), they wait in the inbox
    /// for the next reactor, and the producers' permits are given back:
    /// no reactor here will consume them.
    pub fn deliver(&self, events: Vec<InboxEvent>) {
        {
            let mut counts = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            for event in &events {
                *counts.entry(event.accumulator.clone()).or_default() += 1;
            }
        }
        let count = events.len();
        let reactor = self.reactor.lock().unwrap_or_else(PoisonError::into_inner);
        match &*reactor {
            Some(sender) => {
                self.pending
                    .fetch_add(i64::try_from(count).unwrap_or(0), Ordering::Relaxed);
                let _ = sender.send(ReactorInput::Events(events));
            }
            None => {
                drop(reactor);
                self.release(count);
            }
        }
    }

    /// Committed events per accumulator, since loaded here.
    pub fn events_by_accumulator(&self) -> Vec<(String, u64)> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, count)| (name.clone(), *count))
            .collect()
    }

    pub fn attach(&self, reactor: mpsc::UnboundedSender<ReactorInput>) {
        *self.reactor.lock().unwrap_or_else(PoisonError::into_inner) = Some(reactor);
    }

    pub fn detach(&self) {
        *self.reactor.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub fn send(&self, input: ReactorInput) -> Result<(), GraphError> {
        let reactor = self.reactor.lock().unwrap_or_else(PoisonError::into_inner);
        match &*reactor {
            Some(sender) if sender.send(input).is_ok() => Ok(()),
            _ => Err(GraphError::NotRunning(self.name.clone())),
        }
    }

    fn with_status<T>(&self, change: impl FnOnce(&mut Status) -> T) -> T {
        change(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn set_health(&self, health: ReactorHealth) {
        self.with_status(|status| status.health = health);
    }

    pub fn set_restarts(&self, restarts: u32) {
        self.with_status(|status| status.restarts = restarts);
    }

    pub fn set_counters(&self, paused: bool, fires: i64, last_fired_at: Option<i64>) {
        self.with_status(|status| {
            status.paused = paused;
            status.fires = fires;
            status.last_fired_at = last_fired_at;
        });
    }

    pub fn set_polling(&self, accumulator: &str, health: AccumulatorHealth) {
        self.with_status(|status| {
            status.polling.insert(accumulator.to_owned(), health);
        });
    }

    pub fn status(&self) -> GraphStatus {
        let spec = self.spec();
        let status = self.with_status(|status| status.clone());
        // Events are accepted by every host, the owner's or not.
        let live = matches!(
            status.health,
            ReactorHealth::Live | ReactorHealth::Degraded { .. } | ReactorHealth::Remote { .. }
        );
        let accumulators = spec
            .declaration
            .accumulators
            .iter()
            .map(|accumulator| AccumulatorStatus {
                name: accumulator.name.to_string(),
                graph: self.name.clone(),
                kind: accumulator.kind,
                status: if !live {
                    AccumulatorHealth::Starting
                } else if accumulator.kind == AccumulatorKind::State {
                    // Fed by the graph itself, never by producers.
                    AccumulatorHealth::Live
                } else if accumulator.kind == AccumulatorKind::Polling {
                    status
                        .polling
                        .get(accumulator.name.as_str())
                        .copied()
                        .unwrap_or(AccumulatorHealth::Starting)
                } else {
                    AccumulatorHealth::SocketOnly
                },
            })
            .collect();
        GraphStatus {
            name: self.name.clone(),
            package: spec.package.name.clone(),
            version: spec.package.version.to_string(),
            health: status.health,
            accumulators,
            paused: status.paused,
            fires: u64::try_from(status.fires).unwrap_or(0),
            last_fired_at_ms: status.last_fired_at,
            pending_events: u64::try_from(self.pending.load(Ordering::Relaxed)).unwrap_or(0),
            restarts: status.restarts,
            declaration: spec.declaration.clone(),
        }
    }
}
