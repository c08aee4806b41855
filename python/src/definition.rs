//! A workflow defined in Python, as the runtime runs it: its tasks'
//! declarations (retries, timeouts) and the Python functions behind them,
//! with cloaca's context rules (arrays united at joins, a returned context
//! replacing the input).

use std::collections::HashMap;
use std::sync::Arc;

use cloacina_contract::context::{Join, Output};
use cloacina_contract::manifest::{
    Backoff, Identifier, RetryCondition, RetryPolicy, TaskDeclaration,
};
use cloacina_runtime::{PackageRef, Workflow};
use pyo3::prelude::*;

use crate::errors::raise;
use crate::plugin::{PythonTask, PythonTasks, Retrying};

/// A task as the Python layer hands it over (read by attribute).
#[derive(FromPyObject)]
pub(crate) struct TaskDefinition {
    id: String,
    dependencies: Vec<String>,
    max_attempts: u32,
    backoff: String,
    delay_ms: u64,
    max_delay_ms: u64,
    jitter: bool,
    condition: String,
    timeout_ms: Option<u64>,
    run: Py<PyAny>,
}

/// Workflow `name` of `tasks`, at `version` (a hash of the definition),
/// its tasks run by `submit`.
pub(crate) fn python_workflow(
    name: &str,
    version: &str,
    tasks: Vec<TaskDefinition>,
    submit: Py<PyAny>,
) -> Result<Workflow, String> {
    let version = semver::Version::parse(&format!("0.0.0-py{version}"))
        .map_err(|error| format!("invalid workflow version `{version}`: {error}"))?;
    let mut declarations = Vec::with_capacity(tasks.len());
    let mut runners = HashMap::with_capacity(tasks.len());
    for task in tasks {
        let id = identifier(&task.id)?;
        let dependencies = task
            .dependencies
            .iter()
            .map(|dep| identifier(dep))
            .collect::<Result<Vec<_>, _>>()?;
        let (condition, retrying) = match task.condition.as_str() {
            "never" => (RetryCondition::Never, Retrying::Never),
            "transient" => (RetryCondition::Retryable, Retrying::TransientOnly),
            _ => (RetryCondition::Retryable, Retrying::AllErrors),
        };
        let backoff = match task.backoff.as_str() {
            "linear" => Backoff::Linear,
            "exponential" => Backoff::Exponential,
            _ => Backoff::Fixed,
        };
        declarations.push(TaskDeclaration {
            id,
            description: String::new(),
            dependencies,
            retry: RetryPolicy {
                max_attempts: task.max_attempts.max(1),
                backoff,
                delay_ms: task.delay_ms,
                max_delay_ms: Some(task.max_delay_ms),
                jitter: task.jitter,
                condition,
            },
            timeout_ms: task.timeout_ms,
            invokes: None,
        });
        runners.insert(
            task.id,
            PythonTask {
                run: task.run,
                retrying,
            },
        );
    }
    let package = PackageRef {
        name: format!("python:{name}"),
        version,
    };
    let workflow = Workflow::new(
        name,
        package,
        declarations,
        Arc::new(PythonTasks::new(runners, submit)),
    )
    .map_err(|error| format!("Workflow validation failed: {error}"))?
    .with_join(Join::UniteArrays)
    .with_output_rule(Output::ReplacesInput);
    Ok(workflow)
}

/// Checks that `text` may name a task or workflow (the runtime's rule),
/// raising `WorkflowError` naming `what` otherwise.
#[pyfunction]
pub(crate) fn check_name(py: Python<'_>, what: &str, text: &str) -> PyResult<()> {
    Identifier::new(text).map(|_| ()).map_err(|error| {
        raise(
            py,
            "WorkflowError",
            format!("invalid {what} `{text}`: {error}"),
        )
    })
}

fn identifier(text: &str) -> Result<Identifier, String> {
    Identifier::new(text)
        .map_err(|error| format!("`{text}` cannot name a task or workflow: {error}"))
}
