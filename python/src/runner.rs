//! `NativeRunner`: one cloacina [`Runner`] on its own tokio runtime,
//! driven from Python. Every wait detaches from the interpreter, so other
//! Python threads (and the tasks themselves) run meanwhile; a wait wakes
//! every 100 ms to let Ctrl-C through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloacina_graphs::{GraphConfig, GraphRuntime};
use cloacina_runtime::schedule::Trigger;
use cloacina_runtime::{ExecutionId, Runner, RunnerConfig, RuntimeError, TenantId};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::cron;
use crate::definition;
use crate::errors::raise;
use crate::graphs;
use crate::plugin::{PythonTask, PythonTasks, Retrying};
use crate::replies::{cron_dict, result_dict, rfc3339};
use crate::url::Location;

/// How often a wait looks up from the runtime for signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);
/// A runner that has not renewed its lease for this long is presumed
/// dead (killed), and another runner on the database takes its tasks over.
const LEASE_TTL: Duration = Duration::from_secs(10);
/// How long `shutdown` lets running tasks finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[pyclass(module = "cloaca._native", name = "NativeRunner")]
pub(crate) struct NativeRunner {
    runner: Runner,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    /// Keeps a `:memory:` database's scratch directory until the end.
    _location: Location,
    backend: &'static str,
    /// Whether cron schedules fire here (cloaca's `enable_cron_scheduling`).
    cron: bool,
    /// Keeps this runner's cron schedules equal to the stored ones.
    cron_sync: Arc<cron::CronSync>,
    /// The graph runtime, started with the first graph registered.
    graphs: Arc<tokio::sync::OnceCell<GraphRuntime>>,
    /// Hands task attempts to Python's threads.
    submit: Py<PyAny>,
}

#[pymethods]
impl NativeRunner {
    /// Opens (and migrates) the database at `url` for `tenant` (a
    /// PostgreSQL schema; None: the public one) and starts the engine.
    #[new]
    /// `submit(run, context_json, attempt, reply) -> ticket` hands one
    /// attempt to a Python thread (`cloaca._threads.TaskThreads.submit`).
    #[pyo3(signature = (url, submit, tenant=None, max_concurrent_tasks=4, cron=true))]
    fn new(
        py: Python<'_>,
        url: &str,
        submit: Py<PyAny>,
        tenant: Option<String>,
        max_concurrent_tasks: usize,
        cron: bool,
    ) -> PyResult<Self> {
        let location = Location::parse(url).map_err(|reason| {
            raise(
                py,
                "RunnerError",
                format!("Failed to create DefaultRunner: {reason}"),
            )
        })?;
        let backend = crate::url::backend(&location.url()).unwrap_or("sqlite");
        let tenant = match tenant {
            None => TenantId::public(),
            Some(name) => TenantId::new(name).map_err(|error| {
                raise(
                    py,
                    "ConfigurationError",
                    format!("Invalid schema name: {error}"),
                )
            })?,
        };
        let runtime_url = location.url();
        let started = py.detach(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("cloaca-runtime")
                .enable_all()
                .build()
                .map_err(|error| format!("cannot start the async runtime: {error}"))?;
            let config = RunnerConfig {
                tenant,
                max_concurrent_tasks: max_concurrent_tasks.max(1),
                shutdown_grace: SHUTDOWN_GRACE,
                lease_ttl: LEASE_TTL,
                ..RunnerConfig::default()
            };
            let cron_sync = Arc::new(cron::CronSync::default());
            let following = cron_sync.clone();
            let runner = runtime
                .block_on(async {
                    let runner = Runner::with_config(&runtime_url, config).await?;
                    cron::migrate(runner.database()).await?;
                    if cron {
                        following.sync(&runner).await?;
                        tokio::spawn(following.follow(runner.clone()));
                    }
                    Ok::<_, cron::CronError>(runner)
                })
                .map_err(|error| cloacina_contract::explain(&error))?;
            Ok::<_, String>((runtime, runner, cron_sync))
        });
        let (runtime, runner, cron_sync) = started.map_err(|reason| {
            raise(
                py,
                "RunnerError",
                format!("Failed to create DefaultRunner: {reason}"),
            )
        })?;
        Ok(NativeRunner {
            runner,
            runtime: Mutex::new(Some(runtime)),
            _location: location,
            backend,
            cron,
            cron_sync,
            graphs: Arc::new(tokio::sync::OnceCell::new()),
            submit,
        })
    }

    /// "sqlite" or "postgresql".
    #[getter]
    fn backend(&self) -> &'static str {
        self.backend
    }

    /// Registers `tasks` as workflow `name` at `version` (a hash of the
    /// definition); new executions of `name` run it, running ones keep
    /// the definition they started on.
    fn register(
        &self,
        py: Python<'_>,
        name: &str,
        version: &str,
        tasks: Vec<definition::TaskDefinition>,
    ) -> PyResult<()> {
        let workflow = definition::python_workflow(name, version, tasks, self.submit.clone_ref(py))
            .map_err(|message| raise(py, "WorkflowError", message))?;
        self.runner.register_replacing(workflow);
        Ok(())
    }

    /// Starts `workflow` with `context` (JSON text of an object); returns
    /// the execution id once the start is committed.
    fn start(&self, py: Python<'_>, workflow: &str, context: &str) -> PyResult<String> {
        let context = cloacina_runtime::parse_context(context).map_err(|error| {
            raise(
                py,
                "ExecutionError",
                format!("Workflow execution failed: {error}"),
            )
        })?;
        let runner = self.runner.clone();
        let workflow = workflow.to_owned();
        let started =
            self.block_on(
                py,
                async move { runner.execute_async(&workflow, context).await },
            )?;
        started
            .map(|id| id.to_string())
            .map_err(|error| execution_error(py, &error))
    }

    /// Waits for execution `id` to end (at most `timeout` seconds) and
    /// returns its result as a dict.
    #[pyo3(signature = (id, timeout=None))]
    fn wait<'py>(
        &self,
        py: Python<'py>,
        id: &str,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: ExecutionId = id.parse().map_err(|_| {
            raise(
                py,
                "ExecutionError",
                format!("Workflow execution failed: `{id}` is not an execution id"),
            )
        })?;
        let runner = self.runner.clone();
        let limit = timeout.map(Duration::from_secs_f64);
        let waited = self.block_on(py, async move {
            let wait = runner.wait(id);
            let ended = match limit {
                Some(limit) => tokio::time::timeout(limit, wait).await.ok(),
                None => Some(wait.await),
            };
            match ended {
                None => Ok(None),
                Some(Ok(result)) => {
                    let tasks = runner.tasks(id).await?;
                    Ok(Some((result, tasks)))
                }
                Some(Err(error)) => Err(error),
            }
        })?;
        match waited {
            Ok(Some((result, tasks))) => result_dict(py, &result, &tasks),
            Ok(None) => Err(raise(
                py,
                "ExecutionError",
                format!(
                    "Workflow execution failed: execution {id} did not end within {:.0} s (the workflow timeout); it goes on running",
                    timeout.unwrap_or_default()
                ),
            )),
            Err(error) => Err(execution_error(py, &error)),
        }
    }

    /// Cancels execution `id`; False when it had already ended.
    fn cancel(&self, py: Python<'_>, id: &str) -> PyResult<bool> {
        let id: ExecutionId = id.parse().map_err(|_| {
            raise(
                py,
                "ExecutionError",
                format!("`{id}` is not an execution id"),
            )
        })?;
        let runner = self.runner.clone();
        self.block_on(py, async move { runner.cancel(id).await })?
            .map_err(|error| execution_error(py, &error))
    }

    /// The names of the workflows this runner can start.
    fn workflows(&self) -> Vec<String> {
        self.runner.workflows()
    }

    /// Polls `poll` (`poll() -> str`: "null", or JSON `{"context": {...},
    /// "key": "..."}`) every `poll_interval_ms` and starts `workflow` once
    /// per key. Replaces a trigger of the same name.
    fn add_trigger(
        &self,
        py: Python<'_>,
        name: &str,
        workflow: &str,
        poll_interval_ms: u64,
        allow_concurrent: bool,
        poll: Py<PyAny>,
    ) -> PyResult<()> {
        let mut tasks = HashMap::new();
        tasks.insert(
            name.to_owned(),
            PythonTask {
                run: poll,
                retrying: Retrying::AllErrors,
            },
        );
        let trigger = Trigger::new(
            name,
            workflow,
            Duration::from_millis(poll_interval_ms),
            allow_concurrent,
            Arc::new(PythonTasks::new(tasks, self.submit.clone_ref(py))),
        )
        .map_err(|error| raise(py, "ConfigurationError", error.to_string()))?;
        // The trigger's poll loop is a task on the runner's runtime.
        let _entered = self.handle(py)?.enter();
        self.runner.add_trigger(trigger);
        Ok(())
    }

    /// Starts `workflow` at each occurrence of `expression` in
    /// `timezone`, as the trigger `name` (`@cloaca.trigger(cron=...)`); the
    /// schedule is not stored (the decorator declares it in every process).
    fn add_cron_trigger(
        &self,
        py: Python<'_>,
        name: &str,
        workflow: &str,
        expression: &str,
        timezone: &str,
    ) -> PyResult<()> {
        let schedule = cron::schedule(&format!("trigger-{name}"), workflow, expression, timezone)
            .map_err(|error| {
            raise(
                py,
                "ConfigurationError",
                format!("trigger `{name}`: {error}"),
            )
        })?;
        let runner = self.runner.clone();
        self.block_on(py, async move { runner.add_cron(schedule).await })?
            .map_err(|error| raise(py, "ScheduleError", cloacina_contract::explain(&error)))
    }

    /// Stops trigger `name` here (a poll trigger or a cron trigger).
    fn remove_trigger(&self, name: &str) {
        self.runner.remove_trigger(name);
        self.runner.remove_cron(&format!("trigger-{name}"));
    }

    /// Executions started with `origin` (`cron:<id>`, `trigger:<name>`),
    /// newest first.
    fn started_by<'py>(
        &self,
        py: Python<'py>,
        origin: &str,
        limit: i64,
        offset: i64,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let runner = self.runner.clone();
        let origin = origin.to_owned();
        let started = self
            .block_on(py, async move {
                cron::started_by(&runner, &origin, limit, offset).await
            })?
            .map_err(|error| schedule_error(py, "Failed to get execution history", &error))?;
        started
            .iter()
            .map(|run| {
                let dict = PyDict::new(py);
                dict.set_item("execution_id", &run.execution_id)?;
                dict.set_item("status", &run.status)?;
                dict.set_item("started_at", rfc3339(run.created_at))?;
                dict.set_item("completed_at", run.completed_at.map(rfc3339))?;
                Ok(dict)
            })
            .collect()
    }

    fn cron_register(
        &self,
        py: Python<'_>,
        workflow: &str,
        expression: &str,
        timezone: &str,
    ) -> PyResult<String> {
        let (workflow, expression, timezone) = (
            workflow.to_owned(),
            expression.to_owned(),
            timezone.to_owned(),
        );
        self.cron_change(
            py,
            "Failed to register cron workflow",
            move |runner| async move {
                cron::register(&runner, &workflow, &expression, &timezone).await
            },
        )
    }

    fn cron_list<'py>(
        &self,
        py: Python<'py>,
        enabled_only: bool,
        limit: i64,
        offset: i64,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let all = self.cron_read(
            py,
            "Failed to list cron schedules",
            move |runner| async move { cron::list(&runner, enabled_only, limit, offset).await },
        )?;
        all.iter().map(|stored| cron_dict(py, stored)).collect()
    }

    fn cron_get<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyDict>> {
        let id = id.to_owned();
        let stored = self.cron_read(
            py,
            "Failed to get cron schedule",
            move |runner| async move { cron::get(&runner, &id).await },
        )?;
        cron_dict(py, &stored)
    }

    fn cron_update(
        &self,
        py: Python<'_>,
        id: &str,
        expression: &str,
        timezone: &str,
    ) -> PyResult<()> {
        let (id, expression, timezone) =
            (id.to_owned(), expression.to_owned(), timezone.to_owned());
        self.cron_change(
            py,
            "Failed to update cron schedule",
            move |runner| async move { cron::update(&runner, &id, &expression, &timezone).await },
        )
    }

    fn cron_set_enabled(&self, py: Python<'_>, id: &str, enabled: bool) -> PyResult<()> {
        let id = id.to_owned();
        self.cron_change(
            py,
            "Failed to set cron schedule enabled",
            move |runner| async move { cron::set_enabled(&runner, &id, enabled).await },
        )
    }

    fn cron_delete(&self, py: Python<'_>, id: &str) -> PyResult<()> {
        let id = id.to_owned();
        self.cron_change(
            py,
            "Failed to delete cron schedule",
            move |runner| async move { cron::delete(&runner, &id).await },
        )
    }

    /// Counts of cron-started executions since `since_ms`; one running
    /// longer than `lost_after_ms` counts as lost.
    fn cron_stats<'py>(
        &self,
        py: Python<'py>,
        since_ms: i64,
        lost_after_ms: i64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.cron_read(
            py,
            "Failed to get cron execution stats",
            move |runner| async move { cron::stats(&runner, since_ms, lost_after_ms).await },
        )?;
        let dict = PyDict::new(py);
        dict.set_item("total_executions", stats.total)?;
        dict.set_item("successful_executions", stats.successful)?;
        dict.set_item("lost_executions", stats.lost)?;
        let rate = if stats.total > 0 {
            stats.successful as f64 * 100.0 / stats.total as f64
        } else {
            0.0
        };
        dict.set_item("success_rate", rate)?;
        Ok(dict)
    }

    /// Registers (or replaces, when `generation` is higher) the reactor-
    /// triggered graph `declaration` (JSON), whose node and polling
    /// functions are `tasks` (name -> runner).
    #[pyo3(signature = (declaration, generation, tasks, timeout_ms=None))]
    fn register_graph(
        &self,
        py: Python<'_>,
        declaration: &str,
        generation: u64,
        tasks: Vec<(String, Py<PyAny>)>,
        timeout_ms: Option<u64>,
    ) -> PyResult<()> {
        let graph = graphs::python_graph(
            declaration,
            generation,
            tasks,
            timeout_ms,
            self.submit.clone_ref(py),
        )
        .map_err(|message| raise(py, "ConfigurationError", message))?;
        let (runner, cell) = (self.runner.clone(), self.graphs.clone());
        self.block_on(py, async move {
            let runtime = cell
                .get_or_try_init(|| GraphRuntime::start(&runner, GraphConfig::default()))
                .await
                .map_err(|error| cloacina_contract::explain(&error))?;
            graphs::register(runtime, graph).await
        })?
        .map_err(|message| raise(py, "GraphError", message))
    }

    /// Pushes `event` (JSON) to `accumulator` and returns once it is
    /// durable, with the number of graphs it went to.
    fn push_event(&self, py: Python<'_>, accumulator: &str, event: &str) -> PyResult<usize> {
        let event: serde_json::Value = serde_json::from_str(event)
            .map_err(|error| raise(py, "GraphError", format!("the event is not JSON: {error}")))?;
        let runtime = self.graph_runtime(py)?;
        let accumulator = accumulator.to_owned();
        self.block_on(py, async move { runtime.push(&accumulator, event).await })?
            .map_err(|error| raise(py, "GraphError", cloacina_contract::explain(&error)))
    }

    /// Sends `command` (`fire`, `pause`, `resume`, `state`) to `graph`'s
    /// reactor; its reply as JSON.
    fn graph_command(&self, py: Python<'_>, graph: &str, command: &str) -> PyResult<String> {
        let command =
            graphs::command(command).map_err(|message| raise(py, "GraphError", message))?;
        let runtime = self.graph_runtime(py)?;
        let graph = graph.to_owned();
        self.block_on(py, async move { runtime.command(&graph, command).await })?
            .map(|reply| graphs::reply_json(&reply))
            .map_err(|error| raise(py, "GraphError", cloacina_contract::explain(&error)))
    }

    /// `graph`'s status as JSON, or None when it does not run here.
    fn graph_status(&self, graph: &str) -> Option<String> {
        let status = self.graphs.get()?.status(graph)?;
        serde_json::to_string(&status).ok()
    }

    /// `graph`'s latest firings (at most `limit`), newest first, as JSON.
    fn graph_firings(&self, py: Python<'_>, graph: &str, limit: u32) -> PyResult<String> {
        let runtime = self.graph_runtime(py)?;
        let graph = graph.to_owned();
        let firings = self
            .block_on(py, async move { runtime.firings(&graph, limit).await })?
            .map_err(|error| raise(py, "GraphError", cloacina_contract::explain(&error)))?;
        serde_json::to_string(&firings).map_err(|error| {
            raise(
                py,
                "GraphError",
                format!("cannot encode the firings: {error}"),
            )
        })
    }

    /// Stops taking work, lets running tasks finish (5 s at most) and
    /// closes the database. Idempotent.
    fn shutdown(&self, py: Python<'_>) {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(runtime) = runtime {
            let runner = self.runner.clone();
            let graphs = self.graphs.clone();
            py.detach(move || {
                runtime.block_on(async {
                    if let Some(graphs) = graphs.get() {
                        graphs.shutdown().await;
                    }
                    runner.shutdown().await;
                });
                // Tasks that ignored their deadline are left to finish
                // on their own threads.
                runtime.shutdown_timeout(Duration::from_millis(100));
            });
        }
    }

    /// Whether `shutdown` has run.
    #[getter]
    fn is_shut_down(&self) -> bool {
        self.runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }
}

impl Drop for NativeRunner {
    fn drop(&mut self) {
        // Dropped without `shutdown` (the interpreter may be holding the
        // GIL here): stop without waiting for anything.
        if let Some(runtime) = self
            .runtime
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            runtime.shutdown_background();
        }
    }
}

impl NativeRunner {
    /// A cron call that reads: `what: <cause>` on failure, refused when
    /// cron scheduling is disabled.
    fn cron_read<T, F>(
        &self,
        py: Python<'_>,
        what: &str,
        work: impl FnOnce(Runner) -> F,
    ) -> PyResult<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, cron::CronError>> + Send + 'static,
    {
        if !self.cron {
            return Err(raise(
                py,
                "ScheduleError",
                format!(
                    "{what}: cron scheduling is disabled (DefaultRunnerConfig.enable_cron_scheduling)"
                ),
            ));
        }
        self.block_on(py, work(self.runner.clone()))?
            .map_err(|error| schedule_error(py, what, &error))
    }

    /// A cron call that changes the stored schedules, then brings this
    /// runner's schedules up to date at once (the others follow within a
    /// second).
    fn cron_change<T, F>(
        &self,
        py: Python<'_>,
        what: &str,
        work: impl FnOnce(Runner) -> F,
    ) -> PyResult<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, cron::CronError>> + Send + 'static,
    {
        let sync = self.cron_sync.clone();
        self.cron_read(py, what, move |runner| {
            let change = work(runner.clone());
            async move {
                let done = change.await?;
                sync.sync(&runner).await?;
                Ok(done)
            }
        })
    }

    /// The graph runtime, once a graph has been registered.
    fn graph_runtime(&self, py: Python<'_>) -> PyResult<GraphRuntime> {
        self.graphs.get().cloned().ok_or_else(|| {
            raise(
                py,
                "GraphError",
                "no computation graph runs on this runner: declare one with a reactor first",
            )
        })
    }

    /// The runtime's handle, unless the runner has been shut down.
    fn handle(&self, py: Python<'_>) -> PyResult<tokio::runtime::Handle> {
        let runtime = self.runtime.lock().unwrap_or_else(|e| e.into_inner());
        runtime
            .as_ref()
            .map(|runtime| runtime.handle().clone())
            .ok_or_else(|| raise(py, "RunnerError", "the runner has been shut down"))
    }

    /// Runs `work` on the runtime, detached from the interpreter, looking
    /// up for a signal (Ctrl-C) every [`SIGNAL_CHECK`]: the signal's
    /// exception is raised and the work dropped.
    fn block_on<T: Send + 'static>(
        &self,
        py: Python<'_>,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> PyResult<T> {
        let handle = self.handle(py)?;
        let mut task = handle.spawn(work);
        loop {
            let finished = py.detach(|| {
                handle.block_on(async { tokio::time::timeout(SIGNAL_CHECK, &mut task).await.ok() })
            });
            if let Some(joined) = finished {
                return joined.map_err(|_| {
                    raise(
                        py,
                        "RunnerError",
                        "the runner was shut down while this call waited; make a new DefaultRunner",
                    )
                });
            }
            if let Err(interrupted) = py.check_signals() {
                task.abort();
                return Err(interrupted);
            }
        }
    }
}

/// Errors of `execute`: an unknown workflow, a context that is not an
/// object, a runner that is stopping.
fn execution_error(py: Python<'_>, error: &RuntimeError) -> PyErr {
    raise(
        py,
        "ExecutionError",
        format!(
            "Workflow execution failed: {}",
            cloacina_contract::explain(error)
        ),
    )
}

/// A schedule call's failure: `<what>: <cause>`.
fn schedule_error(py: Python<'_>, what: &str, error: &cron::CronError) -> PyErr {
    raise(
        py,
        "ScheduleError",
        format!("{what}: {}", cloacina_contract::explain(error)),
    )
}
