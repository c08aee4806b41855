//! The graph runtime's tables in the tenant database (component `graphs`).
//!
//! - `graph_events`: the inbox. One row per accepted event and graph,
//!   deleted once a firing or checkpoint has consumed it. A batch
//!   accumulator's buffer is its rows.
//! - `graph_state`: per graph, the reactor's checkpoint (cache, new-value
//!   flags, pause, counters, the last consumed sequence number) and its
//!   lease: owner, lease_until, epoch.
//! - `graph_firings`: the firing log, with inputs, outputs and errors, and
//!   whether its subscribed workflows were started.
//! - `graph_sequences`: each graph's inbox numbering, shared by hosts.
//! - `graph_commands`: commands sent from a host that does not run the
//!   graph's reactor, with their replies.
//! - `graph_hosts`: the hosts running graphs for the tenant, with their
//!   keepers' heartbeats (graphs are spread over them).
//!
//! Ownership: `graph_state.owner` is the host whose reactor runs the graph
//! until `lease_until`; every claim increments `epoch`, and every checkpoint
//! or firing commit is conditioned on both, so a host that lost its lease
//! cannot write (see `lease.rs`).

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
), (
    2,
    &[
        // Inbox numbering shared by every host: taken in the appending
        // transaction under this row's lock, so a graph's events commit in
        // the order they are numbered whichever host accepted them.
        "CREATE TABLE graph_sequences (
            graph TEXT PRIMARY KEY,
            last_seq BIGINT NOT NULL
        )",
        "INSERT INTO graph_sequences (graph, last_seq)
            SELECT s.graph, COALESCE((SELECT MAX(e.seq) FROM graph_events e WHERE e.graph = s.graph), 0)
            FROM graph_state s",
        "UPDATE graph_sequences SET last_seq = (SELECT s.consumed_seq FROM graph_state s WHERE s.graph = graph_sequences.graph)
            WHERE last_seq < (SELECT s.consumed_seq FROM graph_state s WHERE s.graph = graph_sequences.graph)",
        // Commands for a graph whose reactor runs on another host: the
        // owner takes a row, runs it, and writes the reply.
        "CREATE TABLE graph_commands (
            id TEXT PRIMARY KEY,
            graph TEXT NOT NULL,
            command TEXT NOT NULL,
            taken_by TEXT,
            reply TEXT,
            created_at BIGINT NOT NULL
        )",
        "CREATE INDEX graph_commands_open ON graph_commands (graph, created_at)",
    ],
), (
    3,
    &[
        // The hosts running this tenant's graph runtime, renewed by each
        // lease keeper: what graphs are spread over.
        "CREATE TABLE graph_hosts (
            host TEXT PRIMARY KEY,
            heartbeat_at BIGINT NOT NULL
        )",
    ],
)];

/// Creates or updates the graph tables.
pub async fn migrate(database: &Database) -> Result<(), DatabaseError> {
    database.migrate("graphs", GRAPHS).await
}
