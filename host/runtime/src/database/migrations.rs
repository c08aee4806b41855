//! The schema, as numbered migrations run at connect time. The DDL is
//! written once for both dialects (only types both accept: TEXT, BIGINT;
//! times are milliseconds since the Unix epoch).

use sqlx::Executor;

use super::{Database, Dialect};
use crate::RuntimeError;
use crate::clock::now_ms;

/// A migration: its number within its component, and its statements,
/// applied in one transaction.
pub type Migration = (i64, &'static [&'static str]);

/// The runtime's own tables.
const RUNTIME: &[Migration] = &[
    (
        1,
        &[
            "CREATE TABLE executions (
            id TEXT PRIMARY KEY,
            workflow_name TEXT NOT NULL,
            package_name TEXT NOT NULL,
            package_version TEXT NOT NULL,
            origin TEXT NOT NULL,
            status TEXT NOT NULL,
            input_context TEXT NOT NULL,
            final_context TEXT,
            error TEXT,
            failed_task TEXT,
            tasks_remaining BIGINT NOT NULL,
            event_seq BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL,
            completed_at BIGINT,
            updated_at BIGINT NOT NULL
        )",
            "CREATE INDEX executions_by_status ON executions (status, created_at)",
            "CREATE INDEX executions_by_workflow ON executions (workflow_name, created_at)",
            "CREATE TABLE task_executions (
            execution_id TEXT NOT NULL,
            task_name TEXT NOT NULL,
            workflow_name TEXT NOT NULL,
            package_version TEXT NOT NULL,
            position BIGINT NOT NULL,
            status TEXT NOT NULL,
            remaining_deps BIGINT NOT NULL,
            attempt BIGINT NOT NULL DEFAULT 0,
            max_attempts BIGINT NOT NULL,
            ready_at BIGINT,
            claimed_by TEXT,
            output TEXT,
            last_error TEXT,
            error_kind TEXT,
            created_at BIGINT NOT NULL,
            started_at BIGINT,
            completed_at BIGINT,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (execution_id, task_name)
        )",
            "CREATE INDEX task_executions_claimable ON task_executions (status, ready_at)",
            "CREATE TABLE execution_events (
            execution_id TEXT NOT NULL,
            sequence_num BIGINT NOT NULL,
            event_type TEXT NOT NULL,
            task_name TEXT,
            event_data TEXT,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (execution_id, sequence_num)
        )",
            "CREATE TABLE hosts (
            id TEXT PRIMARY KEY,
            started_at BIGINT NOT NULL,
            heartbeat_at BIGINT NOT NULL
        )",
            "CREATE TABLE cron_schedules (
            name TEXT PRIMARY KEY,
            workflow_name TEXT NOT NULL,
            last_fire_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
            "CREATE TABLE trigger_firings (
            trigger_name TEXT NOT NULL,
            dedup_key TEXT NOT NULL,
            execution_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (trigger_name, dedup_key)
        )",
        ],
    ),
    (
        2,
        &[
            // Partial indexes: only the rows a claim or a lease check looks
            // for, so they stay small however many tasks have finished, and a
            // task that finishes leaves them instead of moving inside them.
            "CREATE INDEX task_executions_ready ON task_executions (ready_at) WHERE status IN ('ready', 'retrying')",
            "CREATE INDEX task_executions_running ON task_executions (claimed_by) WHERE status = 'running'",
            "DROP INDEX task_executions_claimable",
        ],
    ),
];

pub(super) async fn run(database: &Database) -> Result<(), RuntimeError> {
    apply(database, "runtime", RUNTIME).await
}

/// Applies `component`'s migrations that have not been applied yet. Each
/// component (the runtime, the registry...) numbers its own.
pub(super) async fn apply(
    database: &Database,
    component: &'static str,
    migrations: &[Migration],
) -> Result<(), RuntimeError> {
    let failed = RuntimeError::db("migrating the schema");
    // SQLite: take the write lock up front, so that another connection
    // writing meanwhile makes this wait (busy timeout) instead of failing
    // when a read transaction tries to become a write one.
    let mut tx = match database.dialect {
        Dialect::Sqlite => database.pool.begin_with("BEGIN IMMEDIATE").await,
        Dialect::Postgres => database.pool.begin().await,
    }
    .map_err(failed)?;
    if database.dialect == Dialect::Postgres {
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
        tracing::info!(component, version, tenant = %database.tenant, "applied schema migration");
    }
    tx.commit().await.map_err(failed)?;
    Ok(())
}
