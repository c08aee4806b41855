//! What the registry refuses, and why.

/// A registry operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "{name} {version} is already registered with other content (sha256 {existing}); publish a new version instead"
    )]
    Conflict {
        name: String,
        version: String,
        existing: String,
    },
    #[error(transparent)]
    WorkflowOwned(#[from] cloacina_contract::ownership::WorkflowOwned),
    #[error("key {0} is revoked and cannot be trusted again")]
    Revoked(String),
    #[error("no package {name} {version} is registered")]
    NotFound { name: String, version: String },
    #[error("database error while {doing}")]
    Database {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Storage(#[from] cloacina_database::DatabaseError),
    #[error("the registry holds an unreadable row: {0}")]
    Corrupt(String),
}

impl RegistryError {
    pub(crate) fn db(doing: &'static str) -> impl Fn(sqlx::Error) -> RegistryError + Copy {
        move |source| RegistryError::Database { doing, source }
    }
}
