//! What the database layer reports.

/// A database that cannot be reached, set up or migrated, or a name that
/// cannot name a tenant.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("database URL `{url}` is not supported: {reason}")]
    UnsupportedUrl { url: String, reason: String },
    #[error("database error while {doing}")]
    Query {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("invalid tenant name `{name}`: {reason}")]
    InvalidTenant { name: String, reason: &'static str },
    #[error("the public tenant cannot be removed")]
    PublicTenant,
}

impl DatabaseError {
    pub(crate) fn db(doing: &'static str) -> impl Fn(sqlx::Error) -> DatabaseError + Copy {
        move |source| DatabaseError::Query { doing, source }
    }
}
