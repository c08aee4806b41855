//! [`GraphRuntime`]: one tenant's computation graphs on this host.
//!
//! Every host that loads a graph accepts its events and commands; the
//! reactor runs on the one host holding the graph's lease (`lease.rs`). A
//! lease keeper renews this host's leases, claims free or expired ones
//! (spreading graphs over the live hosts), and stops a reactor whose lease
//! was taken. On PostgreSQL a listener hears the other hosts: appends for
//! a graph run here, released leases, commands for the owner, replies.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cloacina_contract::Declaration;
use cloacina_database::{Database, DatabaseUrl, Dialect, clock};
use cloacina_loader::Plugin;
use cloacina_runtime::{PackageRef, Runner};
use serde_json::Value;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

use crate::GraphError;
use crate::GraphMetrics;
use crate::ingest::{self, Accepted};
use crate::lease::Lease;
use crate::model::{
    AccumulatorStatus, CommandReply, FiringRecord, GraphCommand, GraphStatus, ReactorHealth,
};
use crate::notify;
use crate::slot::{GraphSlot, GraphSpec, ReactorInput};
use crate::supervisor::{Supervised, Supervision, supervise};
use crate::writer::{self, WriteQueue, WriterSetup};
use crate::{keeper, remote};

/// How the graph runtime behaves.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Accepted events a graph may hold unconsumed before producers wait.
    pub max_pending: usize,
    pub supervision: Supervision,
    /// Shared by every tenant's runtime of a host; the server exposes it.
    pub metrics: GraphMetrics,
    /// How long a graph's lease lasts unrenewed: after `kill -9` of its
    /// owner, another host takes the graph over within this (plus one
    /// renewal period). Renewed every third of it.
    pub lease_ttl: Duration,
    /// How long a command sent to another host's reactor waits for it.
    pub remote_command_timeout: Duration,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            max_pending: 100_000,
            supervision: Supervision::default(),
            metrics: GraphMetrics::default(),
            lease_ttl: Duration::from_secs(5),
            remote_command_timeout: Duration::from_secs(10),
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

pub(crate) struct Running {
    pub slot: Arc<GraphSlot>,
    /// Some while this host holds the graph's lease and runs its reactor.
    pub owned: Option<Owned>,
}

pub(crate) struct Owned {
    pub lease: Lease,
    stop: watch::Sender<bool>,
    /// None while the reactor is being stopped or replaced.
    pub supervisor: Option<JoinHandle<()>>,
}

pub(crate) struct Inner {
    pub(crate) db: Database,
    pub(crate) runner: Runner,
    pub(crate) config: GraphConfig,
    /// This host (the runner's host id): the lease owner it writes.
    pub(crate) host: String,
    /// The tenant's graph channel (PostgreSQL only).
    pub(crate) channel: Option<String>,
    pub(crate) writer: WriteQueue,
    pub(crate) background: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) graphs: Mutex<BTreeMap<String, Running>>,
    /// Wakes the lease keeper (a lease released, a graph registered).
    pub(crate) keeper: Arc<Notify>,
    /// Held while a reactor is started or stopped here (claims, handovers,
    /// upgrades, removal, shutdown), so no two of them interleave.
    pub(crate) ownership: tokio::sync::Mutex<()>,
    /// Hosts that announced they are stopping: not counted as live when
    /// spreading graphs.
    pub(crate) leaving: Mutex<HashMap<String, Instant>>,
    /// Since when each graph was seen free, for the placement rule.
    pub(crate) free_since: Mutex<HashMap<String, Instant>>,
    /// When each graph was last handed over to spread graphs.
    pub(crate) rebalanced: Mutex<HashMap<String, Instant>>,
    pub(crate) remote: remote::Waiters,
    pub(crate) stopping: AtomicBool,
}

impl GraphRuntime {
    /// The graph runtime of `runner`'s tenant: its tables are created and
    /// its writer started.
    pub async fn start(runner: &Runner, config: GraphConfig) -> Result<Self, GraphError> {
        let db = runner.database().clone();
        crate::schema::migrate(&db).await?;
        let host = runner.host_id().to_owned();
        let channel = (db.dialect() == Dialect::Postgres).then(|| notify::channel(&db));
        let (writer, writer_task) = writer::spawn(WriterSetup {
            db: db.clone(),
            host: host.clone(),
            channel: channel.clone(),
            metrics: config.metrics.clone(),
        });
        let runtime = GraphRuntime {
            inner: Arc::new(Inner {
                db,
                runner: runner.clone(),
                config,
                host,
                channel,
                writer,
                background: Mutex::new(vec![writer_task]),
                graphs: Mutex::new(BTreeMap::new()),
                keeper: Arc::new(Notify::new()),
                ownership: tokio::sync::Mutex::new(()),
                leaving: Mutex::new(HashMap::new()),
                free_since: Mutex::new(HashMap::new()),
                rebalanced: Mutex::new(HashMap::new()),
                remote: remote::Waiters::default(),
                stopping: AtomicBool::new(false),
            }),
        };
        let mut background = vec![keeper::spawn(
            Arc::downgrade(&runtime.inner),
            runtime.inner.keeper.clone(),
            runtime.inner.config.lease_ttl,
        )];
        if let DatabaseUrl::Postgres(url) = runtime.inner.db.url() {
            background.push(keeper::listen(url.clone(), Arc::downgrade(&runtime.inner)));
        }
        runtime.background().extend(background);
        Ok(runtime)
    }

    fn background(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.inner
            .background
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        GraphRuntime { inner }
    }

    pub(crate) fn graphs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.inner
            .graphs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.graphs().keys().cloned().collect()
    }

    pub(crate) fn slot(&self, graph: &str) -> Result<Arc<GraphSlot>, GraphError> {
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
        // Graphs new to this runtime, claimed together below.
        let mut fresh = Vec::new();
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
            match current {
                Some(slot) if slot.spec().package.version > package.version => continue,
                Some(slot) => {
                    // A new version of the same package: the same slot (its
                    // permits and producers) takes the new spec; a reactor
                    // running here is restarted on it under the same lease,
                    // starting from the database, so state and pending
                    // events carry over.
                    let _ownership = self.inner.ownership.lock().await;
                    let lease = self.stop_reactor(&name).await;
                    slot.replace_spec(spec);
                    if let Some(lease) = lease
                        && !self.inner.stopping.load(Ordering::SeqCst)
                    {
                        self.run_reactor(&name, &slot, lease);
                    }
                }
                None => {
                    let slot = Arc::new(GraphSlot::new(
                        spec,
                        self.inner.config.max_pending,
                        self.inner.config.metrics.clone(),
                    ));
                    self.inner
                        .config
                        .metrics
                        .add(self.inner.runner.tenant().as_str(), slot.clone());
                    self.graphs().insert(
                        name.clone(),
                        Running {
                            slot: slot.clone(),
                            owned: None,
                        },
                    );
                    fresh.push(name.clone());
                }
            }
            tracing::info!(tenant = %self.inner.runner.tenant(), graph = %name, package = %package.name, version = %package.version, "graph started");
            started.push(name);
        }
        // Claimed here and now when free (always on SQLite), in one pass:
        // commands sent right after registration find the reactors.
        self.claim(&fresh).await;
        Ok(started)
    }

    /// Starts a supervisor (and its first reactor) for `slot` under
    /// `lease`, and records that this host runs it.
    pub(crate) fn run_reactor(&self, graph: &str, slot: &Arc<GraphSlot>, lease: Lease) {
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
                lease: lease.clone(),
            },
            first,
            stopped,
        ));
        if let Some(running) = self.graphs().get_mut(graph) {
            running.owned = Some(Owned {
                lease,
                stop,
                supervisor: Some(supervisor),
            });
        }
    }

    /// Stops `graph`'s reactor here (it saves what it folded, if its lease
    /// still holds), keeping the graph; returns the lease it ran under.
    pub(crate) async fn stop_reactor(&self, graph: &str) -> Option<Lease> {
        let stopping = self.graphs().get_mut(graph).and_then(|running| {
            let owned = running.owned.take()?;
            let _ = owned.stop.send(true);
            Some((owned.lease, owned.supervisor))
        });
        let (lease, supervisor) = stopping?;
        if let Some(supervisor) = supervisor {
            let _ = supervisor.await;
        }
        Some(lease)
    }

    /// Stops the reactor here and gives the lease up, announcing it so
    /// another host takes the graph over at once.
    pub(crate) async fn hand_over(&self, graph: &str) {
        let _ownership = self.inner.ownership.lock().await;
        self.hand_over_locked(graph).await;
    }

    /// [`Self::hand_over`], the ownership lock held.
    async fn hand_over_locked(&self, graph: &str) {
        let Some(lease) = self.stop_reactor(graph).await else {
            return;
        };
        if let Ok(slot) = self.slot(graph) {
            slot.set_health(ReactorHealth::Remote { owner: None });
            // No reactor here consumes what producers here sent.
            slot.release_all();
        }
        match crate::lease::release(&self.inner.db, graph, &lease).await {
            Ok(true) => {
                tracing::info!(graph, epoch = lease.epoch, "graph lease released");
                self.announce(notify::Note::Released {
                    sender: self.inner.host.clone(),
                    graph: graph.to_owned(),
                })
                .await;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(
                    graph,
                    error = &error as &dyn std::error::Error,
                    "cannot release a graph's lease; it expires instead"
                )
            }
        }
    }

    /// Sends `note` to the other hosts (PostgreSQL), best effort.
    pub(crate) async fn announce(&self, note: notify::Note) {
        let Some(channel) = &self.inner.channel else {
            return;
        };
        let sent = async {
            let mut connection = self.inner.db.pool().acquire().await?;
            notify::send(&mut connection, channel, &note).await
        };
        if let Err(error) = sent.await {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                ?note,
                "cannot notify the other hosts"
            );
        }
    }

    /// Tries to claim each of `graphs` not run here (see `keeper.rs` for
    /// the placement rule); starts the reactor of each one claimed.
    pub(crate) async fn claim(&self, graphs: &[String]) {
        let _ownership = self.inner.ownership.lock().await;
        keeper::claim(self, graphs).await;
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
        let _ownership = self.inner.ownership.lock().await;
        self.hand_over_locked(graph).await;
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

    /// Sends `command` to `graph`'s reactor, wherever it runs, and waits
    /// for its effect.
    pub async fn command(
        &self,
        graph: &str,
        command: GraphCommand,
    ) -> Result<CommandReply, GraphError> {
        let runs_here = self
            .graphs()
            .get(graph)
            .ok_or_else(|| GraphError::UnknownGraph(graph.to_owned()))?
            .owned
            .is_some();
        if runs_here || self.inner.channel.is_none() {
            return self.local_command(graph, command).await;
        }
        remote::send(self, graph, command).await
    }

    /// Sends `command` to the reactor running here.
    pub(crate) async fn local_command(
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

    /// Fault injection: this runtime stops as a killed process would, with
    /// no save and no release: its leases stay until they expire (to test
    /// and measure failover in one process).
    #[doc(hidden)]
    pub fn abandon(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        for running in self.graphs().values_mut() {
            if let Some(owned) = running.owned.take()
                && let Some(supervisor) = owned.supervisor
            {
                supervisor.abort();
            }
            running.slot.detach();
        }
        for task in self.background().drain(..) {
            task.abort();
        }
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

    /// Every graph of the tenant whose lease is held, with its owner host.
    pub async fn owners(&self) -> Result<Vec<(String, String)>, GraphError> {
        Ok(crate::lease::ownership(&self.inner.db, clock::now_ms())
            .await?
            .into_iter()
            .filter_map(|graph| graph.owner.map(|owner| (graph.graph, owner)))
            .collect())
    }

    /// The graphs whose reactor runs on this host.
    pub fn owned_here(&self) -> Vec<String> {
        self.graphs()
            .iter()
            .filter(|(_, running)| running.owned.is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// `graph`'s latest firings, newest first (at most `limit`).
    pub async fn firings(&self, graph: &str, limit: u32) -> Result<Vec<FiringRecord>, GraphError> {
        self.slot(graph)?;
        crate::store::firings(&self.inner.db, graph, i64::from(limit)).await
    }

    /// Stops every reactor at once (each saves what it folded), hands
    /// their leases over, then stops the writer and the keeper.
    pub async fn shutdown(&self) {
        self.announce(notify::Note::Leaving {
            sender: self.inner.host.clone(),
        })
        .await;
        let stopping: Vec<JoinHandle<()>> = {
            // Under the lock: no claim starts a reactor after this.
            let _ownership = self.inner.ownership.lock().await;
            self.inner.stopping.store(true, Ordering::SeqCst);
            self.graphs()
                .values_mut()
                .filter_map(|running| {
                    let owned = running.owned.as_mut()?;
                    let _ = owned.stop.send(true);
                    owned.supervisor.take()
                })
                .collect()
        };
        for supervisor in stopping {
            let _ = supervisor.await;
        }
        for name in self.names() {
            self.stop(&name).await;
        }
        let _ = sqlx::query("DELETE FROM graph_hosts WHERE host = $1")
            .bind(&self.inner.host)
            .execute(self.inner.db.pool())
            .await;
        let background: Vec<JoinHandle<()>> = self.background().drain(..).collect();
        for task in background {
            task.abort();
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
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
