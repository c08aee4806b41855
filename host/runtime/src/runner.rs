//! The embedded API: a runner on one tenant's database.
//!
//! ```no_run
//! # async fn demo(workflow: cloacina_runtime::Workflow) -> Result<(), cloacina_runtime::RuntimeError> {
//! use cloacina_runtime::Runner;
//! let runner = Runner::new("sqlite://app.db").await?;
//! runner.register_workflow(workflow)?;
//! let result = runner.execute("etl", serde_json::json!({"input": [1, 2, 3]})).await?;
//! println!("{} -> {:?}", result.status, result.final_context);
//! runner.shutdown().await;
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloacina_contract::Declaration;
use cloacina_contract::ownership::WorkflowOwned;
use cloacina_loader::Plugin;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::completions::Completions;
use crate::database::{Database, DatabaseUrl, Dialect};
use crate::engine::notify::RemoteEvents;
use crate::engine::{
    self, Command, EngineStats, Outlets, StartGuard, StartRequest, Writer, WriterConfig,
};
use crate::follow::EventFollower;
use crate::model::{Event, ExecutionId, ExecutionResult, ExecutionStatus, HostRecord, TaskRecord};
use crate::schedule::{CronSchedule, Scheduler, Trigger};
use crate::workflow::{PackageRef, Workflow, WorkflowRegistry};
use crate::{RegistrationError, RuntimeError, TenantId, queries};

/// Who a host is, as its row in each tenant's `hosts` table says: the id
/// its task claims and its lease carry, and, for the hosts view, where it
/// serves and what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIdentity {
    /// Unique among the hosts of a database. The default is a fresh UUID,
    /// and a host should take a new one at every start: a restarted host
    /// that kept its id would find the claims of its former life looking
    /// alive, and those tasks would not run again. Two runners on one
    /// tenant's database need two ids (a cloned [`RunnerConfig`] carries
    /// the same one); runners of one process on different tenants may
    /// share one, as a server's do.
    pub id: String,
    /// Where the host can be reached (a server's bound address), if
    /// anywhere.
    pub address: Option<String>,
    /// The version of the program running the host.
    pub version: String,
}

impl Default for HostIdentity {
    fn default() -> Self {
        HostIdentity {
            id: uuid::Uuid::new_v4().to_string(),
            address: None,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// How a runner behaves.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub tenant: TenantId,
    /// This host, as the tenant's `hosts` table shows it.
    pub host: HostIdentity,
    /// Tasks this host runs at once.
    pub max_concurrent_tasks: usize,
    /// A host that has not renewed its lease for this long is presumed
    /// dead, and its running tasks run again elsewhere.
    pub lease_ttl: Duration,
    /// How long `shutdown` waits for running tasks before cancelling them.
    pub shutdown_grace: Duration,
    /// Live events kept for slow subscribers before they lag.
    pub event_buffer: usize,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            tenant: TenantId::public(),
            host: HostIdentity::default(),
            max_concurrent_tasks: 64,
            lease_ttl: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            event_buffer: 4096,
        }
    }
}

/// A durable workflow runner for one tenant. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    config: RunnerConfig,
    host_id: String,
    registry: Arc<WorkflowRegistry>,
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<Arc<Event>>,
    /// Other hosts' commits with events (PostgreSQL), for followers.
    remote_events: broadcast::Sender<RemoteEvents>,
    completions: Arc<Completions>,
    stats: Arc<EngineStats>,
    scheduler: Scheduler,
    background: Mutex<Vec<JoinHandle<()>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Runner {
    /// A runner on `url` (`sqlite://PATH` or `postgres://...`) for the
    /// public tenant, with default settings.
    pub async fn new(url: &str) -> Result<Self, RuntimeError> {
        Self::with_config(url, RunnerConfig::default()).await
    }

    /// Connects, migrates, takes a lease, recovers what a previous run
    /// left, and starts the engine.
    pub async fn with_config(url: &str, config: RunnerConfig) -> Result<Self, RuntimeError> {
        let db = crate::schema::open(url, &config.tenant).await?;
        let host_id = config.host.id.clone();
        engine::lease::register_host(&db, &config.host).await?;
        let registry = Arc::new(WorkflowRegistry::default());
        let (commands, receiver) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(config.event_buffer.max(16));
        let (remote_events, _) = broadcast::channel(config.event_buffer.max(16));
        let completions = Arc::new(Completions::default());
        let stats = Arc::new(EngineStats::default());
        let writer = Writer::new(
            db.clone(),
            WriterConfig {
                host_id: host_id.clone(),
                max_running: config.max_concurrent_tasks.max(1),
                lease_ttl: config.lease_ttl,
            },
            registry.clone(),
            receiver,
            commands.clone(),
            Outlets {
                events: events.clone(),
                completions: completions.clone(),
                stats: stats.clone(),
            },
        );
        // What a previous process left running: on SQLite nobody else can
        // hold it; on PostgreSQL only expired leases are taken back.
        let _ = commands.send(Command::Reap {
            all_but_me: db.dialect() == Dialect::Sqlite,
        });
        let writer = tokio::spawn(writer.run());
        let mut background = vec![engine::spawn_lease_keeper(
            db.clone(),
            config.host.clone(),
            config.lease_ttl,
            commands.clone(),
        )];
        if let DatabaseUrl::Postgres(url) = db.url() {
            background.push(engine::spawn_listener(
                url.clone(),
                crate::engine::notify::channel(&db),
                host_id.clone(),
                commands.clone(),
                completions.clone(),
                remote_events.clone(),
            ));
        }
        let scheduler = Scheduler::new(db.clone(), registry.clone(), commands.clone());
        tracing::info!(tenant = %config.tenant, host = %host_id, database = ?db.dialect(), "runner started");
        Ok(Runner {
            inner: Arc::new(Inner {
                db,
                config,
                host_id,
                registry,
                commands,
                events,
                remote_events,
                completions,
                stats,
                scheduler,
                background: Mutex::new(background),
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    pub fn tenant(&self) -> &TenantId {
        &self.inner.config.tenant
    }

    /// This process's host id (its lease in the `hosts` table).
    pub fn host_id(&self) -> &str {
        &self.inner.host_id
    }

    /// The engine's counters (transactions committed, commands applied).
    pub fn stats(&self) -> &EngineStats {
        &self.inner.stats
    }

    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// Makes `workflow` available to new executions (the highest version
    /// of a name wins; running executions keep theirs).
    pub fn register_workflow(&self, workflow: Workflow) -> Result<Arc<Workflow>, RuntimeError> {
        let workflow = Arc::new(workflow);
        self.inner.registry.insert(workflow.clone());
        self.wake();
        Ok(workflow)
    }

    /// Registers `workflow` as the one new executions of its name start
    /// on, whatever its version: every other version of the name is
    /// retired (running executions keep theirs). For definitions that are
    /// replaced by registering again, as embedded callers do.
    pub fn register_replacing(&self, workflow: Workflow) -> Arc<Workflow> {
        let workflow = Arc::new(workflow);
        self.inner.registry.insert_replacing(workflow.clone());
        self.wake();
        workflow
    }

    /// New workflows may have made waiting work runnable.
    fn wake(&self) {
        let _ = self.inner.commands.send(Command::Wake);
    }

    /// The package (and version) new executions of workflow `name` start
    /// on here, if any.
    pub fn workflow_owner(&self, name: &str) -> Option<PackageRef> {
        self.inner.registry.owner(name)
    }

    /// A workflow name belongs to one package: a new version of that
    /// package may take it over, another package may not. Checked before
    /// registering (all or nothing), and by callers that want to refuse a
    /// package before storing it.
    pub fn check_workflow_names<'a>(
        &self,
        package: &PackageRef,
        workflows: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), RegistrationError> {
        for workflow in workflows {
            if let Some(owner) = self.inner.registry.owner(workflow)
                && owner.name != package.name
            {
                return Err(WorkflowOwned {
                    workflow: workflow.to_owned(),
                    owner: format!("{} {}", owner.name, owner.version),
                    claimant: format!("{} {}", package.name, package.version),
                }
                .into());
            }
        }
        Ok(())
    }

    /// Registers everything a loaded package declares: its workflows, cron
    /// schedules and poll triggers. Returns the workflows' names. A
    /// workflow name another package owns is refused.
    pub async fn register_package(
        &self,
        package: PackageRef,
        declaration: &Declaration,
        plugin: Arc<dyn Plugin>,
    ) -> Result<Vec<String>, RuntimeError> {
        let workflows = declaration
            .workflows
            .iter()
            .map(|w| {
                Workflow::from_declaration(
                    declaration,
                    w.name.as_str(),
                    package.clone(),
                    plugin.clone(),
                )
            })
            .collect::<Result<Vec<_>, RegistrationError>>()?;
        let crons = declaration
            .cron_schedules
            .iter()
            .map(CronSchedule::from_declaration)
            .collect::<Result<Vec<_>, _>>()?;
        let triggers = declaration
            .triggers
            .iter()
            .map(|t| Trigger::from_declaration(t, declaration, plugin.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let names: Vec<String> = workflows.iter().map(|w| w.name().to_owned()).collect();
        for schedule in &crons {
            if !names.contains(&schedule.workflow) {
                return Err(RegistrationError::InvalidCron {
                    schedule: schedule.name.clone(),
                    reason: format!("workflow `{}` is not in the package", schedule.workflow),
                }
                .into());
            }
        }
        self.check_workflow_names(&package, workflows.iter().map(|w| w.name()))?;
        for workflow in workflows {
            self.register_workflow(workflow)?;
        }
        for schedule in crons {
            self.inner.scheduler.add_cron(schedule).await?;
        }
        for trigger in triggers {
            self.inner.scheduler.add_trigger(trigger);
        }
        Ok(names)
    }

    /// Starts (or replaces) cron schedule `schedule.name` on this runner.
    pub async fn add_cron(&self, schedule: CronSchedule) -> Result<(), RuntimeError> {
        self.inner.scheduler.add_cron(schedule).await
    }

    /// Starts (or replaces) poll trigger `trigger.name` on this runner.
    pub fn add_trigger(&self, trigger: Trigger) {
        self.inner.scheduler.add_trigger(trigger);
    }

    /// Stops cron schedule `name` here (its row, and the firings it took,
    /// stay in the database).
    pub fn remove_cron(&self, name: &str) {
        self.inner.scheduler.remove(&[format!("cron:{name}")]);
    }

    /// Stops poll trigger `name` here (the keys it fired stay fired).
    pub fn remove_trigger(&self, name: &str) {
        self.inner.scheduler.remove(&[format!("trigger:{name}")]);
    }

    /// Takes a package version away from new work: its workflows start no
    /// new executions (and its cron schedules and triggers stop, unless
    /// another version of their workflow remains); executions already
    /// running on it go on. Returns the workflows retired. Call
    /// [`Runner::running_on`] to see when it is unused, then
    /// [`Runner::forget_package`].
    pub fn unregister_package(
        &self,
        package: &PackageRef,
        declaration: &Declaration,
    ) -> Vec<String> {
        let retired: Vec<String> = declaration
            .workflows
            .iter()
            .filter(|w| {
                self.inner
                    .registry
                    .retire(w.name.as_str(), &package.version)
            })
            .map(|w| w.name.to_string())
            .collect();
        // Schedules stay while another version of their workflow remains
        // (they start whichever version is latest when they fire).
        let orphaned = |workflow: &str| self.inner.registry.latest(workflow).is_none();
        let schedules: Vec<String> = declaration
            .cron_schedules
            .iter()
            .filter(|c| orphaned(c.workflow.as_str()))
            .map(|c| format!("cron:{}", c.name))
            .chain(
                declaration
                    .triggers
                    .iter()
                    .filter(|t| orphaned(t.workflow.as_str()))
                    .map(|t| format!("trigger:{}", t.name)),
            )
            .collect();
        self.inner.scheduler.remove(&schedules);
        retired
    }

    /// Executions still running on a package version (on any host).
    pub async fn running_on(&self, package: &PackageRef) -> Result<Vec<ExecutionId>, RuntimeError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM executions WHERE status = 'running' AND package_name = $1 AND package_version = $2 ORDER BY id",
        )
        .bind(&package.name)
        .bind(package.version.to_string())
        .fetch_all(self.inner.db.pool())
        .await
        .map_err(RuntimeError::db("listing running executions"))?;
        ids.iter()
            .map(|id| {
                id.parse()
                    .map_err(|_| RuntimeError::Corrupt(format!("execution id `{id}`")))
            })
            .collect()
    }

    /// Removes a retired package version for good (once nothing runs on
    /// it): its tasks are no longer claimed here.
    pub fn forget_package(&self, package: &PackageRef, declaration: &Declaration) {
        for workflow in &declaration.workflows {
            self.inner
                .registry
                .remove(workflow.name.as_str(), &package.version);
        }
    }

    /// Names of the registered workflows.
    pub fn workflows(&self) -> Vec<String> {
        self.inner.registry.names()
    }

    /// Runs `workflow` with `context` (a JSON object) and waits for the end.
    pub async fn execute(
        &self,
        workflow: &str,
        context: Value,
    ) -> Result<ExecutionResult, RuntimeError> {
        let id = self.execute_async(workflow, context).await?;
        self.wait(id).await
    }

    /// Starts `workflow` and returns its execution id once the start is
    /// committed.
    pub async fn execute_async(
        &self,
        workflow: &str,
        context: Value,
    ) -> Result<ExecutionId, RuntimeError> {
        let workflow = self
            .inner
            .registry
            .latest(workflow)
            .ok_or_else(|| RuntimeError::UnknownWorkflow(workflow.to_owned()))?;
        check_context(&context)?;
        let started = self
            .start(workflow, context, "api".to_owned(), None)
            .await?;
        started.ok_or_else(|| RuntimeError::Corrupt("an unguarded start was refused".into()))
    }

    /// Starts version `version` of `workflow` (registered and not being
    /// replaced), whatever the latest is.
    pub async fn execute_version(
        &self,
        workflow: &str,
        version: &semver::Version,
        context: Value,
    ) -> Result<ExecutionId, RuntimeError> {
        let pinned = self
            .inner
            .registry
            .startable(workflow, version)
            .ok_or_else(|| {
                RuntimeError::UnknownWorkflow(format!("{workflow} version {version}"))
            })?;
        check_context(&context)?;
        let started = self.start(pinned, context, "api".to_owned(), None).await?;
        started.ok_or_else(|| RuntimeError::Corrupt("an unguarded start was refused".into()))
    }

    /// Starts the latest version of `workflow` unless a start with the
    /// same `(scope, key)` happened before, on any host: what a caller that
    /// may retry after a crash (a graph firing's subscriptions) uses to
    /// start a workflow exactly once. None when it had already started.
    pub async fn start_once(
        &self,
        workflow: &str,
        context: Value,
        origin: String,
        scope: &str,
        key: &str,
    ) -> Result<Option<ExecutionId>, RuntimeError> {
        let workflow = self
            .inner
            .registry
            .latest(workflow)
            .ok_or_else(|| RuntimeError::UnknownWorkflow(workflow.to_owned()))?;
        check_context(&context)?;
        let guard = StartGuard::TriggerKey {
            trigger: scope.to_owned(),
            key: key.to_owned(),
        };
        self.start(workflow, context, origin, Some(guard)).await
    }

    pub(crate) async fn start(
        &self,
        workflow: Arc<Workflow>,
        input: Value,
        origin: String,
        guard: Option<StartGuard>,
    ) -> Result<Option<ExecutionId>, RuntimeError> {
        start_on(&self.inner.commands, workflow, input, origin, guard).await
    }

    /// Waits for an execution to end and returns its result.
    pub async fn wait(&self, id: ExecutionId) -> Result<ExecutionResult, RuntimeError> {
        loop {
            let ended = self.inner.completions.watch(id);
            let current = queries::execution(&self.inner.db, id).await?;
            if current.status.is_terminal() {
                self.inner.completions.forget(id);
                return Ok(current);
            }
            // Ends on this host fire at once; ends on another host arrive by
            // NOTIFY, and the timeout is the safety net if one is lost.
            let _ = tokio::time::timeout(Duration::from_secs(1), ended).await;
        }
    }

    /// An execution as it stands now.
    pub async fn status(&self, id: ExecutionId) -> Result<ExecutionResult, RuntimeError> {
        queries::execution(&self.inner.db, id).await
    }

    /// Executions, newest first.
    pub async fn executions(
        &self,
        workflow: Option<&str>,
        status: Option<ExecutionStatus>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ExecutionResult>, RuntimeError> {
        queries::executions(&self.inner.db, workflow, status, limit, offset).await
    }

    /// How many executions [`Runner::executions`] could page through.
    pub async fn count_executions(
        &self,
        workflow: Option<&str>,
        status: Option<ExecutionStatus>,
    ) -> Result<i64, RuntimeError> {
        queries::count_executions(&self.inner.db, workflow, status).await
    }

    pub async fn tasks(&self, id: ExecutionId) -> Result<Vec<TaskRecord>, RuntimeError> {
        queries::tasks(&self.inner.db, id).await
    }

    /// Every host with a lease row in this tenant's database (this one
    /// among them), oldest first, with the tasks of this tenant each runs
    /// now. A host whose heartbeat is older than the lease TTL is presumed
    /// dead; its row is removed once it has been silent for ten TTLs (on
    /// SQLite, by the next start after that).
    pub async fn hosts(&self) -> Result<Vec<HostRecord>, RuntimeError> {
        queries::hosts(&self.inner.db).await
    }

    /// The context execution `id` started with.
    pub async fn input_context(
        &self,
        id: ExecutionId,
    ) -> Result<Option<serde_json::Value>, RuntimeError> {
        queries::input_context(&self.inner.db, id).await
    }

    /// The execution's committed events after sequence number `after`.
    pub async fn events(&self, id: ExecutionId, after: i64) -> Result<Vec<Event>, RuntimeError> {
        queries::events(&self.inner.db, id, after).await
    }

    /// Follows an execution's events after sequence number `after` (0:
    /// from the start) until its end, whichever host commits them.
    pub fn follow(&self, id: ExecutionId, after: i64) -> EventFollower {
        EventFollower::new(self.clone(), id, after)
    }

    /// Every event this host commits, as it commits it. Subscribe, then
    /// read [`Runner::events`] from your cursor, to miss nothing.
    /// Other hosts' commits with events, as the listener hears them
    /// (PostgreSQL; nothing arrives on SQLite, one host per file).
    pub(crate) fn subscribe_remote(&self) -> broadcast::Receiver<RemoteEvents> {
        self.inner.remote_events.subscribe()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.events.subscribe()
    }

    /// Cancels a running execution: waiting tasks end cancelled, running
    /// ones are asked to stop. False when it had already ended.
    pub async fn cancel(&self, id: ExecutionId) -> Result<bool, RuntimeError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Cancel {
                execution: id,
                reply,
            })
            .map_err(|_| RuntimeError::ShuttingDown)?;
        answer.await.map_err(|_| RuntimeError::ShuttingDown)?
    }

    /// Stops taking work, waits (up to the grace period) for running tasks
    /// to finish and record their results, then stops. Tasks still waiting
    /// stay in the database for the next start.
    pub async fn shutdown(&self) {
        self.inner.scheduler.stop();
        let (reply, drained) = oneshot::channel();
        if self.inner.commands.send(Command::Drain { reply }).is_ok()
            && tokio::time::timeout(self.inner.config.shutdown_grace, drained)
                .await
                .is_err()
        {
            tracing::warn!(
                "tasks still running after the shutdown grace period; their leases will expire"
            );
        }
        for handle in self.lock_background().drain(..) {
            handle.abort();
        }
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(writer) = writer {
            writer.abort();
        }
        engine::lease::unregister_host(&self.inner.db, &self.inner.host_id).await;
        self.inner.db.close().await;
        tracing::info!(tenant = %self.inner.config.tenant, "runner stopped");
    }

    fn lock_background(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.inner
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) async fn start_on(
    commands: &mpsc::UnboundedSender<Command>,
    workflow: Arc<Workflow>,
    input: Value,
    origin: String,
    guard: Option<StartGuard>,
) -> Result<Option<ExecutionId>, RuntimeError> {
    let (reply, answer) = oneshot::channel();
    let request = StartRequest {
        id: ExecutionId::random(),
        workflow,
        input,
        origin,
        guard,
    };
    commands
        .send(Command::Start { request, reply })
        .map_err(|_| RuntimeError::ShuttingDown)?;
    answer.await.map_err(|_| RuntimeError::ShuttingDown)?
}

/// A context must be a JSON object.
pub fn check_context(context: &Value) -> Result<(), RuntimeError> {
    let kind = match context {
        Value::Object(_) => return Ok(()),
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
    };
    Err(RuntimeError::ContextNotAnObject(kind))
}

/// Parses a context given as JSON text.
pub fn parse_context(text: &str) -> Result<Value, RuntimeError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|error| RuntimeError::ContextNotJson(error.to_string()))?;
    check_context(&value)?;
    Ok(value)
}
