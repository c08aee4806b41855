//! What the runner hands back to Python: plain dicts the Python layer
//! wraps (`WorkflowResult`, schedule listings).

use cloacina_runtime::{ExecutionResult, ExecutionStatus, TaskStatus};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::cron;

/// An ended execution as the Python layer reads it: `status` (cloaca's
/// names), times, the final context as JSON text, cloaca's error summary,
/// and each failed task's error.
pub(crate) fn result_dict<'py>(
    py: Python<'py>,
    result: &ExecutionResult,
    tasks: &[cloacina_runtime::TaskRecord],
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let status = match result.status {
        ExecutionStatus::Running => "Running",
        ExecutionStatus::Completed => "Completed",
        ExecutionStatus::Failed => "Failed",
        ExecutionStatus::Cancelled => "Cancelled",
    };
    dict.set_item("status", status)?;
    dict.set_item("execution_id", result.execution_id.to_string())?;
    dict.set_item("workflow_name", &result.workflow_name)?;
    dict.set_item("start_time", rfc3339(result.started_at_ms))?;
    dict.set_item("end_time", result.completed_at_ms.map(rfc3339))?;
    dict.set_item(
        "duration",
        result.duration_ms().map(|ms| ms as f64 / 1000.0),
    )?;
    // Completed: the final tasks' results. Otherwise the result of the
    // task that completed last, if any (cloaca's rule).
    let final_context = result.final_context.clone().or_else(|| {
        tasks
            .iter()
            .filter(|task| task.status == TaskStatus::Completed)
            .max_by_key(|task| (task.completed_at_ms, task.task_name.clone()))
            .and_then(|task| task.output.clone())
    });
    dict.set_item(
        "final_context",
        final_context.map(|value| value.to_string()),
    )?;
    let count = |status: TaskStatus| tasks.iter().filter(|task| task.status == status).count();
    let failed = count(TaskStatus::Failed);
    let summary = (result.status != ExecutionStatus::Completed).then(|| {
        format!(
            "{failed} task(s) failed, {} completed, {} skipped",
            count(TaskStatus::Completed),
            count(TaskStatus::Skipped) + count(TaskStatus::Cancelled)
        )
    });
    dict.set_item("error_message", summary)?;
    dict.set_item("failed_task", result.failed_task.as_deref())?;
    let errors = PyDict::new(py);
    for task in tasks {
        if let Some(error) = &task.last_error {
            errors.set_item(&task.task_name, error)?;
        }
    }
    dict.set_item("task_errors", errors)?;
    Ok(dict)
}

/// A stored cron schedule, with cloaca's keys.
pub(crate) fn cron_dict<'py>(
    py: Python<'py>,
    stored: &cron::StoredCron,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("id", &stored.id)?;
    dict.set_item("workflow_name", &stored.workflow_name)?;
    dict.set_item("cron_expression", &stored.cron_expression)?;
    dict.set_item("timezone", &stored.timezone)?;
    dict.set_item("enabled", stored.enabled)?;
    dict.set_item("catchup_policy", "skip")?;
    dict.set_item("next_run_at", stored.next_run_at.map(rfc3339))?;
    dict.set_item("last_run_at", stored.last_run_at.map(rfc3339))?;
    dict.set_item("created_at", rfc3339(stored.created_at))?;
    dict.set_item("updated_at", rfc3339(stored.updated_at))?;
    Ok(dict)
}

/// Milliseconds since the epoch as RFC 3339 (UTC, milliseconds).
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
