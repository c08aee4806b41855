//! What the host's workflows do, written to the log as it happens: a line
//! per execution start and end, and per task end, so a person running the
//! server sees the work.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cloacina_runtime::{EventType, Runner};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::HostStats;

/// Logs `runner`'s events, and counts them in `stats`, until its event
/// stream closes.
pub(crate) fn log_activity(runner: &Runner, stats: Arc<HostStats>) -> JoinHandle<()> {
    let tenant = runner.tenant().to_string();
    let mut events = runner.subscribe();
    tokio::spawn(async move {
        // When each running task started, for its duration.
        let mut started: HashMap<(cloacina_runtime::ExecutionId, String), i64> = HashMap::new();
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(%tenant, missed, "activity log lagged");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let execution = event.execution_id;
            let task = event.task_name.as_deref().unwrap_or("");
            let field = |name: &str| {
                event
                    .event_data
                    .as_ref()
                    .and_then(|data| data.get(name))
                    .map(|value| {
                        value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned)
                    })
                    .unwrap_or_default()
            };
            let key = (execution, task.to_owned());
            match event.event_type {
                EventType::TaskStarted => {
                    started.insert(key.clone(), event.created_at_ms);
                }
                EventType::TaskCompleted | EventType::TaskFailed => {
                    if let Some(at) = started.remove(&key) {
                        let took = u64::try_from(event.created_at_ms - at).unwrap_or(0);
                        HostStats::observe(&stats.task_duration, Duration::from_millis(took));
                    }
                    let counter = if event.event_type == EventType::TaskCompleted {
                        &stats.tasks_completed
                    } else {
                        &stats.tasks_failed
                    };
                    HostStats::count(counter, 1);
                }
                EventType::WorkflowCompleted => HostStats::count(&stats.executions_completed, 1),
                EventType::WorkflowFailed => HostStats::count(&stats.executions_failed, 1),
                EventType::WorkflowCancelled => {
                    HostStats::count(&stats.executions_cancelled, 1);
                    started.retain(|(id, _), _| *id != execution);
                }
                _ => {}
            }
            match event.event_type {
                EventType::WorkflowStarted => {
                    tracing::info!(%tenant, %execution, workflow = %field("workflow"), version = %field("version"), "execution started")
                }
                EventType::WorkflowCompleted => {
                    tracing::info!(%tenant, %execution, "execution completed")
                }
                EventType::WorkflowFailed => {
                    tracing::warn!(%tenant, %execution, error = %field("error"), "execution failed")
                }
                EventType::TaskCompleted => {
                    tracing::info!(%tenant, %execution, task, "task completed")
                }
                EventType::TaskFailed => {
                    tracing::warn!(%tenant, %execution, task, error = %field("error"), "task failed")
                }
                EventType::TaskLog => {
                    tracing::info!(target: "cloacina::task", %tenant, %execution, task, attempt = %field("attempt"), "{}", field("message"))
                }
                _ => {}
            }
        }
    })
}
