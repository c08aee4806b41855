//! Python functions as the tasks of a workflow. The runtime calls them
//! through the same [`Plugin`] trait as a loaded package's tasks, on its
//! blocking threads; each call attaches to the interpreter only while the
//! Python code runs.

use std::collections::HashMap;
use std::fmt;

use cloacina_contract::Declaration;
use cloacina_loader::{CallControl, Plugin, TaskFailure};
use pyo3::prelude::*;

/// Words that make an error transient, for `retry_condition="transient"`
/// (cloaca 0.8.0's list, matched case-insensitively in the error's type
/// and message).
const TRANSIENT_WORDS: [&str; 8] = [
    "connection",
    "network",
    "timeout",
    "temporary",
    "unavailable",
    "busy",
    "overloaded",
    "rate limit",
];

/// Which failed attempts may be retried (the count and backoff are the
/// runtime's `RetryPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retrying {
    /// Every error.
    AllErrors,
    /// Errors whose type or message reads as transient, and timeouts.
    TransientOnly,
}

/// One task: the Python layer's runner for it, `run(context_json: str,
/// attempt: int) -> str`, which calls the author's function, applies
/// cloaca's return rules and runs its callbacks.
pub(crate) struct PythonTask {
    pub(crate) run: Py<PyAny>,
    pub(crate) retrying: Retrying,
}

/// The tasks of one registered workflow definition.
pub(crate) struct PythonTasks {
    tasks: HashMap<String, PythonTask>,
    declaration: Declaration,
}

impl fmt::Debug for PythonTasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.tasks.keys().collect();
        names.sort();
        f.debug_struct("PythonTasks")
            .field("tasks", &names)
            .finish()
    }
}

impl PythonTasks {
    pub(crate) fn new(tasks: HashMap<String, PythonTask>) -> Self {
        PythonTasks {
            tasks,
            declaration: Declaration::default(),
        }
    }
}

impl Plugin for PythonTasks {
    fn declaration(&self) -> &Declaration {
        &self.declaration
    }

    fn call(
        &self,
        task: &str,
        context: &str,
        control: &CallControl,
    ) -> Result<String, TaskFailure> {
        let Some(python) = self.tasks.get(task) else {
            return Err(TaskFailure::Fatal(format!(
                "no Python task named `{task}` is registered in this process"
            )));
        };
        Python::attach(|py| {
            let returned = python
                .run
                .call1(py, (context, control.attempt()))
                .map_err(|error| failure(py, &error, python.retrying))?;
            returned.extract::<String>(py).map_err(|_| {
                TaskFailure::InvalidOutput("the task's runner did not return JSON text".to_owned())
            })
        })
    }
}

/// A Python exception as a failed attempt: `Python task execution failed:
/// <Type>: <message>`, retryable when the task's condition allows it.
fn failure(py: Python<'_>, error: &PyErr, retrying: Retrying) -> TaskFailure {
    let kind = error
        .get_type(py)
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "Exception".to_owned());
    let message = error
        .value(py)
        .str()
        .map(|text| text.to_string())
        .unwrap_or_default();
    let text = if message.is_empty() {
        format!("Python task execution failed: {kind}")
    } else {
        format!("Python task execution failed: {kind}: {message}")
    };
    let retryable = match retrying {
        Retrying::AllErrors => true,
        Retrying::TransientOnly => is_transient(&kind, &message),
    };
    if retryable {
        TaskFailure::Retryable(text)
    } else {
        TaskFailure::Fatal(text)
    }
}

fn is_transient(kind: &str, message: &str) -> bool {
    let text = format!("{kind} {message}").to_lowercase();
    TRANSIENT_WORDS.iter().any(|word| text.contains(word))
}
