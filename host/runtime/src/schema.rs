//! The runtime's tables (executions, tasks, events, leases, cron and
//! trigger guards), as numbered migrations of component `runtime`.

use cloacina_database::{Database, DatabaseError, Migration};

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
    (
        3,
        &[
            // Who each host is, for the hosts view: where it serves and the
            // version it runs. Nullable: a host of an earlier version, still
            // running beside upgraded ones, writes neither.
            "ALTER TABLE hosts ADD COLUMN address TEXT",
            "ALTER TABLE hosts ADD COLUMN version TEXT",
        ],
    ),
    (
        4,
        &[
            // The unfiltered execution list, newest first, reads its page
            // from here instead of sorting every execution.
            "CREATE INDEX executions_newest ON executions (created_at DESC, id)",
        ],
    ),
];

/// Connects to `tenant`'s database at `url` with the runtime's tables in
/// place: what every reader or writer of executions opens.
pub async fn open(url: &str, tenant: &crate::TenantId) -> Result<Database, DatabaseError> {
    let database = Database::connect(url, tenant).await?;
    migrate(&database).await?;
    Ok(database)
}

/// Creates or updates the runtime's tables.
pub async fn migrate(database: &Database) -> Result<(), DatabaseError> {
    database.migrate("runtime", RUNTIME).await
}
