//! [`GraphRuntime`]: one tenant's computation graphs on this host.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use cloacina_contract::Declaration;
use cloacina_database::{Database, clock};
use cloacina_loader::Plugin;
use cloacina_runtime::{PackageRef, Runner};
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::GraphError;
use crate::GraphMetrics;
use crate::ingest::{self, Accepted};
use crate::model::{
    AccumulatorStatus, CommandReply, FiringRecord, GraphCommand, GraphStatus, ReactorHealth,
};
use crate::slot::{GraphSlot, GraphSpec, ReactorInput};
use crate::supervisor::{Supervised, Supervision, supervise};
use crate::writer::{self, WriteQueue};

/// How the graph runtime behaves.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Accepted events a graph may hold unconsumed before producers wait.
    pub max_pending: usize,
    pub supervision: Supervision,
    /// Shared by every tenant's runtime of a host; the server exposes it.
    pub metrics: GraphMetrics,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            max_pending: 100_000,
            supervision: Supervision::default(),
            metrics: GraphMetrics::default(),
        }
    }
}

/// One tenant's computation graphs: registered from packages, one
/// supervised reactor each, events accepted durably. Cheap to clone.
#[derive(Clone)]
pub struct GraphRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GraphRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphRuntime")
            .field("graphs", &self.names())
            .finish_non_exhaustive()
    }
}

struct Running {
    slot: Arc<GraphSlot>,
    stop: watch::Sender<bool>,
    /// None while a new version's reactor is being started.
    supervisor: Option<JoinHandle<()>>,
}

struct Inner {
    db: Database,
    runner: Runner,
    config: GraphConfig,
    writer: WriteQueue,
    writer_task: Mutex<Option<JoinHandle<()>>>,
    graphs: Mutex<BTreeMap<String, Running>>,
}

impl GraphRuntime {
    /// The graph runtime of `runner`'s tenant: its tables are created and
    /// its writer started.
    pub async fn start(runner: &Runner, config: GraphConfig) -> Result<Self, GraphError> {
        let db = runner.database().clone();
        crate::schema::migrate(&db).await?;
        let (writer, writer_task) = writer::spawn(db.clone());
        Ok(GraphRuntime {
            inner: Arc::new(Inner {
                db,
                runner: runner.clone(),
                config,
                writer,
                writer_task: Mutex::new(Some(writer_task)),
                graphs: Mutex::new(BTreeMap::new()),
            }),
        })
    }

    fn graphs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.inner
            .graphs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn names(&self) -> Vec<String> {
        self.graphs().keys().cloned().collect()
    }

    fn slot(&self, graph: &str) -> Result<Arc<GraphSlot>, GraphError> {
        self.graphs()
            .get(graph)
            .map(|running| running.slot.clone())
            .ok_or_else(|| GraphError::UnknownGraph(graph.to_owned()))
    }

    /// Starts the graphs a loaded package declares. A graph another
    /// package declares is refused; a newer version of the same package
    /// takes its graphs over (state and pending events kept). Returns the
    /// graphs started.
    pub async fn register(
        &self,
        package: &PackageRef,
        declaration: &Declaration,
        plugin: Arc<dyn Plugin>,
    ) -> Result<Vec<String>, GraphError> {
        {
            let graphs = self.graphs();
            for graph in &declaration.computation_graphs {
                if let Some(running) = graphs.get(graph.name.as_str()) {
                    let owner = running.slot.spec().package.clone();
                    if owner.name != package.name {
                        return Err(GraphError::Owned {
                            graph: graph.name.to_string(),
                            owner: format!("{} {}", owner.name, owner.version),
                        });
                    }
                }
            }
        }
        let tasks: HashMap<String, _> = declaration
            .tasks
            .iter()
            .map(|task| (task.id.to_string(), task.clone()))
            .collect();
        let mut started = Vec::new();
        for graph in &declaration.computation_graphs {
            let name = graph.name.to_string();
            check_backpressure(graph, self.inner.config.max_pending)?;
            let spec = GraphSpec {
                declaration: graph.clone(),
                package: package.clone(),
                plugin: plugin.clone(),
                tasks: tasks.clone(),
            };
            crate::store::ensure_state(
                &self.inner.db,
                &name,
                &package.name,
                &package.version.to_string(),
                clock::now_ms(),
            )
            .await?;
            let current = self.graphs().get(&name).map(|r| r.slot.clone());
            let slot = match current {
                Some(slot) if slot.spec().package.version > package.version => continue,
                Some(slot) => {
                    // A new version of the same package: the same slot (its
                    // sequence numbers, permits and producers) gets a new
                    // reactor on the new spec, which starts from the
                    // database, so state and pending events carry over.
                    self.stop_reactor(&name).await;
                    slot.replace_spec(spec);
                    slot
                }
                None => {
                    let last_seq = crate::store::last_seq(&self.inner.db, &name).await?;
                    let pending = crate::store::pending(&self.inner.db, &name).await?;
                    let slot = Arc::new(GraphSlot::new(
                        spec,
                        self.inner.config.max_pending,
                        last_seq,
                        pending,
                        self.inner.config.metrics.clone(),
                    ));
                    self.inner
                        .config
                        .metrics
                        .add(self.inner.runner.tenant().as_str(), slot.clone());
                    slot
                }
            };
            let (stop, supervisor) = self.supervise(&slot);
            self.graphs().insert(
                name.clone(),
                Running {
                    slot,
                    stop,
                    supervisor: Some(supervisor),
                },
            );
            tracing::info!(tenant = %self.inner.runner.tenant(), graph = %name, package = %package.name, version = %package.version, "graph started");
            started.push(name);
        }
        Ok(started)
    }

    /// Starts a supervisor (and its first reactor) for `slot`.
    fn supervise(&self, slot: &Arc<GraphSlot>) -> (watch::Sender<bool>, JoinHandle<()>) {
        let (stop, stopped) = watch::channel(false);
        let (sender, first) = tokio::sync::mpsc::unbounded_channel();
        slot.attach(sender);
        let supervisor = tokio::spawn(supervise(
            Supervised {
                slot: slot.clone(),
                writer: self.inner.writer.clone(),
                db: self.inner.db.clone(),
                runner: self.inner.runner.clone(),
                policy: self.inner.config.supervision.clone(),
            },
            first,
            stopped,
        ));
        (stop, supervisor)
    }

    /// Stops `graph`'s reactor (it saves what it folded), keeping the graph.
    async fn stop_reactor(&self, graph: &str) {
        let stopping = self.graphs().get_mut(graph).and_then(|running| {
            let _ = running.stop.send(true);
            running.supervisor.take()
        });
        if let Some(supervisor) = stopping {
            let _ = supervisor.await;
        }
    }

    /// Stops the graphs this package version runs (not those a newer
    /// version took over). Their state and pending events stay in the
    /// database for the next version.
    pub async fn unregister(&self, package: &PackageRef, declaration: &Declaration) {
        for graph in &declaration.computation_graphs {
            let runs_it = self
                .graphs()
                .get(graph.name.as_str())
                .is_some_and(|r| r.slot.spec().package == *package);
            if runs_it {
                self.stop(graph.name.as_str()).await;
                tracing::info!(graph = %graph.name, package = %package.name, version = %package.version, "graph stopped");
            }
        }
    }

    /// Stops `graph` for good on this runtime: its reactor saves and
    /// ends, producers waiting for room are refused, and events not yet
    /// written are refused (their producers resend).
    async fn stop(&self, graph: &str) {
        self.stop_reactor(graph).await;
        let Some(running) = self.graphs().remove(graph) else {
            return;
        };
        running.slot.retire();
        self.inner
            .config
            .metrics
            .remove(self.inner.runner.tenant().as_str(), graph);
    }

    /// Targets of an event pushed to `accumulator`: every graph that
    /// declares an accumulator of that name that takes events.
    fn targets(&self, accumulator: &str) -> Vec<(Arc<GraphSlot>, String)> {
        self.graphs()
            .values()
            .filter(|running| {
                running
                    .slot
                    .spec()
                    .declaration
                    .accumulator(accumulator)
                    .is_some_and(|a| a.takes_events())
            })
            .map(|running| (running.slot.clone(), accumulator.to_owned()))
            .collect()
    }

    /// Whether some graph takes events on `accumulator`.
    pub fn takes_events(&self, accumulator: &str) -> bool {
        !self.targets(accumulator).is_empty()
    }

    /// Accepts an event for `accumulator`: waits while a target graph is
    /// full (backpressure), then queues it; the returned [`Accepted`]
    /// resolves once it is durable. Producers that pipeline use this.
    pub async fn accept(&self, accumulator: &str, event: Value) -> Result<Accepted, GraphError> {
        let targets = self.targets(accumulator);
        if targets.is_empty() {
            return Err(GraphError::UnknownAccumulator(accumulator.to_owned()));
        }
        ingest::accept(&self.inner.writer, targets, event).await
    }

    /// Pushes an event and waits until it is durable; returns the number
    /// of graphs it went to.
    pub async fn push(&self, accumulator: &str, event: Value) -> Result<usize, GraphError> {
        self.accept(accumulator, event).await?.durable().await
    }

    /// Sends `command` to `graph`'s reactor and waits for its effect.
    pub async fn command(
        &self,
        graph: &str,
        command: GraphCommand,
    ) -> Result<CommandReply, GraphError> {
        let slot = self.slot(graph)?;
        let (reply, answer) = oneshot::channel();
        slot.send(ReactorInput::Command(command, reply))?;
        answer
            .await
            .map_err(|_| GraphError::NotRunning(graph.to_owned()))?
    }

    /// Fault injection: makes `graph`'s reactor panic (to test and measure
    /// supervision).
    #[doc(hidden)]
    pub fn inject_panic(&self, graph: &str) -> Result<(), GraphError> {
        self.slot(graph)?.send(ReactorInput::Panic)
    }

    /// Every graph this host runs for the tenant, by name.
    pub fn statuses(&self) -> Vec<GraphStatus> {
        let slots: Vec<Arc<GraphSlot>> = self.graphs().values().map(|r| r.slot.clone()).collect();
        slots.iter().map(|slot| slot.status()).collect()
    }

    pub fn status(&self, graph: &str) -> Option<GraphStatus> {
        self.slot(graph).ok().map(|slot| slot.status())
    }

    /// Every accumulator of every graph.
    pub fn accumulators(&self) -> Vec<AccumulatorStatus> {
        self.statuses()
            .into_iter()
            .flat_map(|status| status.accumulators)
            .collect()
    }

    /// Graphs past their restart budget.
    pub fn crashed(&self) -> Vec<String> {
        self.statuses()
            .into_iter()
            .filter(|s| matches!(s.health, ReactorHealth::Crashed { .. }))
            .map(|s| s.name)
            .collect()
    }

    /// How long producers have waited for `graph` (backpressure), in all.
    pub fn backpressure(&self, graph: &str) -> Option<std::time::Duration> {
        self.slot(graph).ok().map(|slot| slot.backpressure())
    }

    /// `graph`'s latest firings, newest first (at most `limit`).
    pub async fn firings(&self, graph: &str, limit: u32) -> Result<Vec<FiringRecord>, GraphError> {
        self.slot(graph)?;
        crate::store::firings(&self.inner.db, graph, i64::from(limit)).await
    }

    /// Stops every reactor at once (each saves what it folded), then the
    /// writer.
    pub async fn shutdown(&self) {
        let stopping: Vec<JoinHandle<()>> = self
            .graphs()
            .values_mut()
            .filter_map(|running| {
                let _ = running.stop.send(true);
                running.supervisor.take()
            })
            .collect();
        for supervisor in stopping {
            let _ = supervisor.await;
        }
        for name in self.names() {
            self.stop(&name).await;
        }
        let writer = self
            .inner
            .writer_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            writer.abort();
        }
    }
}

/// A batch that must fill before it flushes holds its events' permits: it
/// must fit within the bound on pending events, or producers would wait
/// for ever.
fn check_backpressure(
    graph: &cloacina_contract::manifest::ComputationGraphDeclaration,
    max_pending: usize,
) -> Result<(), GraphError> {
    for accumulator in &graph.accumulators {
        if let (Some(size), None) = (accumulator.max_buffer_size, accumulator.flush_interval_ms)
            && size as usize >= max_pending
        {
            return Err(GraphError::Registration {
                graph: graph.name.to_string(),
                reason: format!(
                    "batch `{}` flushes only at {size} events, but the host holds at most {max_pending} pending events per graph: add `flush_interval_ms` or lower the size",
                    accumulator.name
                ),
            });
        }
    }
    Ok(())
}
