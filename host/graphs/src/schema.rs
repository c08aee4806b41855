//! The graph runtime's tables in the tenant database (component `graphs`).
//!
//! - `graph_events`: the inbox. One row per accepted event and graph,
//!   deleted once a firing or checkpoint has consumed it. A batch
//!   accumulator's buffer is its rows.
//! - `graph_state`: per graph, the reactor's checkpoint (cache, new-value
//!   flags, pause, counters, the last consumed sequence number) and the
//!   owner/lease/epoch columns a multi-host lease will use.
//! - `graph_firings`: the firing log, with inputs, outputs and errors, and
//!   whether its subscribed workflows were started.

use cloacina_database::{Database, DatabaseError, Migration};

const GRAPHS: &[Migration] = &[(
    1,
    &[
        "CREATE TABLE graph_events (
            graph TEXT NOT NULL,
            seq BIGINT NOT NULL,
            accumulator TEXT NOT NULL,
            payload TEXT NOT NULL,
            received_at BIGINT NOT NULL,
            PRIMARY KEY (graph, seq)
        )",
        "CREATE TABLE graph_state (
            graph TEXT PRIMARY KEY,
            package_name TEXT NOT NULL,
            package_version TEXT NOT NULL,
            cache TEXT NOT NULL,
            dirty TEXT NOT NULL,
            paused BIGINT NOT NULL DEFAULT 0,
            fires BIGINT NOT NULL DEFAULT 0,
            last_fired_at BIGINT,
            consumed_seq BIGINT NOT NULL DEFAULT 0,
            last_firing BIGINT NOT NULL DEFAULT 0,
            owner TEXT,
            lease_until BIGINT,
            epoch BIGINT NOT NULL DEFAULT 0,
            updated_at BIGINT NOT NULL
        )",
        "CREATE TABLE graph_firings (
            graph TEXT NOT NULL,
            id BIGINT NOT NULL,
            fired_at BIGINT NOT NULL,
            manual BIGINT NOT NULL,
            ok BIGINT NOT NULL,
            error TEXT,
            duration_us BIGINT NOT NULL,
            first_seq BIGINT,
            last_seq BIGINT,
            inputs TEXT NOT NULL,
            outputs TEXT,
            dispatched BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (graph, id)
        )",
        "CREATE INDEX graph_firings_undispatched ON graph_firings (graph, id) WHERE dispatched = 0",
    ],
)];

/// Creates or updates the graph tables.
pub async fn migrate(database: &Database) -> Result<(), DatabaseError> {
    database.migrate("graphs", GRAPHS).await
}
