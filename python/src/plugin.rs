//! Python functions as the tasks of a workflow. The runtime calls them
//! through the same [`Plugin`] trait as a loaded package's tasks.
//!
//! The Python code itself runs on threads Python made (`cloaca._threads`,
//! daemon threads), never on the runtime's: a runtime thread only hands an
//! attempt over (holding the GIL for that moment) and waits for its answer
//! without the GIL. So an attempt past its deadline, or cancelled, is
//! interrupted in its own thread (an exception raised there) while the
//! runtime moves on, and an interpreter that exits with attempts still
//! running simply stops its daemon threads: no thread Python does not know
//! ever holds the GIL while it finalises.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use cloacina_contract::Declaration;
use cloacina_loader::{CallControl, Plugin, TaskFailure};
use pyo3::prelude::*;

/// How often a waiting call looks at its deadline and cancellation.
const CHECK_EVERY: Duration = Duration::from_millis(20);

/// Set when the interpreter starts exiting: no call attaches to it again.
static CLOSING: AtomicBool = AtomicBool::new(false);

/// Marks the interpreter as exiting (`cloaca` calls it from `atexit`).
#[pyfunction]
pub(crate) fn interpreter_exiting() {
    CLOSING.store(true, Ordering::Release);
}

/// Words that make an error transient, for `retry_condition="transient"`
/// (cloaca 0.8.0's list, matched case-insensitively in the error's type
/// and message).
pub(crate) const TRANSIENT_WORDS: [&str; 8] = [
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
    /// None.
    Never,
}

/// One task: the Python layer's runner for it, `run(context_json: str,
/// attempt: int) -> str`, which calls the author's function, applies
/// cloaca's return rules and runs its callbacks.
pub(crate) struct PythonTask {
    pub(crate) run: Py<PyAny>,
    pub(crate) retrying: Retrying,
}

/// The tasks of one registered workflow definition, and the threads that
/// run them (`cloaca._threads.TaskThreads.submit`).
pub(crate) struct PythonTasks {
    tasks: HashMap<String, PythonTask>,
    submit: Py<PyAny>,
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
    pub(crate) fn new(tasks: HashMap<String, PythonTask>, submit: Py<PyAny>) -> Self {
        PythonTasks {
            tasks,
            submit,
            declaration: Declaration::default(),
        }
    }
}

/// How an attempt ended, as its thread reports it.
enum Answer {
    Output(String),
    Raised { kind: String, message: String },
}

/// Where a task thread sends its answer (`reply.output(text)` or
/// `reply.raised(type_name, message)`); later answers are ignored.
#[pyclass(module = "cloaca._native")]
pub(crate) struct Reply {
    sender: Mutex<Option<mpsc::SyncSender<Answer>>>,
}

impl Reply {
    fn send(&self, answer: Answer) {
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(sender) = sender {
            let _ = sender.send(answer);
        }
    }
}

#[pymethods]
impl Reply {
    fn output(&self, text: String) {
        self.send(Answer::Output(text));
    }

    fn raised(&self, kind: String, message: String) {
        self.send(Answer::Raised { kind, message });
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
        if CLOSING.load(Ordering::Acquire) {
            return Err(TaskFailure::Cancelled);
        }
        let (sender, answers) = mpsc::sync_channel(1);
        let reply = Reply {
            sender: Mutex::new(Some(sender)),
        };
        let ticket = Python::attach(|py| {
            let reply = Py::new(py, reply)?;
            self.submit.call1(
                py,
                (python.run.clone_ref(py), context, control.attempt(), reply),
            )
        })
        .map_err(|error| TaskFailure::Fatal(format!("cannot start the Python task: {error}")))?;
        loop {
            match answers.recv_timeout(CHECK_EVERY) {
                Ok(Answer::Output(text)) => return Ok(text),
                Ok(Answer::Raised { kind, message }) => {
                    return Err(failure(&kind, &message, python.retrying));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(TaskFailure::Fatal(
                        "the Python task's thread ended without an answer".to_owned(),
                    ));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if CLOSING.load(Ordering::Acquire) {
                return Err(TaskFailure::Cancelled);
            }
            if let Some(stopped) = control.stop_reason() {
                let why = match &stopped {
                    TaskFailure::TimedOut(ms) => format!("the task timed out after {ms} ms"),
                    _ => "the task was cancelled".to_owned(),
                };
                // Interrupt the attempt in its thread; it reports (and runs
                // on_failure) there, and its answer is no longer awaited.
                Python::attach(|py| {
                    if let Err(error) = ticket.call_method1(py, "interrupt", (why,)) {
                        tracing::warn!(%error, "cannot interrupt a Python task");
                    }
                });
                return Err(stopped);
            }
        }
    }
}

/// A Python exception as a failed attempt: `Python task execution failed:
/// <Type>: <message>`, retryable when the task's condition allows it.
fn failure(kind: &str, message: &str, retrying: Retrying) -> TaskFailure {
    let text = failure_text(kind, message);
    let retryable = match retrying {
        Retrying::AllErrors => true,
        Retrying::TransientOnly => is_transient(kind, message),
        Retrying::Never => false,
    };
    if retryable {
        TaskFailure::Retryable(text)
    } else {
        TaskFailure::Fatal(text)
    }
}

/// How a Python exception reads as a task's error, in the runtime's
/// records and in `on_failure`: `Python task execution failed: <Type>:
/// <message>`.
#[pyfunction]
pub(crate) fn failure_text(kind: &str, message: &str) -> String {
    if message.is_empty() {
        format!("Python task execution failed: {kind}")
    } else {
        format!("Python task execution failed: {kind}: {message}")
    }
}

fn is_transient(kind: &str, message: &str) -> bool {
    let text = format!("{kind} {message}").to_lowercase();
    TRANSIENT_WORDS.iter().any(|word| text.contains(word))
}

/// Whether an error's type and message read as transient (cloaca's rule,
/// for `RetryCondition.transient_only()`).
#[pyfunction]
pub(crate) fn is_transient_error(kind: &str, message: &str) -> bool {
    is_transient(kind, message)
}
