//! The writer: the only place an execution's state changes. It takes
//! commands in batches, applies a batch in one transaction, and only after
//! the commit tells anyone (callers, workers, event subscribers).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cloacina_loader::{CallControl, TaskFailure};
use serde_json::Value;
use sqlx::Acquire;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::sql::{self, Conn, NewExecution, NewTask, TaskChange};
use super::{Assignment, Command, Finished, StartGuard, StartRequest};
use crate::RuntimeError;
use crate::clock::now_ms;
use crate::completions::Completions;
use crate::database::{Database, Dialect};
use crate::model::{Event, EventType, ExecutionId, ExecutionStatus, TaskStatus};
use crate::retry::{self, AfterFailure};
use crate::workflow::{Workflow, WorkflowRegistry};
use cloacina_contract::context;

/// Commands applied in one transaction, at most.
const MAX_BATCH: usize = 512;
/// How often the writer looks for work nobody announced (another host's
/// retries, tasks a dead host left): the safety net, not the hot path.
const RESYNC: Duration = Duration::from_secs(2);

/// Where the writer announces what it committed.
pub(crate) struct Outlets {
    pub events: broadcast::Sender<Arc<Event>>,
    pub completions: Arc<Completions>,
    pub stats: Arc<EngineStats>,
}

/// Counters of the writer's work, for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct EngineStats {
    transactions: AtomicU64,
    commands: AtomicU64,
}

impl EngineStats {
    /// Transactions the writer committed.
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Commands (starts, finished tasks, cancels...) those applied.
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct WriterConfig {
    pub host_id: String,
    pub max_running: usize,
    pub lease_ttl: Duration,
}

/// What the writer remembers of an execution it is driving, so the hot
/// path reads nothing back from the database.
struct Active {
    workflow: Arc<Workflow>,
    input: Arc<Value>,
    results: Vec<Option<Arc<Value>>>,
}

impl Active {
    fn new(workflow: Arc<Workflow>, input: Value) -> Self {
        let results = vec![None; workflow.tasks().len()];
        Active {
            workflow,
            input: Arc::new(input),
            results,
        }
    }
}

pub(crate) struct Writer {
    db: Database,
    config: WriterConfig,
    registry: Arc<WorkflowRegistry>,
    commands: mpsc::UnboundedReceiver<Command>,
    to_self: mpsc::UnboundedSender<Command>,
    outlets: Outlets,
    running: HashMap<(ExecutionId, usize), CallControl>,
    active: HashMap<ExecutionId, Active>,
    next_wake: Option<Instant>,
    draining: bool,
    drain_waiters: Vec<oneshot::Sender<()>>,
}

/// What a committed batch announces.
#[derive(Default)]
struct Outcome {
    started: Vec<(usize, Option<ExecutionId>)>,
    cancelled: Vec<(usize, bool)>,
    assignments: Vec<Assignment>,
    released: Vec<(ExecutionId, usize)>,
    cancel_running: Vec<ExecutionId>,
    ended: Vec<ExecutionId>,
    events: Vec<PendingEvent>,
    sequences: Vec<i64>,
    wake_at: Option<i64>,
    work_left: bool,
}

struct PendingEvent {
    execution: ExecutionId,
    event_type: EventType,
    task: Option<String>,
    data: Option<Value>,
}

impl Outcome {
    fn event(
        &mut self,
        execution: ExecutionId,
        event_type: EventType,
        task: Option<&str>,
        data: Option<Value>,
    ) {
        self.events.push(PendingEvent {
            execution,
            event_type,
            task: task.map(str::to_owned),
            data,
        });
    }

    fn wake_at(&mut self, at: i64) {
        self.wake_at = Some(self.wake_at.map_or(at, |t| t.min(at)));
    }
}

impl Writer {
    pub(crate) fn new(
        db: Database,
        config: WriterConfig,
        registry: Arc<WorkflowRegistry>,
        commands: mpsc::UnboundedReceiver<Command>,
        to_self: mpsc::UnboundedSender<Command>,
        outlets: Outlets,
    ) -> Self {
        Writer {
            db,
            config,
            registry,
            commands,
            to_self,
            outlets,
            running: HashMap::new(),
            active: HashMap::new(),
            next_wake: Some(Instant::now()),
            draining: false,
            drain_waiters: Vec::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        let mut resync = tokio::time::interval(RESYNC);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self.next_wake;
            let first = tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => command,
                    None => break,
                },
                _ = sleep_until(wake) => { self.next_wake = None; Command::Wake }
                _ = resync.tick() => Command::Wake,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.commands.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            self.handle(batch).await;
        }
        tracing::debug!(tenant = %self.db.tenant(), "writer stopped");
    }

    async fn handle(&mut self, commands: Vec<Command>) {
        let mut batch = Vec::with_capacity(commands.len());
        for command in commands {
            match command {
                Command::Drain { reply } => {
                    self.draining = true;
                    self.drain_waiters.push(reply);
                }
                command => batch.push(command),
            }
        }
        let mut delay = Duration::from_millis(50);
        loop {
            match self.apply(&batch).await {
                Ok(outcome) => {
                    self.announce(batch, outcome);
                    break;
                }
                Err(error) if crate::database::is_transient(&error) => {
                    tracing::warn!(%error, retry_in = ?delay, tenant = %self.db.tenant(),
                        "the database is unavailable; the batch waits and will be applied");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    tracing::error!(%error, tenant = %self.db.tenant(), commands = batch.len(),
                        "a batch failed; applying its commands one by one");
                    self.apply_one_by_one(batch).await;
                    break;
                }
            }
        }
        self.answer_drain();
    }

    async fn apply_one_by_one(&mut self, batch: Vec<Command>) {
        for command in batch {
            let single = vec![command];
            match self.apply(&single).await {
                Ok(outcome) => self.announce(single, outcome),
                Err(error) => {
                    let message = error.to_string();
                    for command in single {
                        match command {
                            Command::Start { reply, .. } => {
                                let _ = reply.send(Err(RuntimeError::Database {
                                    doing: "starting an execution",
                                    source: error_again(&message),
                                }));
                            }
                            Command::Cancel { reply, .. } => {
                                let _ = reply.send(Err(RuntimeError::Database {
                                    doing: "cancelling an execution",
                                    source: error_again(&message),
                                }));
                            }
                            Command::Finished(finished) => {
                                tracing::error!(error = %message, execution = %finished.execution,
                                    "a task's result could not be recorded; it will run again when its lease is reaped");
                                self.running
                                    .remove(&(finished.execution, finished.position));
                            }
                            _ => tracing::error!(error = %message, "a command failed"),
                        }
                    }
                }
            }
        }
    }

    async fn apply(&mut self, batch: &[Command]) -> Result<Outcome, sqlx::Error> {
        let now = now_ms();
        let mut outcome = Outcome::default();
        let mut connection = self.db.pool().acquire().await?;
        let mut tx = connection.begin().await?;
        let mut freed = 0usize;
        let mut starts = Vec::new();
        let mut finished = Vec::new();
        let mut look_for_work = false;
        for (index, command) in batch.iter().enumerate() {
            match command {
                Command::Start { request, .. } => {
                    if !self.draining {
                        starts.push((index, request));
                    }
                }
                Command::Finished(done) => {
                    if self.running.contains_key(&(done.execution, done.position)) {
                        freed += 1;
                    }
                    finished.push(done);
                }
                Command::Cancel { execution, .. } => {
                    let cancelled = self.cancel(&mut tx, *execution, now, &mut outcome).await?;
                    outcome.cancelled.push((index, cancelled));
                }
                Command::Reap { all_but_me } => {
                    look_for_work = true;
                    self.reap(&mut tx, now, *all_but_me, &mut outcome).await?
                }
                Command::Wake => look_for_work = true,
                Command::Drain { .. } => {}
                Command::TaskLog(line) => outcome.event(
                    line.execution,
                    EventType::TaskLog,
                    Some(&line.task),
                    Some(serde_json::json!({"attempt": line.attempt, "message": line.message})),
                ),
            }
        }
        self.start_all(&mut tx, &starts, now, &mut outcome).await?;
        self.finish_all(&mut tx, &finished, now, &mut outcome)
            .await?;
        if !self.draining {
            let busy = self.running.len().saturating_sub(freed);
            let free = self.config.max_running.saturating_sub(busy);
            if free > 0 {
                self.claim(&mut tx, free, now, &mut outcome).await?;
            }
            if outcome.assignments.len() == free {
                outcome.work_left = true;
            }
            // Retries this writer schedules set their own wake-up; others'
            // (and a restart's) are found when looking for work.
            if look_for_work && let Some(at) = sql::next_ready_at(&mut tx).await? {
                outcome.wake_at(at);
            }
        }
        self.write_events(&mut tx, &mut outcome, now).await?;
        if self.db.dialect() == Dialect::Postgres
            && (outcome.work_left || !outcome.ended.is_empty())
        {
            let ended: Vec<String> = outcome.ended.iter().map(ToString::to_string).collect();
            // "host;id,id,...": a host ignores its own announcements.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::notify::channel(&self.db))
                .bind(format!("{};{}", self.config.host_id, ended.join(",")))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.outlets
            .stats
            .transactions
            .fetch_add(1, Ordering::Relaxed);
        self.outlets
            .stats
            .commands
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(outcome)
    }

    /// Starts executions: their rows and tasks (roots ready) in a few
    /// statements, and their events. A guarded start happens only when its
    /// guard passes (the firing was not taken by another host).
    async fn start_all(
        &mut self,
        tx: &mut Conn,
        requests: &[(usize, &StartRequest)],
        now: i64,
        outcome: &mut Outcome,
    ) -> Result<(), sqlx::Error> {
        let mut starting = Vec::with_capacity(requests.len());
        for &(index, request) in requests {
            let passes = match &request.guard {
                Some(guard) => passes_guard(tx, guard, request.id, now).await?,
                None => true,
            };
            outcome.started.push((index, passes.then_some(request.id)));
            if passes {
                starting.push(request);
            }
        }
        if starting.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = starting.iter().map(|r| r.id.to_string()).collect();
        let inputs: Vec<String> = starting.iter().map(|r| r.input.to_string()).collect();
        let versions: Vec<String> = starting
            .iter()
            .map(|r| r.workflow.package().version.to_string())
            .collect();
        let rows: Vec<NewExecution<'_>> = starting
            .iter()
            .enumerate()
            .map(|(i, request)| NewExecution {
                id: request.id,
                workflow: request.workflow.name(),
                package_name: &request.workflow.package().name,
                package_version: &versions[i],
                origin: &request.origin,
                input: &inputs[i],
                tasks: request.workflow.tasks().len() as i64,
                now,
            })
            .collect();
        sql::insert_executions(tx, &rows).await?;
        let tasks: Vec<NewTask<'_>> = starting
            .iter()
            .enumerate()
            .flat_map(|(i, request)| {
                let id = ids[i].as_str();
                let version = versions[i].as_str();
                let workflow = request.workflow.name();
                request
                    .workflow
                    .tasks()
                    .iter()
                    .enumerate()
                    .map(move |(position, task)| NewTask {
                        execution: id,
                        workflow,
                        package_version: version,
                        name: &task.id,
                        position: position as i64,
                        dependencies: task.dependencies.len() as i64,
                        max_attempts: i64::from(task.retry.max_attempts.max(1)),
                    })
            })
            .collect();
        sql::insert_tasks(tx, &tasks, now).await?;
        for (i, request) in starting.iter().enumerate() {
            let workflow = &request.workflow;
            outcome.event(
                request.id,
                EventType::WorkflowStarted,
                None,
                Some(serde_json::json!({
                    "workflow": workflow.name(),
                    "package": workflow.package().name,
                    "version": versions[i],
                    "origin": request.origin,
                })),
            );
            for task in workflow.tasks() {
                outcome.event(request.id, EventType::TaskCreated, Some(&task.id), None);
            }
            self.active.insert(
                request.id,
                Active::new(workflow.clone(), request.input.clone()),
            );
        }
        Ok(())
    }

    /// Records the outcomes of finished task calls: releases every claim in
    /// one statement, then counts down dependants and ends executions whose
    /// last task ended, each in one statement for the whole batch.
    async fn finish_all(
        &mut self,
        tx: &mut Conn,
        finished: &[&Finished],
        now: i64,
        outcome: &mut Outcome,
    ) -> Result<(), sqlx::Error> {
        struct Plan<'a> {
            finished: &'a Finished,
            workflow: Arc<Workflow>,
            execution: String,
            to: TaskStatus,
            stored: Option<String>,
            result: Option<Value>,
            error: Option<String>,
            kind: Option<&'static str>,
            ready_at: Option<i64>,
            delay: Option<Duration>,
        }
        let mut plans = Vec::with_capacity(finished.len());
        for &finished in finished {
            outcome
                .released
                .push((finished.execution, finished.position));
            let Some(workflow) = self.workflow_of(tx, finished.execution).await? else {
                continue;
            };
            let task = &workflow.tasks()[finished.position];
            let mut plan = Plan {
                finished,
                execution: finished.execution.to_string(),
                to: TaskStatus::Completed,
                stored: None,
                result: None,
                error: None,
                kind: None,
                ready_at: None,
                delay: None,
                workflow: workflow.clone(),
            };
            match &finished.outcome {
                Ok(output) => {
                    let output: Value = serde_json::from_str(output).unwrap_or(Value::Null);
                    let result = context::task_result((*finished.input).clone(), output);
                    plan.stored = Some(result.to_string());
                    plan.result = Some(result);
                }
                Err(failure) => {
                    plan.error = Some(failure.to_string());
                    plan.kind = Some(failure_kind(failure));
                    let attempt = u32::try_from(finished.attempt).unwrap_or(u32::MAX);
                    match retry::after_failure(&task.retry, attempt, failure) {
                        AfterFailure::RetryIn(delay) => {
                            plan.to = TaskStatus::Retrying;
                            plan.ready_at = Some(
                                now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
                            );
                            plan.delay = Some(delay);
                        }
                        AfterFailure::GiveUp if matches!(failure, TaskFailure::Cancelled) => {
                            plan.to = TaskStatus::Cancelled;
                        }
                        AfterFailure::GiveUp => plan.to = TaskStatus::Failed,
                    }
                }
            }
            plans.push(plan);
        }
        // A retry of an execution that has ended (cancelled, perhaps on
        // another host) does not happen: the task ends cancelled instead.
        let retrying: Vec<&str> = plans
            .iter()
            .filter(|plan| plan.to == TaskStatus::Retrying)
            .map(|plan| plan.execution.as_str())
            .collect();
        if !retrying.is_empty() {
            let ended = sql::ended_among(tx, &retrying).await?;
            for plan in plans
                .iter_mut()
                .filter(|p| p.to == TaskStatus::Retrying && ended.contains(&p.execution))
            {
                plan.to = TaskStatus::Cancelled;
                plan.ready_at = None;
                plan.delay = None;
            }
        }
        let releases: Vec<sql::Release<'_>> = plans
            .iter()
            .map(|plan| sql::Release {
                execution: &plan.execution,
                task: &plan.workflow.tasks()[plan.finished.position].id,
                attempt: plan.finished.attempt,
                to: plan.to,
                change: TaskChange {
                    output: plan.stored.as_deref(),
                    error: plan.error.as_deref(),
                    error_kind: plan.kind,
                    ready_at: plan.ready_at,
                    completed_at: (plan.to != TaskStatus::Retrying).then_some(now),
                },
            })
            .collect();
        let released: std::collections::HashSet<(String, String)> =
            sql::release_tasks(tx, &self.config.host_id, &releases, now)
                .await?
                .into_iter()
                .collect();
        drop(releases);

        let mut dependencies: HashMap<(String, String), i64> = HashMap::new();
        let mut ended: Vec<sql::Ended> = Vec::new();
        let end_of = |ended: &mut Vec<sql::Ended>,
                      execution: &str,
                      count: i64,
                      failure: Option<(String, String)>| {
            let at = match ended.iter().position(|e| e.execution == execution) {
                Some(at) => at,
                None => {
                    ended.push(sql::Ended {
                        execution: execution.to_owned(),
                        count: 0,
                        failed_task: None,
                        error: None,
                    });
                    ended.len() - 1
                }
            };
            ended[at].count += count;
            if let Some((task, error)) = failure
                && ended[at].failed_task.is_none()
            {
                ended[at].failed_task = Some(task);
                ended[at].error = Some(error);
            }
        };
        for plan in plans {
            let workflow = &plan.workflow;
            let position = plan.finished.position;
            let task = &workflow.tasks()[position];
            if !released.contains(&(plan.execution.clone(), task.id.clone())) {
                tracing::warn!(execution = %plan.execution, task = %task.id,
                    "a result came back for a claim this host no longer holds; dropped");
                continue;
            }
            let execution = plan.finished.execution;
            let attempt = plan.finished.attempt;
            match plan.to {
                TaskStatus::Completed => {
                    if let (Some(active), Some(result)) =
                        (self.active.get_mut(&execution), plan.result)
                    {
                        active.results[position] = Some(Arc::new(result));
                    }
                    outcome.event(
                        execution,
                        EventType::TaskCompleted,
                        Some(&task.id),
                        Some(serde_json::json!({ "attempt": attempt })),
                    );
                    for &dependant in workflow.dependants(position) {
                        *dependencies
                            .entry((
                                plan.execution.clone(),
                                workflow.tasks()[dependant].id.clone(),
                            ))
                            .or_default() += 1;
                    }
                    end_of(&mut ended, &plan.execution, 1, None);
                }
                TaskStatus::Retrying => {
                    let delay = plan.delay.unwrap_or_default();
                    outcome.event(execution, EventType::TaskRetryScheduled, Some(&task.id), Some(serde_json::json!({
                        "attempt": attempt, "next_attempt": attempt + 1, "delay_ms": delay.as_millis() as u64,
                        "error": plan.error, "error_kind": plan.kind,
                    })));
                    if let Some(at) = plan.ready_at {
                        outcome.wake_at(at);
                    }
                }
                _ => {
                    let cancelled = plan.to == TaskStatus::Cancelled;
                    let event = if cancelled {
                        EventType::TaskCancelled
                    } else {
                        EventType::TaskFailed
                    };
                    let message = plan.error.clone().unwrap_or_default();
                    outcome.event(
                        execution,
                        event,
                        Some(&task.id),
                        Some(serde_json::json!({
                            "attempt": attempt, "error": message, "error_kind": plan.kind,
                        })),
                    );
                    let downstream: Vec<&str> = workflow
                        .descendants(position)
                        .into_iter()
                        .map(|i| workflow.tasks()[i].id.as_str())
                        .collect();
                    let skip_as = if cancelled {
                        TaskStatus::Cancelled
                    } else {
                        TaskStatus::Skipped
                    };
                    let skipped =
                        sql::end_waiting_tasks(tx, &plan.execution, &downstream, skip_as, now)
                            .await?;
                    for name in &skipped {
                        let event = if cancelled {
                            EventType::TaskCancelled
                        } else {
                            EventType::TaskSkipped
                        };
                        outcome.event(
                            execution,
                            event,
                            Some(name),
                            Some(serde_json::json!({ "because": task.id })),
                        );
                    }
                    let failure = (!cancelled).then(|| {
                        (
                            task.id.clone(),
                            format!("task `{}` failed: {message}", task.id),
                        )
                    });
                    end_of(
                        &mut ended,
                        &plan.execution,
                        1 + skipped.len() as i64,
                        failure,
                    );
                }
            }
        }
        let dependencies: Vec<(String, String, i64)> = dependencies
            .into_iter()
            .map(|((e, t), n)| (e, t, n))
            .collect();
        sql::dependencies_done(tx, &dependencies, now).await?;
        for remaining in sql::executions_ended(tx, &ended, now).await? {
            if remaining.tasks_remaining > 0 {
                continue;
            }
            let Ok(execution) = remaining.execution.parse::<ExecutionId>() else {
                continue;
            };
            if let Some(workflow) = self.workflow_of(tx, execution).await? {
                self.finalize(
                    tx,
                    execution,
                    &workflow,
                    remaining.failed_task,
                    remaining.error,
                    now,
                    outcome,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Ends an execution whose every task ended: completed with the merged
    /// results of its final tasks, or failed with the first failure.
    #[allow(clippy::too_many_arguments)]
    async fn finalize(
        &mut self,
        tx: &mut Conn,
        execution: ExecutionId,
        workflow: &Arc<Workflow>,
        failed_task: Option<String>,
        error: Option<String>,
        now: i64,
        outcome: &mut Outcome,
    ) -> Result<(), sqlx::Error> {
        let id = execution.to_string();
        let (status, final_context, event) = match &failed_task {
            Some(_) => (ExecutionStatus::Failed, None, EventType::WorkflowFailed),
            None => {
                let sinks: Vec<usize> = workflow.sinks().collect();
                let results = self.results(tx, execution, workflow, &sinks).await?;
                let merged = context::merge_all(results.iter().map(|r| (**r).clone()));
                (
                    ExecutionStatus::Completed,
                    Some(merged.to_string()),
                    EventType::WorkflowCompleted,
                )
            }
        };
        if sql::finish_execution(tx, &id, status, final_context.as_deref(), now).await? {
            let data = match (&failed_task, &error) {
                (Some(task), Some(error)) => {
                    Some(serde_json::json!({ "failed_task": task, "error": error }))
                }
                _ => None,
            };
            outcome.event(execution, event, None, data);
            outcome.ended.push(execution);
        }
        Ok(())
    }

    async fn cancel(
        &mut self,
        tx: &mut Conn,
        execution: ExecutionId,
        now: i64,
        outcome: &mut Outcome,
    ) -> Result<bool, sqlx::Error> {
        let id = execution.to_string();
        let Some(workflow) = self.workflow_of(tx, execution).await? else {
            return Ok(false);
        };
        if !sql::cancel_execution(tx, &id, now).await? {
            return Ok(false);
        }
        let names: Vec<&str> = workflow.tasks().iter().map(|t| t.id.as_str()).collect();
        let ended = sql::end_waiting_tasks(tx, &id, &names, TaskStatus::Cancelled, now).await?;
        for name in &ended {
            outcome.event(execution, EventType::TaskCancelled, Some(name), None);
        }
        sql::tasks_ended(tx, &id, ended.len() as i64, None, now).await?;
        outcome.event(execution, EventType::WorkflowCancelled, None, None);
        outcome.cancel_running.push(execution);
        outcome.ended.push(execution);
        Ok(true)
    }

    /// Puts back tasks whose host stopped renewing its lease. On SQLite
    /// (one host per file) at start, every running task of another host.
    async fn reap(
        &mut self,
        tx: &mut Conn,
        now: i64,
        all_but_me: bool,
        outcome: &mut Outcome,
    ) -> Result<(), sqlx::Error> {
        let cutoff = now - i64::try_from(self.config.lease_ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let requeued =
            sql::requeue_expired(tx, &self.config.host_id, cutoff, all_but_me, now).await?;
        for (execution, task) in requeued {
            if let Ok(execution) = execution.parse::<ExecutionId>() {
                tracing::info!(%execution, %task, "requeued a task whose host's lease expired");
                outcome.event(execution, EventType::TaskLeaseExpired, Some(&task), None);
            }
        }
        // Forget hosts dead for ten leases; one that comes back registers anew.
        sql::forget_dead_hosts(tx, now - 10 * (now - cutoff)).await?;
        Ok(())
    }

    async fn claim(
        &mut self,
        tx: &mut Conn,
        free: usize,
        now: i64,
        outcome: &mut Outcome,
    ) -> Result<(), sqlx::Error> {
        let runnable = self.registry.runnable();
        let claimed = sql::claim(
            tx,
            self.db.dialect(),
            &self.config.host_id,
            now,
            free as i64,
            &runnable,
        )
        .await?;
        for row in claimed {
            let Ok(execution) = row.execution.parse::<ExecutionId>() else {
                continue;
            };
            let Some(workflow) = self.workflow_of(tx, execution).await? else {
                // Not loaded here: leave it to a host that has it.
                sql::unclaim(tx, &row.execution, &row.task, now + 5_000).await?;
                continue;
            };
            let Some(position) = workflow.position(&row.task) else {
                continue;
            };
            let spec = &workflow.tasks()[position];
            let input = if spec.dependencies.is_empty() {
                self.active
                    .get(&execution)
                    .map(|a| a.input.clone())
                    .unwrap_or_default()
            } else {
                let results = self
                    .results(tx, execution, &workflow, &spec.dependencies)
                    .await?;
                Arc::new(context::merge_all(results.iter().map(|r| (**r).clone())))
            };
            let control = match spec.timeout {
                Some(timeout) => CallControl::with_timeout(timeout),
                None => CallControl::new(),
            }
            .attempt_number(u32::try_from(row.attempt).unwrap_or(1));
            outcome.event(
                execution,
                EventType::TaskStarted,
                Some(&row.task),
                Some(serde_json::json!({
                    "attempt": row.attempt, "host": self.config.host_id,
                })),
            );
            outcome.assignments.push(Assignment {
                execution,
                position,
                attempt: row.attempt,
                workflow,
                input,
                control,
            });
        }
        Ok(())
    }

    /// The workflow an execution runs, from memory or from its row.
    async fn workflow_of(
        &mut self,
        tx: &mut Conn,
        execution: ExecutionId,
    ) -> Result<Option<Arc<Workflow>>, sqlx::Error> {
        if let Some(active) = self.active.get(&execution) {
            return Ok(Some(active.workflow.clone()));
        }
        let Some(head) = sql::execution_head(tx, &execution.to_string()).await? else {
            return Ok(None);
        };
        let Ok(version) = semver::Version::parse(&head.package_version) else {
            return Ok(None);
        };
        let Some(workflow) = self.registry.get(&head.workflow, &version) else {
            tracing::warn!(%execution, workflow = %head.workflow, %version,
                "an execution's workflow version is not registered on this host");
            return Ok(None);
        };
        let input: Value = serde_json::from_str(&head.input).unwrap_or_default();
        self.active
            .insert(execution, Active::new(workflow.clone(), input));
        Ok(Some(workflow))
    }

    /// The results of the tasks at `positions` (all completed), from
    /// memory where they are, else read back.
    async fn results(
        &mut self,
        tx: &mut Conn,
        execution: ExecutionId,
        workflow: &Workflow,
        positions: &[usize],
    ) -> Result<Vec<Arc<Value>>, sqlx::Error> {
        let cached = |active: Option<&Active>| -> Option<Vec<Arc<Value>>> {
            let active = active?;
            positions
                .iter()
                .map(|&p| active.results.get(p).cloned().flatten())
                .collect()
        };
        if let Some(results) = cached(self.active.get(&execution)) {
            return Ok(results);
        }
        let stored = sql::completed_results(tx, &execution.to_string()).await?;
        let mut read = vec![None; workflow.tasks().len()];
        for (task, result) in stored {
            if let Some(position) = workflow.position(&task) {
                read[position] = Some(Arc::new(serde_json::from_str(&result).unwrap_or_default()));
            }
        }
        let results = positions.iter().filter_map(|&p| read[p].clone()).collect();
        if let Some(active) = self.active.get_mut(&execution) {
            for (slot, value) in active.results.iter_mut().zip(read) {
                if slot.is_none() {
                    *slot = value;
                }
            }
        }
        Ok(results)
    }

    async fn write_events(
        &mut self,
        tx: &mut Conn,
        outcome: &mut Outcome,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        if outcome.events.is_empty() {
            return Ok(());
        }
        let mut counts: Vec<(ExecutionId, i64)> = Vec::new();
        for event in &outcome.events {
            match counts.iter_mut().find(|(id, _)| *id == event.execution) {
                Some((_, n)) => *n += 1,
                None => counts.push((event.execution, 1)),
            }
        }
        let counted: Vec<(String, i64)> =
            counts.iter().map(|(id, n)| (id.to_string(), *n)).collect();
        let mut next: HashMap<ExecutionId, i64> = HashMap::with_capacity(counts.len());
        for (execution, first) in sql::reserve_sequences(tx, &counted).await? {
            if let Ok(execution) = execution.parse() {
                next.insert(execution, first);
            }
        }
        // An event of an execution with no row (none today; a late log
        // line could be one) is dropped rather than taking the writer down.
        outcome.events.retain(|event| {
            let known = next.contains_key(&event.execution);
            if !known {
                tracing::warn!(execution = %event.execution, event = %event.event_type, "event of an unknown execution dropped");
            }
            known
        });
        let ids: HashMap<ExecutionId, String> =
            next.keys().map(|id| (*id, id.to_string())).collect();
        let mut rows = Vec::with_capacity(outcome.events.len());
        let mut sequences = Vec::with_capacity(outcome.events.len());
        for event in &outcome.events {
            let seq = next
                .get_mut(&event.execution)
                .map(|n| {
                    let seq = *n;
                    *n += 1;
                    seq
                })
                .unwrap_or_default();
            sequences.push(seq);
            rows.push(sql::EventRow {
                execution: &ids[&event.execution],
                sequence_num: seq,
                event_type: event.event_type,
                task: event.task.as_deref(),
                data: event.data.as_ref().map(Value::to_string),
                created_at: now,
            });
        }
        sql::insert_events(tx, &rows).await?;
        outcome.sequences = sequences;
        Ok(())
    }

    /// After the commit: tell everyone.
    fn announce(&mut self, batch: Vec<Command>, outcome: Outcome) {
        let now = now_ms();
        for (execution, position) in &outcome.released {
            self.running.remove(&(*execution, *position));
        }
        for execution in &outcome.cancel_running {
            for ((id, _), control) in &self.running {
                if id == execution {
                    control.cancel();
                }
            }
        }
        for (event, seq) in outcome.events.into_iter().zip(outcome.sequences) {
            let _ = self.outlets.events.send(Arc::new(Event {
                execution_id: event.execution,
                sequence_num: seq,
                event_type: event.event_type,
                task_name: event.task,
                event_data: event.data,
                created_at_ms: now,
            }));
        }
        let mut started: HashMap<usize, Option<ExecutionId>> =
            outcome.started.into_iter().collect();
        let mut cancelled: HashMap<usize, bool> = outcome.cancelled.into_iter().collect();
        for (index, command) in batch.into_iter().enumerate() {
            match command {
                Command::Start { reply, request } => {
                    let answer = match started.remove(&index) {
                        Some(started) => Ok(started),
                        None => Err(RuntimeError::ShuttingDown),
                    };
                    if answer.as_ref().is_ok_and(Option::is_none) {
                        self.active.remove(&request.id);
                    }
                    let _ = reply.send(answer);
                }
                Command::Cancel { reply, .. } => {
                    let _ = reply.send(Ok(cancelled.remove(&index).unwrap_or(false)));
                }
                _ => {}
            }
        }
        for execution in &outcome.ended {
            self.active.remove(execution);
        }
        self.outlets.completions.complete(&outcome.ended);
        for assignment in outcome.assignments {
            self.running.insert(
                (assignment.execution, assignment.position),
                assignment.control.clone(),
            );
            super::worker::spawn(assignment, self.to_self.clone());
        }
        self.next_wake = match (outcome.wake_at, outcome.work_left) {
            (_, true) if !self.draining => Some(Instant::now()),
            (Some(at), _) => {
                Some(Instant::now() + Duration::from_millis(u64::try_from(at - now).unwrap_or(0)))
            }
            (None, _) => None,
        };
        if outcome.work_left && self.running.len() >= self.config.max_running {
            // Full: the next finished task wakes the writer anyway.
            self.next_wake = outcome.wake_at.map(|at| {
                Instant::now() + Duration::from_millis(u64::try_from(at - now).unwrap_or(0))
            });
        }
    }

    fn answer_drain(&mut self) {
        if self.draining && self.running.is_empty() {
            for waiter in self.drain_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

async fn passes_guard(
    tx: &mut Conn,
    guard: &StartGuard,
    execution: ExecutionId,
    now: i64,
) -> Result<bool, sqlx::Error> {
    match guard {
        StartGuard::CronFiring { schedule, fire_at } => {
            sql::take_cron_firing(tx, schedule, *fire_at, now).await
        }
        StartGuard::TriggerKey { trigger, key } => {
            sql::take_trigger_key(tx, trigger, key, &execution.to_string(), now).await
        }
    }
}

fn failure_kind(failure: &TaskFailure) -> &'static str {
    match failure {
        TaskFailure::Retryable(_) => "retryable",
        TaskFailure::Fatal(_) => "fatal",
        TaskFailure::TimedOut(_) => "timeout",
        TaskFailure::Cancelled => "cancelled",
        TaskFailure::InvalidOutput(_) => "invalid_output",
    }
}

fn error_again(message: &str) -> sqlx::Error {
    sqlx::Error::Protocol(message.to_owned())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
