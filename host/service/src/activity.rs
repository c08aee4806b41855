//! What the host's workflows do, written to the log as it happens: a line
//! per execution start and end, and per task end, so a person running the
//! server sees the work.

use cloacina_runtime::{EventType, Runner};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

/// Logs `runner`'s events until its event stream closes.
pub(crate) fn log_activity(runner: &Runner) -> JoinHandle<()> {
    let tenant = runner.tenant().to_string();
    let mut events = runner.subscribe();
    tokio::spawn(async move {
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
                _ => {}
            }
        }
    })
}
