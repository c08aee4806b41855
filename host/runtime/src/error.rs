//! What can go wrong in the runtime, by kind.

use crate::ExecutionId;

/// A runtime operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Storage(#[from] cloacina_database::DatabaseError),
    #[error("database error while {doing}")]
    Database {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Registration(#[from] RegistrationError),
    #[error("no workflow named `{0}` is registered")]
    UnknownWorkflow(String),
    #[error("the context must be a JSON object, got {0}")]
    ContextNotAnObject(&'static str),
    #[error("the context is not valid JSON: {0}")]
    ContextNotJson(String),
    #[error("no execution with id {0}")]
    UnknownExecution(ExecutionId),
    #[error("the runner is shutting down")]
    ShuttingDown,
    #[error("the runtime's state is inconsistent: {0}")]
    Corrupt(String),
}

impl RuntimeError {
    pub(crate) fn db(doing: &'static str) -> impl Fn(sqlx::Error) -> RuntimeError + Copy {
        move |source| RuntimeError::Database { doing, source }
    }
}

/// A workflow, schedule or trigger that cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("workflow `{workflow}` is not declared by the package")]
    NoSuchWorkflow { workflow: String },
    #[error("workflow `{workflow}` has no tasks")]
    Empty { workflow: String },
    #[error("workflow `{workflow}`: task `{task}` is not declared")]
    UnknownTask { workflow: String, task: String },
    #[error(
        "workflow `{workflow}`: task `{task}` depends on `{dependency}`, which is not in the workflow"
    )]
    MissingDependency {
        workflow: String,
        task: String,
        dependency: String,
    },
    #[error("workflow `{workflow}`: task `{task}` is listed twice")]
    DuplicateTask { workflow: String, task: String },
    #[error("workflow `{workflow}` has a dependency cycle through {cycle}")]
    Cycle { workflow: String, cycle: String },
    #[error("cron schedule `{schedule}`: {reason}")]
    InvalidCron { schedule: String, reason: String },
    #[error("trigger `{trigger}`: {reason}")]
    InvalidTrigger { trigger: String, reason: String },
    #[error(transparent)]
    WorkflowOwned(#[from] cloacina_contract::ownership::WorkflowOwned),
}
