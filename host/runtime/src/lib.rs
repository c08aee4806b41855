//! The durable workflow runtime.
//!
//! A [`Runner`] runs workflows (DAGs of tasks from loaded plugins) on one
//! tenant's database, SQLite or PostgreSQL, committing every state change
//! before announcing it, so that a killed process loses nothing: at the
//! next start, tasks that had completed stay completed and tasks that were
//! running run again (at-least-once; see the crate README).
//!
//! - how contexts flow from task to task: `cloacina_contract::context`
//!   (shared with the SDK's test harness).
//! - [`retry`]: backoff and the retry decision.
//! - [`workflow`]: checked DAGs and the registry of what can run.
//! - `engine`: the writer (batched transactions), workers, leases, NOTIFY.
//! - [`schedule`]: cron schedules and poll triggers.
//! - [`schema`]: the runtime's tables; connections, tenants and
//!   migrations are `cloacina_database`'s (re-exported as [`database`]).

mod completions;
mod engine;
mod error;
mod follow;
mod function_plugin;
mod model;
mod queries;
pub mod retry;
mod runner;
pub mod schedule;
pub mod schema;
pub mod workflow;

pub use cloacina_database as database;
pub use cloacina_database::{Database, DatabaseUrl, Dialect, TenantId, clock};
pub use engine::{EngineStats, abandoned_calls};
pub use error::{RegistrationError, RuntimeError};
pub use follow::EventFollower;
pub use function_plugin::FunctionPlugin;
pub use model::{
    Event, EventType, ExecutionId, ExecutionResult, ExecutionStatus, HostRecord, TaskRecord,
    TaskStatus,
};
pub use runner::{HostIdentity, Runner, RunnerConfig, check_context, parse_context};
pub use workflow::{PackageRef, TaskSpec, Workflow, WorkflowRegistry};
