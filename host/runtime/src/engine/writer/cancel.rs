//! Cancelling executions (`Command::Cancel`): the execution's row, its
//! tasks that have not started, and, after the commit, its running calls.

use super::{Outcome, Writer};
use crate::engine::sql::{self, Conn};
use crate::model::{EventType, ExecutionId, TaskStatus};

impl Writer {
    /// Cancels a running execution and ends its waiting tasks cancelled;
    /// false when it is unknown here or already ended. Its running calls
    /// are stopped once the batch commits ([`Writer::stop_cancelled`]).
    pub(super) async fn cancel(
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

    /// After the commit: asks the running calls of cancelled executions
    /// to stop (each comes back as a finished call).
    pub(super) fn stop_cancelled(&self, cancel_running: &[ExecutionId]) {
        for execution in cancel_running {
            for ((id, _), control) in &self.running {
                if id == execution {
                    control.cancel();
                }
            }
        }
    }
}
