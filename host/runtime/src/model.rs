//! The runtime's vocabulary: execution ids, statuses, events, results and
//! hosts.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A workflow execution's id (a UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ExecutionId(uuid::Uuid);

impl ExecutionId {
    pub(crate) fn random() -> Self {
        ExecutionId(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for ExecutionId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(text).map(ExecutionId)
    }
}

/// Text enums stored in the database as their snake_case names.
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_enum! {
    /// Where a workflow execution stands.
    ExecutionStatus {
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
}

impl ExecutionStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, ExecutionStatus::Running)
    }
}

stored_enum! {
    /// Where one task of an execution stands.
    ///
    /// `pending` waits for dependencies, `ready` may be claimed now,
    /// `retrying` may be claimed once its backoff has passed, `running` is
    /// claimed by a host under its lease; the other four are final.
    TaskStatus {
        Pending => "pending",
        Ready => "ready",
        Running => "running",
        Retrying => "retrying",
        Completed => "completed",
        Failed => "failed",
        Skipped => "skipped",
        Cancelled => "cancelled",
    }
}

stored_enum! {
    /// What an event records. The names are the reference API's.
    EventType {
        WorkflowStarted => "workflow_started",
        WorkflowCompleted => "workflow_completed",
        WorkflowFailed => "workflow_failed",
        WorkflowCancelled => "workflow_cancelled",
        TaskCreated => "task_created",
        TaskStarted => "task_started",
        TaskCompleted => "task_completed",
        TaskFailed => "task_failed",
        TaskRetryScheduled => "task_retry_scheduled",
        TaskSkipped => "task_skipped",
        TaskCancelled => "task_cancelled",
        TaskLeaseExpired => "task_lease_expired",
        TaskLog => "task_log",
    }
}

impl EventType {
    /// Whether this event ends its execution.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            EventType::WorkflowCompleted | EventType::WorkflowFailed | EventType::WorkflowCancelled
        )
    }
}

/// One lifecycle change of an execution, as committed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub execution_id: ExecutionId,
    /// 1, 2, 3... within the execution, in commit order.
    pub sequence_num: i64,
    pub event_type: EventType,
    pub task_name: Option<String>,
    /// Details as JSON (attempt, error, delay...), or none.
    pub event_data: Option<serde_json::Value>,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// A finished (or, for [`crate::Runner::status`], current) execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionResult {
    pub execution_id: ExecutionId,
    pub workflow_name: String,
    pub status: ExecutionStatus,
    /// The merged outputs of the workflow's final tasks, once completed.
    pub final_context: Option<serde_json::Value>,
    /// Why it failed: the failing task and its error.
    pub error: Option<String>,
    pub failed_task: Option<String>,
    pub started_at_ms: i64,
    pub completed_at_ms: Option<i64>,
    /// The package version the execution runs on, start to end.
    pub package_name: String,
    pub package_version: semver::Version,
}

impl ExecutionResult {
    /// Time from start to end, once ended.
    pub fn duration_ms(&self) -> Option<i64> {
        self.completed_at_ms.map(|end| end - self.started_at_ms)
    }
}

/// One task of an execution, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRecord {
    pub task_name: String,
    pub status: TaskStatus,
    pub attempt: i64,
    pub max_attempts: i64,
    pub output: Option<serde_json::Value>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub completed_at_ms: Option<i64>,
    /// The package version this task runs on (its execution's).
    pub package_version: semver::Version,
}

/// A host with a lease row in a tenant's database, as
/// [`crate::Runner::hosts`] reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostRecord {
    /// The id its claims carry ([`crate::HostIdentity::id`]).
    pub id: String,
    /// Where it serves, if anywhere (hosts of earlier versions do not say).
    pub address: Option<String>,
    /// The version it runs, when it said.
    pub version: Option<String>,
    pub started_at_ms: i64,
    /// Its lease's last renewal: older than the lease TTL, the host is
    /// presumed dead and its running tasks are put back.
    pub heartbeat_at_ms: i64,
    /// The tenant's tasks it has claimed and not yet finished.
    pub running_tasks: i64,
}
