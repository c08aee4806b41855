//! Numbered migrations, per component, recorded in `schema_migrations`.
//! Components write their DDL once for both dialects (only types both
//! accept: TEXT, BIGINT; times are milliseconds since the Unix epoch).

use sqlx::Executor;

use crate::clock::now_ms;
use crate::{Database, DatabaseError, Dialect};

/// A migration: its number within its component, and its statements,
/// applied in one transaction.
pub type Migration = (i64, &'static [&'static str]);

/// Applies `component`'s migrations that have not been applied yet. Each
/// component (the runtime, the registry...) numbers its own.
pub(crate) async fn apply(
    database: &Database,
    component: &'static str,
    migrations: &[Migration],
) -> Result<(), DatabaseError> {
    let failed = DatabaseError::db("migrating the schema");
    // SQLite: take the write lock up front, so that another connection
    // writing meanwhile makes this wait (busy timeout) instead of failing
    // when a read transaction tries to become a write one.
    let mut tx = match database.dialect() {
        Dialect::Sqlite => database.pool().begin_with("BEGIN IMMEDIATE").await,
        Dialect::Postgres => database.pool().begin().await,
    }
    .map_err(failed)?;
    if database.dialect() == Dialect::Postgres {
        // Hosts starting together on one database migrate one at a time.
        tx.execute("SELECT pg_advisory_xact_lock(7244011)")
            .await
            .map_err(failed)?;
    }
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            component TEXT NOT NULL, version BIGINT NOT NULL, applied_at BIGINT NOT NULL,
            PRIMARY KEY (component, version))",
    )
    .await
    .map_err(failed)?;
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations WHERE component = $1")
            .bind(component)
            .fetch_one(&mut *tx)
            .await
            .map_err(failed)?;
    let applied = applied.unwrap_or(0);
    for (version, statements) in migrations.iter().filter(|(v, _)| *v > applied) {
        for statement in *statements {
            tx.execute(*statement).await.map_err(failed)?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (component, version, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(component)
        .bind(*version)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
        tracing::info!(component, version, tenant = %database.tenant(), "applied schema migration");
    }
    tx.commit().await.map_err(failed)?;
    Ok(())
}
