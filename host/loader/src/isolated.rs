//! Isolated native plugins: the library runs in a worker process of its
//! own, spoken to over a pipe.
//!
//! In process, a native library can never be unloaded (abi_stable leaks it),
//! a segfault takes the host down, and a timeout is only a request. In a
//! worker, all three become real: dropping the plugin ends the process
//! (unload), a crash ends only the worker (the next call starts a new one),
//! and a task past its deadline is killed with its process.
//!
//! The protocol is one JSON document per line. The worker first writes
//! `{"declaration": "<json>"}` or `{"load_error": "<message>"}`; then, for
//! each request `{"task", "context", "attempt", "timeout_ms"}` it writes
//! `{"ok": "<json>"}` or `{"error": {"kind", "message"}}`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use cloacina_contract::Declaration;
use serde::{Deserialize, Serialize};

use crate::{CallControl, LoadError, Plugin, TaskFailure};

/// How long a killed task's worker gets beyond the deadline to answer.
const GRACE: Duration = Duration::from_millis(250);

/// A request from the host to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkerRequest {
    pub task: String,
    pub context: String,
    pub attempt: u32,
    pub timeout_ms: Option<u64>,
}

/// A worker's answer to one request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerReply {
    Declaration(String),
    LoadError(String),
    Ok(String),
    Error { kind: String, message: String },
}

impl WorkerReply {
    /// The reply for a task's outcome.
    pub fn from_outcome(outcome: Result<String, TaskFailure>) -> WorkerReply {
        match outcome {
            Ok(output) => WorkerReply::Ok(output),
            Err(failure) => {
                let (kind, message) = match failure {
                    TaskFailure::Retryable(message) => ("retryable", message),
                    TaskFailure::Fatal(message) => ("fatal", message),
                    TaskFailure::InvalidOutput(message) => ("invalid_output", message),
                    TaskFailure::TimedOut(ms) => ("timed_out", ms.to_string()),
                    TaskFailure::Cancelled => ("cancelled", String::new()),
                };
                WorkerReply::Error {
                    kind: kind.to_owned(),
                    message,
                }
            }
        }
    }

    fn into_outcome(self) -> Result<String, TaskFailure> {
        match self {
            WorkerReply::Ok(output) => Ok(output),
            WorkerReply::Error { kind, message } => Err(match kind.as_str() {
                "retryable" => TaskFailure::Retryable(message),
                "invalid_output" => TaskFailure::InvalidOutput(message),
                "timed_out" => TaskFailure::TimedOut(message.parse().unwrap_or(0)),
                "cancelled" => TaskFailure::Cancelled,
                _ => TaskFailure::Fatal(message),
            }),
            other => Err(TaskFailure::Fatal(format!(
                "the plugin worker answered out of turn: {other:?}"
            ))),
        }
    }
}

/// A running worker process.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<Result<WorkerReply, String>>,
}

impl Worker {
    fn spawn(worker_binary: &Path, library: &Path) -> Result<(Worker, String), LoadError> {
        let failed = |reason: String| LoadError::Worker {
            path: library.display().to_string(),
            reason,
        };
        let mut child = Command::new(worker_binary)
            .arg(library)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| {
                failed(format!("cannot start {}: {error}", worker_binary.display()))
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(failed("the worker's pipes are missing".into()));
        };
        let (sender, replies) = channel();
        std::thread::Builder::new()
            .name("cloacina-plugin-worker-reader".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let reply = line
                        .map_err(|error| error.to_string())
                        .and_then(|line| serde_json::from_str(&line).map_err(|e| e.to_string()));
                    if sender.send(reply).is_err() {
                        break;
                    }
                }
            })
            .map_err(|error| failed(error.to_string()))?;
        let mut worker = Worker {
            child,
            stdin,
            replies,
        };
        let first = worker.replies.recv_timeout(Duration::from_secs(30));
        match first {
            Ok(Ok(WorkerReply::Declaration(json))) => Ok((worker, json)),
            Ok(Ok(WorkerReply::LoadError(reason))) => {
                worker.kill();
                Err(failed(reason))
            }
            other => {
                worker.kill();
                Err(failed(format!(
                    "the worker did not report a declaration: {other:?}"
                )))
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Why the worker is gone, for the error message.
    fn exit_reason(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => status.to_string(),
            _ => "its pipe closed".to_owned(),
        }
    }
}

/// A native plugin in its own worker process.
pub struct IsolatedPlugin {
    worker_binary: PathBuf,
    library: PathBuf,
    declaration: Declaration,
    worker: Mutex<Option<Worker>>,
}

impl std::fmt::Debug for IsolatedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolatedPlugin")
            .field("library", &self.library)
            .finish_non_exhaustive()
    }
}

impl IsolatedPlugin {
    /// Starts a worker (`worker_binary`, the `cloacina-plugin-worker`
    /// program) for the library at `library` and reads its declaration.
    pub fn load(worker_binary: &Path, library: &Path) -> Result<IsolatedPlugin, LoadError> {
        let (worker, json) = Worker::spawn(worker_binary, library)?;
        let declaration = crate::native::parse_declaration(&json).map_err(|reason| {
            LoadError::InvalidDeclaration {
                path: library.display().to_string(),
                reason,
            }
        })?;
        Ok(IsolatedPlugin {
            worker_binary: worker_binary.to_owned(),
            library: library.to_owned(),
            declaration,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// The worker's process id, while one runs.
    pub fn worker_pid(&self) -> Option<u32> {
        self.worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|worker| worker.child.id())
    }
}

impl Plugin for IsolatedPlugin {
    fn declaration(&self) -> &Declaration {
        &self.declaration
    }

    fn call(
        &self,
        task: &str,
        context: &str,
        control: &CallControl,
    ) -> Result<String, TaskFailure> {
        // One call at a time per worker; a pool of workers can come later.
        let mut slot = self
            .worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            let (worker, _) = Worker::spawn(&self.worker_binary, &self.library)
                .map_err(|error| TaskFailure::Fatal(error.to_string()))?;
            *slot = Some(worker);
        }
        let Some(worker) = slot.as_mut() else {
            return Err(TaskFailure::Fatal("no plugin worker".into()));
        };
        let request = WorkerRequest {
            task: task.to_owned(),
            context: context.to_owned(),
            attempt: control.attempt(),
            timeout_ms: control
                .remaining()
                .map(|left| u64::try_from(left.as_millis()).unwrap_or(u64::MAX)),
        };
        let line =
            serde_json::to_string(&request).map_err(|e| TaskFailure::Fatal(e.to_string()))?;
        if writeln!(worker.stdin, "{line}")
            .and_then(|()| worker.stdin.flush())
            .is_err()
        {
            let reason = worker.exit_reason();
            *slot = None;
            return Err(TaskFailure::Fatal(format!(
                "the plugin worker died ({reason})"
            )));
        }
        let hard_deadline = control
            .remaining()
            .map(|left| Instant::now() + left + GRACE);
        loop {
            match worker.replies.recv_timeout(Duration::from_millis(10)) {
                Ok(Ok(reply)) => {
                    return match control.stop_reason() {
                        Some(stopped) => Err(stopped),
                        None => reply.into_outcome(),
                    };
                }
                Ok(Err(error)) => {
                    worker.kill();
                    *slot = None;
                    return Err(TaskFailure::Fatal(format!(
                        "the plugin worker sent garbage: {error}"
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let reason = worker.exit_reason();
                    *slot = None;
                    return Err(TaskFailure::Fatal(format!(
                        "the plugin worker died ({reason})"
                    )));
                }
                Err(RecvTimeoutError::Timeout) => {
                    let overdue = hard_deadline.is_some_and(|deadline| Instant::now() >= deadline);
                    if overdue || control.is_cancelled() {
                        // The task ignored the request to stop: end it.
                        worker.kill();
                        *slot = None;
                        return Err(control.stop_reason().unwrap_or(TaskFailure::Cancelled));
                    }
                }
            }
        }
    }
}

impl Drop for IsolatedPlugin {
    fn drop(&mut self) {
        if let Some(mut worker) = self
            .worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            // Closing stdin asks the worker to exit; kill makes sure.
            worker.kill();
        }
    }
}
