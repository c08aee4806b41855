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
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
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
    /// A line the running task logged; its outcome follows.
    Log(String),
    Ok(String),
    Error {
        kind: String,
        message: String,
    },
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

/// A running worker process. The calling thread reads replies itself; a
/// [`Watchdog`] kills the process when a call overruns or is cancelled.
struct Worker {
    child: Arc<Mutex<Child>>,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(
        worker_binary: &Path,
        library: &Path,
        watchdog: &Watchdog,
    ) -> Result<(Worker, String), LoadError> {
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
        let mut worker = Worker {
            child: Arc::new(Mutex::new(child)),
            stdin,
            stdout: BufReader::new(stdout),
        };
        // A library whose initialisation hangs must not hang the host.
        let loading = CallControl::with_timeout(Duration::from_secs(30));
        let child = worker.child.clone();
        let first = watchdog.guard(&child, &loading, || worker.read_reply());
        match first {
            Ok(WorkerReply::Declaration(json)) => Ok((worker, json)),
            Ok(WorkerReply::LoadError(reason)) => {
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

    /// The next reply; an error when the pipe closed or the line is garbage.
    fn read_reply(&mut self) -> Result<WorkerReply, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err(String::new()),
            Ok(_) => serde_json::from_str(&line).map_err(|error| format!("garbage: {error}")),
            Err(error) => Err(error.to_string()),
        }
    }

    fn kill(&mut self) {
        let mut child = lock(&self.child);
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Ends the worker if it still runs, and says how it ended.
    fn exit_reason(&mut self) -> String {
        let mut child = lock(&self.child);
        if let Ok(None) = child.try_wait() {
            // Give a dying process a moment to be reaped with its own
            // status before ending it ourselves.
            std::thread::sleep(Duration::from_millis(20));
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
        }
        match child.wait() {
            Ok(status) => status.to_string(),
            Err(error) => error.to_string(),
        }
    }

    fn id(&self) -> u32 {
        lock(&self.child).id()
    }
}

/// Watches the call in flight and kills its worker when the call is
/// cancelled or passes its deadline (plus a grace period for the task to
/// stop by itself). One sleeping thread per started worker slot; the reply path does not
/// go through it.
struct Watchdog {
    shared: Arc<(Mutex<Watched>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Watched {
    call: Option<(CallControl, Option<Instant>, Arc<Mutex<Child>>)>,
    killed: bool,
    shutdown: bool,
}

impl Watchdog {
    fn start() -> std::io::Result<Watchdog> {
        let shared = Arc::new((Mutex::new(Watched::default()), Condvar::new()));
        let watched = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cloacina-plugin-watchdog".into())
            .spawn(move || {
                let (watched_state, wake) = &*watched;
                let mut state = lock(watched_state);
                while !state.shutdown {
                    let overrun = state.call.as_ref().is_some_and(|(control, deadline, _)| {
                        control.is_cancelled()
                            || deadline.is_some_and(|deadline| Instant::now() >= deadline)
                    });
                    if overrun && let Some((_, _, child)) = state.call.take() {
                        let _ = lock(&child).kill();
                        state.killed = true;
                    }
                    state = if state.call.is_some() {
                        wake.wait_timeout(state, Duration::from_millis(10))
                            .map(|(guard, _)| guard)
                            .unwrap_or_else(|poisoned| poisoned.into_inner().0)
                    } else {
                        wake.wait(state)
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                    };
                }
            })?;
        Ok(Watchdog {
            shared,
            thread: Some(thread),
        })
    }

    /// Runs `read` (a blocking read of the worker's reply) under watch.
    /// Returns what it read; `killed` tells whether the watchdog ended it.
    fn guard<R>(
        &self,
        child: &Arc<Mutex<Child>>,
        control: &CallControl,
        read: impl FnOnce() -> R,
    ) -> R {
        let (watched_state, wake) = &*self.shared;
        {
            let mut state = lock(watched_state);
            let deadline = control
                .remaining()
                .map(|left| Instant::now() + left + GRACE);
            state.call = Some((control.clone(), deadline, child.clone()));
            state.killed = false;
        }
        wake.notify_one();
        let outcome = read();
        let mut state = lock(watched_state);
        state.call = None;
        outcome
    }

    fn killed(&self) -> bool {
        lock(&self.shared.0).killed
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        {
            let mut state = lock(&self.shared.0);
            state.shutdown = true;
        }
        self.shared.1.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A native plugin in worker processes of its own: a pool of workers,
/// each running one call at a time, so calls of one package run side by
/// side. Workers start when calls need them (the first at load, to read
/// the declaration); a worker that dies is replaced by the next call that
/// takes its slot. A call that finds every worker busy waits for whichever
/// frees first, and gives up when it is cancelled or its deadline passes.
pub struct IsolatedPlugin {
    worker_binary: PathBuf,
    library: PathBuf,
    declaration: Declaration,
    slots: Vec<Mutex<Slot>>,
    /// Held while looking for a free slot; `freed` is signalled under it
    /// whenever a slot is given back, so no release goes unnoticed.
    looking: Mutex<()>,
    freed: Condvar,
}

/// One worker of the pool, with the watchdog that ends its overrunning
/// calls; both started with the slot's first call.
#[derive(Default)]
struct Slot {
    worker: Option<Worker>,
    watchdog: Option<Watchdog>,
}

/// A slot taken for one call; giving it back wakes a waiting call.
struct TakenSlot<'a> {
    slot: Option<std::sync::MutexGuard<'a, Slot>>,
    plugin: &'a IsolatedPlugin,
}

impl Drop for TakenSlot<'_> {
    fn drop(&mut self) {
        drop(self.slot.take());
        let _looking = lock(&self.plugin.looking);
        self.plugin.freed.notify_one();
    }
}

impl std::fmt::Debug for IsolatedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolatedPlugin")
            .field("library", &self.library)
            .field("workers", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Workers per plugin by default: one per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// How long a call waiting for a worker sleeps before it looks at its own
/// deadline and cancellation again.
const WAIT_CHECK: Duration = Duration::from_millis(20);

impl IsolatedPlugin {
    /// Starts a worker (`worker_binary`, the `cloacina-plugin-worker`
    /// program) for the library at `library` and reads its declaration;
    /// up to [`default_workers`] run its calls.
    pub fn load(worker_binary: &Path, library: &Path) -> Result<IsolatedPlugin, LoadError> {
        Self::load_with_workers(worker_binary, library, default_workers())
    }

    /// As [`IsolatedPlugin::load`], with at most `workers` (at least one)
    /// worker processes running calls at once.
    pub fn load_with_workers(
        worker_binary: &Path,
        library: &Path,
        workers: usize,
    ) -> Result<IsolatedPlugin, LoadError> {
        let watchdog = Watchdog::start().map_err(|error| LoadError::Worker {
            path: library.display().to_string(),
            reason: error.to_string(),
        })?;
        let (worker, json) = Worker::spawn(worker_binary, library, &watchdog)?;
        let declaration = crate::native::parse_declaration(&json).map_err(|reason| {
            LoadError::InvalidDeclaration {
                path: library.display().to_string(),
                reason,
            }
        })?;
        let slots: Vec<Mutex<Slot>> = (0..workers.max(1)).map(|_| Mutex::default()).collect();
        *lock(&slots[0]) = Slot {
            worker: Some(worker),
            watchdog: Some(watchdog),
        };
        Ok(IsolatedPlugin {
            worker_binary: worker_binary.to_owned(),
            library: library.to_owned(),
            declaration,
            slots,
            looking: Mutex::new(()),
            freed: Condvar::new(),
        })
    }

    /// The first worker's process id, while one runs (calls made one at a
    /// time all go to it).
    pub fn worker_pid(&self) -> Option<u32> {
        lock(&self.slots[0]).worker.as_ref().map(Worker::id)
    }

    /// The most worker processes this plugin runs at once.
    pub fn workers(&self) -> usize {
        self.slots.len()
    }

    /// A free slot, the first one first; when every slot is busy, the
    /// first one freed. Stops waiting when the call is cancelled or past
    /// its deadline.
    fn take_slot(&self, control: &CallControl) -> Result<TakenSlot<'_>, TaskFailure> {
        let mut looking = lock(&self.looking);
        loop {
            for slot in &self.slots {
                let taken = match slot.try_lock() {
                    Ok(guard) => guard,
                    Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => continue,
                };
                return Ok(TakenSlot {
                    slot: Some(taken),
                    plugin: self,
                });
            }
            if let Some(stopped) = control.stop_reason() {
                return Err(stopped);
            }
            looking = self
                .freed
                .wait_timeout(looking, WAIT_CHECK)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let mut taken = self.take_slot(control)?;
        // The call may have waited for its slot: past its deadline, or
        // cancelled meanwhile, it does not start.
        if let Some(stopped) = control.stop_reason() {
            return Err(stopped);
        }
        let Some(slot) = taken.slot.as_deref_mut() else {
            return Err(TaskFailure::Fatal("no plugin worker slot".into()));
        };
        if slot.watchdog.is_none() {
            let watchdog = Watchdog::start().map_err(|error| {
                TaskFailure::Fatal(format!("cannot watch a plugin worker: {error}"))
            })?;
            slot.watchdog = Some(watchdog);
        }
        let Slot {
            worker: worker_slot,
            watchdog: Some(watchdog),
        } = slot
        else {
            return Err(TaskFailure::Fatal("no plugin watchdog".into()));
        };
        if worker_slot.is_none() {
            let (worker, _) = Worker::spawn(&self.worker_binary, &self.library, watchdog)
                .map_err(|error| TaskFailure::Fatal(error.to_string()))?;
            *worker_slot = Some(worker);
        }
        let Some(worker) = worker_slot.as_mut() else {
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
            *worker_slot = None;
            return Err(TaskFailure::Fatal(format!(
                "the plugin worker died ({reason})"
            )));
        }
        let child = worker.child.clone();
        // Log lines come first, as the task writes them; then its outcome.
        let reply = watchdog.guard(&child, control, || {
            loop {
                match worker.read_reply() {
                    Ok(WorkerReply::Log(message)) => control.log(&message),
                    other => break other,
                }
            }
        });
        match reply {
            Ok(reply) => match control.stop_reason() {
                Some(stopped) => Err(stopped),
                None => reply.into_outcome(),
            },
            Err(error) => {
                let killed = watchdog.killed();
                let reason = worker.exit_reason();
                *worker_slot = None;
                if killed {
                    // The task ignored the request to stop: it was ended.
                    return Err(control.stop_reason().unwrap_or(TaskFailure::Cancelled));
                }
                Err(TaskFailure::Fatal(if error.is_empty() {
                    format!("the plugin worker died ({reason})")
                } else {
                    format!("the plugin worker failed: {error} ({reason})")
                }))
            }
        }
    }
}

impl Drop for IsolatedPlugin {
    fn drop(&mut self) {
        for slot in &self.slots {
            if let Some(mut worker) = lock(slot).worker.take() {
                // Closing stdin asks the worker to exit; kill makes sure.
                worker.kill();
            }
        }
    }
}
