//! Claims: taking ready tasks for this host's workers (and, after the
//! commit, handing them out and forgetting the slots finished calls
//! freed), and putting back the claims of hosts whose lease expired
//! (`Command::Reap`).

use std::sync::Arc;

use cloacina_loader::CallControl;

use super::{Outcome, Writer};
use crate::engine::sql::{self, Conn};
use crate::engine::{Assignment, worker};
use crate::model::{EventType, ExecutionId};
use cloacina_contract::context;

impl Writer {
    /// Puts back tasks whose host stopped renewing its lease. On SQLite
    /// (one host per file) at start, every running task of another host.
    pub(super) async fn reap(
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

    /// Claims up to `free` ready tasks of workflows loaded here, each with
    /// its input (the execution's, or its dependencies' merged results).
    pub(super) async fn claim(
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
                Arc::new(context::merge_all_with(
                    results.iter().map(|r| (**r).clone()),
                    workflow.join(),
                ))
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

    /// After the commit: the slots of finished calls are free again.
    pub(super) fn forget_released(&mut self, released: &[(ExecutionId, usize)]) {
        for (execution, position) in released {
            self.running.remove(&(*execution, *position));
        }
    }

    /// After the commit: each claimed task goes to a worker, its slot
    /// taken until it comes back.
    pub(super) fn hand_out(&mut self, assignments: Vec<Assignment>) {
        for assignment in assignments {
            self.running.insert(
                (assignment.execution, assignment.position),
                assignment.control.clone(),
            );
            worker::spawn(assignment, self.to_self.clone());
        }
    }
}
