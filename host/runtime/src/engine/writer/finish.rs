//! Recording finished task calls (`Command::Finished`) and ending the
//! executions whose last task ended.
//!
//! [`Writer::finish_all`] takes the batch's finished calls through named
//! phases, each a few statements for the whole batch:
//!
//! 1. [`Writer::plan`]: load each call's workflow and decide its outcome
//!    ([`Plan::decide`]): completed, retry after a backoff, failed or
//!    cancelled (a timeout is a failure: retried or failed);
//! 2. [`cancel_retries_of_ended`]: no retry for an execution that ended;
//! 3. [`release_claims`]: release every claim in one statement, learning
//!    which were still this host's;
//! 4. record each decision whose claim was ([`Writer::record_completed`],
//!    [`record_retry`], [`record_failure`], which skips or cancels the
//!    dependants), adding up per execution in a [`Tally`];
//! 5. [`unblock_dependants`]: count down the dependencies of waiting tasks;
//! 6. [`Writer::end_executions`]: count the ended tasks of each execution
//!    and [`Writer::finalize`] those with none left.
//!
//! What to announce (events, released slots, wake-ups, ended executions)
//! is gathered in the [`Outcome`] along the way.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cloacina_loader::TaskFailure;
use serde_json::Value;

use super::{Outcome, Writer};
use crate::engine::Finished;
use crate::engine::sql::{self, Conn, TaskChange};
use crate::model::{EventType, ExecutionId, ExecutionStatus, TaskStatus};
use crate::retry::{self, AfterFailure};
use crate::workflow::{TaskSpec, Workflow};
use cloacina_contract::context;

/// What becomes of one finished call, decided before anything is written.
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

impl<'a> Plan<'a> {
    /// Decides a finished call's outcome: completed, its result (its input
    /// with its output merged) to store; or, when it failed, a retry after
    /// the policy's backoff, else cancelled (the call was stopped) or
    /// failed.
    fn decide(finished: &'a Finished, workflow: &Arc<Workflow>, now: i64) -> Self {
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
                let result = context::task_result_with(
                    (*finished.input).clone(),
                    output,
                    workflow.output_rule(),
                );
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
                        plan.ready_at =
                            Some(now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2));
                        plan.delay = Some(delay);
                    }
                    AfterFailure::GiveUp if matches!(failure, TaskFailure::Cancelled) => {
                        plan.to = TaskStatus::Cancelled;
                    }
                    AfterFailure::GiveUp => plan.to = TaskStatus::Failed,
                }
            }
        }
        plan
    }

    /// The task that ran.
    fn task(&self) -> &TaskSpec {
        &self.workflow.tasks()[self.finished.position]
    }
}

/// What the recorded decisions add up to, written once for the batch.
#[derive(Default)]
struct Tally {
    /// Dependencies completed, per waiting task: (execution, task) -> n.
    dependencies: HashMap<(String, String), i64>,
    /// Tasks ended per execution, with its first failure, in the order
    /// the executions came.
    ended: Vec<sql::Ended>,
}

impl Tally {
    /// Counts `count` more ended tasks of `execution`; the first failure
    /// of the batch is the one kept.
    fn tasks_ended(&mut self, execution: &str, count: i64, failure: Option<(String, String)>) {
        let at = match self.ended.iter().position(|e| e.execution == execution) {
            Some(at) => at,
            None => {
                self.ended.push(sql::Ended {
                    execution: execution.to_owned(),
                    count: 0,
                    failed_task: None,
                    error: None,
                });
                self.ended.len() - 1
            }
        };
        self.ended[at].count += count;
        if let Some((task, error)) = failure
            && self.ended[at].failed_task.is_none()
        {
            self.ended[at].failed_task = Some(task);
            self.ended[at].error = Some(error);
        }
    }
}

impl Writer {
    /// Records the outcomes of finished task calls: releases every claim in
    /// one statement, then counts down dependants and ends executions whose
    /// last task ended, each in one statement for the whole batch.
    pub(super) async fn finish_all(
        &mut self,
        tx: &mut Conn,
        finished: &[&Finished],
        now: i64,
        outcome: &mut Outcome,
    ) -> Result<(), sqlx::Error> {
        let mut plans = self.plan(tx, finished, now, outcome).await?;
        cancel_retries_of_ended(tx, &mut plans).await?;
        let released = release_claims(tx, &self.config.host_id, &plans, now).await?;
        let mut tally = Tally::default();
        for plan in plans {
            let task = plan.task();
            if !released.contains(&(plan.execution.clone(), task.id.clone())) {
                tracing::warn!(execution = %plan.execution, task = %task.id,
                    "a result came back for a claim this host no longer holds; dropped");
                continue;
            }
            match plan.to {
                TaskStatus::Completed => self.record_completed(plan, &mut tally, outcome),
                TaskStatus::Retrying => record_retry(&plan, outcome),
                _ => record_failure(tx, &plan, now, &mut tally, outcome).await?,
            }
        }
        unblock_dependants(tx, tally.dependencies, now).await?;
        self.end_executions(tx, &tally.ended, now, outcome).await
    }

    /// Phase 1: loads what each finished call touches (its execution's
    /// workflow, from memory or from its row) and decides its outcome.
    /// Every call's slot is freed, even one whose execution this host
    /// cannot load (its result is dropped).
    async fn plan<'a>(
        &mut self,
        tx: &mut Conn,
        finished: &[&'a Finished],
        now: i64,
        outcome: &mut Outcome,
    ) -> Result<Vec<Plan<'a>>, sqlx::Error> {
        let mut plans = Vec::with_capacity(finished.len());
        for &finished in finished {
            outcome
                .released
                .push((finished.execution, finished.position));
            let Some(workflow) = self.workflow_of(tx, finished.execution).await? else {
                continue;
            };
            plans.push(Plan::decide(finished, &workflow, now));
        }
        Ok(plans)
    }

    /// Phase 4, completed: the task's result is remembered for its
    /// dependants, each of which has one dependency fewer to wait for.
    fn record_completed(&mut self, plan: Plan<'_>, tally: &mut Tally, outcome: &mut Outcome) {
        let workflow = &plan.workflow;
        let position = plan.finished.position;
        let task = &workflow.tasks()[position];
        let execution = plan.finished.execution;
        if let (Some(active), Some(result)) = (self.active.get_mut(&execution), plan.result) {
            active.results[position] = Some(Arc::new(result));
        }
        outcome.event(
            execution,
            EventType::TaskCompleted,
            Some(&task.id),
            Some(serde_json::json!({ "attempt": plan.finished.attempt })),
        );
        for &dependant in workflow.dependants(position) {
            *tally
                .dependencies
                .entry((
                    plan.execution.clone(),
                    workflow.tasks()[dependant].id.clone(),
                ))
                .or_default() += 1;
        }
        tally.tasks_ended(&plan.execution, 1, None);
    }

    /// Phase 6: counts each execution's ended tasks (and keeps its first
    /// failure) in one statement, then ends those with no task left.
    async fn end_executions(
        &mut self,
        tx: &mut Conn,
        ended: &[sql::Ended],
        now: i64,
        outcome: &mut Outcome,
    ) -> Result<(), sqlx::Error> {
        for remaining in sql::executions_ended(tx, ended, now).await? {
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
                let merged =
                    context::merge_all_with(results.iter().map(|r| (**r).clone()), workflow.join());
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
}

/// Phase 2: a retry of an execution that has ended (cancelled, perhaps on
/// another host) does not happen: the task ends cancelled instead.
async fn cancel_retries_of_ended(tx: &mut Conn, plans: &mut [Plan<'_>]) -> Result<(), sqlx::Error> {
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
    Ok(())
}

/// Phase 3: releases every planned claim of `host` in one statement per
/// chunk, writing each task's new status; returns the (execution, task)
/// pairs whose claim was still this host's (only those are recorded).
async fn release_claims(
    tx: &mut Conn,
    host: &str,
    plans: &[Plan<'_>],
    now: i64,
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let releases: Vec<sql::Release<'_>> = plans
        .iter()
        .map(|plan| sql::Release {
            execution: &plan.execution,
            task: &plan.task().id,
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
    Ok(sql::release_tasks(tx, host, &releases, now)
        .await?
        .into_iter()
        .collect())
}

/// Phase 4, retry: the task will run again; the writer wakes when its
/// backoff ends.
fn record_retry(plan: &Plan<'_>, outcome: &mut Outcome) {
    let attempt = plan.finished.attempt;
    let delay = plan.delay.unwrap_or_default();
    outcome.event(
        plan.finished.execution,
        EventType::TaskRetryScheduled,
        Some(&plan.task().id),
        Some(serde_json::json!({
            "attempt": attempt, "next_attempt": attempt + 1, "delay_ms": delay.as_millis() as u64,
            "error": plan.error, "error_kind": plan.kind,
        })),
    );
    if let Some(at) = plan.ready_at {
        outcome.wake_at(at);
    }
}

/// Phase 4, failed or cancelled: every task downstream of the task that
/// has not started is skipped (cancelled), and the execution keeps the
/// failure (a cancellation is not one).
async fn record_failure(
    tx: &mut Conn,
    plan: &Plan<'_>,
    now: i64,
    tally: &mut Tally,
    outcome: &mut Outcome,
) -> Result<(), sqlx::Error> {
    let task = plan.task();
    let execution = plan.finished.execution;
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
            "attempt": plan.finished.attempt, "error": message, "error_kind": plan.kind,
        })),
    );
    let skipped = skip_downstream(tx, plan, cancelled, now, outcome).await?;
    let failure = (!cancelled).then(|| {
        (
            task.id.clone(),
            format!("task `{}` failed: {message}", task.id),
        )
    });
    tally.tasks_ended(&plan.execution, 1 + skipped as i64, failure);
    Ok(())
}

/// Ends the waiting tasks downstream of a failed task skipped (cancelled,
/// when it was cancelled), with an event each; returns how many.
async fn skip_downstream(
    tx: &mut Conn,
    plan: &Plan<'_>,
    cancelled: bool,
    now: i64,
    outcome: &mut Outcome,
) -> Result<usize, sqlx::Error> {
    let workflow = &plan.workflow;
    let task = plan.task();
    let downstream: Vec<&str> = workflow
        .descendants(plan.finished.position)
        .into_iter()
        .map(|i| workflow.tasks()[i].id.as_str())
        .collect();
    let skip_as = if cancelled {
        TaskStatus::Cancelled
    } else {
        TaskStatus::Skipped
    };
    let skipped = sql::end_waiting_tasks(tx, &plan.execution, &downstream, skip_as, now).await?;
    for name in &skipped {
        let event = if cancelled {
            EventType::TaskCancelled
        } else {
            EventType::TaskSkipped
        };
        outcome.event(
            plan.finished.execution,
            event,
            Some(name),
            Some(serde_json::json!({ "because": task.id })),
        );
    }
    Ok(skipped.len())
}

/// Phase 5: counts down the dependencies of the completed tasks'
/// dependants, in one statement; those with none left become ready.
async fn unblock_dependants(
    tx: &mut Conn,
    dependencies: HashMap<(String, String), i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let dependencies: Vec<(String, String, i64)> = dependencies
        .into_iter()
        .map(|((e, t), n)| (e, t, n))
        .collect();
    sql::dependencies_done(tx, &dependencies, now).await
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
