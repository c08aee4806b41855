//! What can go wrong with graphs, by kind.

/// A graph operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("no computation graph named `{0}`")]
    UnknownGraph(String),
    #[error("no accumulator named `{0}` takes events")]
    UnknownAccumulator(String),
    #[error("reactor `{0}` is paused")]
    Paused(String),
    #[error("graph `{0}` is not running (it is restarting or crashed)")]
    NotRunning(String),
    #[error("invalid graph input: {0}")]
    InvalidInput(String),
    #[error("graph `{graph}` cannot be registered: {reason}")]
    Registration { graph: String, reason: String },
    #[error("graph `{graph}` is declared by package `{owner}`")]
    Owned { graph: String, owner: String },
    #[error("database error while {doing}")]
    Database {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("database error while committing graph events or firings")]
    Commit {
        #[source]
        source: std::sync::Arc<sqlx::Error>,
    },
    #[error(transparent)]
    Storage(#[from] cloacina_database::DatabaseError),
    #[error("graph `{0}` is run by another host now: this host's lease on it was taken")]
    Fenced(String),
    #[error(
        "graph `{graph}`: no host running its reactor answered within {waited_ms} ms (the command may still take effect)"
    )]
    OwnerUnreachable { graph: String, waited_ms: u64 },
    #[error("{0}")]
    Remote(String),
    #[error("the graph runtime is shutting down")]
    ShuttingDown,
    #[error("the graph state is inconsistent: {0}")]
    Corrupt(String),
}

impl GraphError {
    pub(crate) fn db(doing: &'static str) -> impl Fn(sqlx::Error) -> GraphError + Copy {
        move |source| GraphError::Database { doing, source }
    }

    /// Whether retrying soon may succeed (the database is away or busy).
    pub fn is_transient(&self) -> bool {
        match self {
            GraphError::Database { source, .. } => cloacina_database::is_transient(source),
            GraphError::Commit { source } => cloacina_database::is_transient(source),
            GraphError::Storage(error) => cloacina_database::is_unavailable(error),
            _ => false,
        }
    }
}
