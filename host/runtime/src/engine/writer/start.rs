//! Starting executions (`Command::Start`): their rows and tasks (roots
//! ready) in a few statements for the whole batch, and their events.

use super::active::Active;
use super::{Outcome, Writer};
use crate::engine::sql::{self, Conn, NewExecution, NewTask};
use crate::engine::{StartGuard, StartRequest};
use crate::model::{EventType, ExecutionId};

impl Writer {
    /// Starts executions: their rows and tasks (roots ready) in a few
    /// statements, and their events. A guarded start happens only when its
    /// guard passes (the firing was not taken by another host).
    pub(super) async fn start_all(
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
