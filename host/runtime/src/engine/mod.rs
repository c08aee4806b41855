//! The engine: one writer per tenant database commits every state change
//! in batches and hands claimed tasks to workers; workers call the plugins
//! and report back to the writer.
//!
//! ```text
//!  Runner::execute ──Start──►┐
//!  worker ─────────Finished─►│ writer: one transaction per batch of commands
//!  lease reaper ───Reap─────►│   (start, finish, retry, skip, cancel, claim,
//!  cron / triggers ─Start───►│    events) ── commit ──► replies, event channel,
//!  PG NOTIFY, timer ─Wake───►┘    completions, claimed tasks ──► workers
//! ```
//!
//! Nothing is announced before its transaction commits. Claimed tasks go
//! straight to a worker through a channel: there is no polling interval on
//! the hot path. The only timers are the retry backoff (the writer sleeps
//! until the earliest `ready_at`), the lease heartbeat and a slow safety
//! net that looks for work other hosts left.

pub(crate) mod lease;
pub(crate) mod notify;
mod sql;
mod worker;
mod writer;

use std::sync::Arc;

use cloacina_loader::TaskFailure;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::RuntimeError;
use crate::model::ExecutionId;
use crate::workflow::Workflow;

pub(crate) use lease::spawn_lease_keeper;
pub(crate) use notify::spawn_listener;
pub use worker::abandoned_calls;
pub use writer::EngineStats;
pub(crate) use writer::{Outlets, Writer, WriterConfig};

/// What the writer is asked to do.
pub(crate) enum Command {
    Start {
        request: StartRequest,
        reply: oneshot::Sender<Result<Option<ExecutionId>, RuntimeError>>,
    },
    Finished(Finished),
    Cancel {
        execution: ExecutionId,
        reply: oneshot::Sender<Result<bool, RuntimeError>>,
    },
    /// Something may be ready: claim what fits.
    Wake,
    /// Put back running tasks whose host's lease expired; with
    /// `all_but_me`, every running task of another host (SQLite at start).
    Reap {
        all_but_me: bool,
    },
    /// Stop claiming; answer once no task of this host runs.
    Drain {
        reply: oneshot::Sender<()>,
    },
    /// A line a running task logged (`ctx.log`): kept as a `task_log`
    /// event of its execution.
    TaskLog(TaskLog),
    /// Executions another host ended (cancelled, perhaps): their calls
    /// still running here are asked to stop.
    StopCalls(Vec<ExecutionId>),
}

impl Command {
    /// A caller waits for this command's answer (a start, a cancel).
    pub(crate) fn awaits_reply(&self) -> bool {
        matches!(self, Command::Start { .. } | Command::Cancel { .. })
    }
}

/// One `ctx.log` line of a task attempt.
pub(crate) struct TaskLog {
    pub execution: ExecutionId,
    pub task: String,
    pub attempt: i64,
    pub message: String,
}

/// A new execution to start, unless its guard says it already was.
pub(crate) struct StartRequest {
    pub id: ExecutionId,
    pub workflow: Arc<Workflow>,
    pub input: Value,
    /// `api`, `cron:NAME` or `trigger:NAME`.
    pub origin: String,
    pub guard: Option<StartGuard>,
}

/// What makes a scheduled start happen once, whichever host gets there
/// first.
pub(crate) enum StartGuard {
    /// The cron schedule's firing at this time (ms) has not happened.
    CronFiring { schedule: String, fire_at: i64 },
    /// The trigger has not fired for this key.
    TriggerKey { trigger: String, key: String },
}

/// A task call that returned (or was stopped).
pub(crate) struct Finished {
    pub execution: ExecutionId,
    pub position: usize,
    pub attempt: i64,
    pub input: Arc<Value>,
    pub outcome: Result<String, TaskFailure>,
}

/// A claimed task, handed to a worker.
pub(crate) struct Assignment {
    pub execution: ExecutionId,
    pub position: usize,
    pub attempt: i64,
    pub workflow: Arc<Workflow>,
    pub input: Arc<Value>,
    pub control: cloacina_loader::CallControl,
}
