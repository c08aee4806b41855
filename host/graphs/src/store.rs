//! The graph tables' statements. Every write happens inside a transaction
//! the writer owns (see `writer.rs`); reads use the pool.

use std::collections::BTreeSet;

use cloacina_database::Database;
use serde_json::{Map, Value};
use sqlx::{AnyConnection, Row};

use crate::GraphError;
use crate::lease::Lease;
use crate::model::{FiringRecord, InboxEvent};

type Conn = AnyConnection;

/// Rows per multi-row statement (5 parameters each, far under SQLite's
/// limit of 32,766).
const CHUNK: usize = 500;

/// A reactor's durable state: what a restart rebuilds from, with the inbox
/// rows after `consumed_seq` (and any batch buffer still open).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Checkpoint {
    pub cache: Map<String, Value>,
    pub dirty: BTreeSet<String>,
    pub paused: bool,
    pub fires: i64,
    pub last_fired_at: Option<i64>,
    /// The highest sequence number ever consumed: with the inbox, where
    /// numbering resumes after a restart.
    pub consumed_seq: i64,
    pub last_firing: i64,
}

/// One reactor commit: a checkpoint, the inbox rows it consumed, and the
/// firings it logged.
#[derive(Debug, Clone)]
pub(crate) struct Commit {
    pub graph: String,
    pub checkpoint: Checkpoint,
    /// The inbox rows folded into the checkpoint, as inclusive ranges of
    /// sequence numbers: deleted in the same transaction.
    pub consumed: Vec<(i64, i64)>,
    pub firings: Vec<FiringRecord>,
    /// Whether the graph has subscriptions: firings of one without start
    /// nothing, so they are dispatched as they are written.
    pub subscribed: bool,
    /// The lease the reactor holds: the commit happens only if it still
    /// does.
    pub lease: Lease,
}

/// Why a reactor commit did not happen.
#[derive(Debug)]
pub(crate) enum CommitError {
    /// The graph's lease is no longer the committer's.
    Fenced,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for CommitError {
    fn from(error: sqlx::Error) -> Self {
        CommitError::Database(error)
    }
}

/// A row to append to a graph's inbox.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent<'a> {
    pub graph: &'a str,
    pub seq: i64,
    pub accumulator: &'a str,
    pub payload: &'a str,
    pub received_at: i64,
}

/// Records the graph (first load) or its new package version.
pub(crate) async fn ensure_state(
    db: &Database,
    graph: &str,
    package: &str,
    version: &str,
    now: i64,
) -> Result<(), GraphError> {
    sqlx::query(
        "INSERT INTO graph_state (graph, package_name, package_version, cache, dirty, updated_at)
         VALUES ($1, $2, $3, '{}', '[]', $4)
         ON CONFLICT (graph) DO UPDATE SET package_name = $2, package_version = $3, updated_at = $4",
    )
    .bind(graph)
    .bind(package)
    .bind(version)
    .bind(now)
    .execute(db.pool())
    .await
    .map_err(GraphError::db("recording a graph"))?;
    sqlx::query(
        "INSERT INTO graph_sequences (graph, last_seq) VALUES ($1, 0) ON CONFLICT (graph) DO NOTHING",
    )
    .bind(graph)
    .execute(db.pool())
    .await
    .map_err(GraphError::db("recording a graph"))?;
    Ok(())
}

/// Takes `count` sequence numbers for `graph`'s inbox; returns the last.
/// The row stays locked until the transaction ends, so whichever host
/// appends, a graph's rows commit in the order they are numbered: a reader
/// that sees a number sees every lower one.
pub(crate) async fn take_seqs(tx: &mut Conn, graph: &str, count: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE graph_sequences SET last_seq = last_seq + $2 WHERE graph = $1 RETURNING last_seq",
    )
    .bind(graph)
    .bind(count)
    .fetch_one(&mut *tx)
    .await
}

/// Inbox rows of `graph` numbered after `after` (and before `before`, when
/// given), in order.
pub(crate) async fn inbox_after(
    db: &Database,
    graph: &str,
    after: i64,
    before: Option<i64>,
) -> Result<Vec<InboxEvent>, GraphError> {
    let rows = sqlx::query(
        "SELECT seq, accumulator, payload, received_at FROM graph_events
         WHERE graph = $1 AND seq > $2 AND ($3 IS NULL OR seq < $3) ORDER BY seq",
    )
    .bind(graph)
    .bind(after)
    .bind(before)
    .fetch_all(db.pool())
    .await
    .map_err(GraphError::db("reading a graph's inbox"))?;
    rows.iter().map(|row| inbox_event(graph, row)).collect()
}

fn inbox_event(graph: &str, row: &sqlx::any::AnyRow) -> Result<InboxEvent, GraphError> {
    let read = GraphError::db("reading the inbox");
    let payload: String = row.try_get(2).map_err(read)?;
    Ok(InboxEvent {
        seq: row.try_get(0).map_err(read)?,
        accumulator: row.try_get(1).map_err(read)?,
        payload: serde_json::from_str(&payload).map_err(|error| {
            GraphError::Corrupt(format!(
                "graph `{graph}`: the stored event is not valid: {error}"
            ))
        })?,
        received_at: row.try_get(3).map_err(read)?,
        accepted: None,
    })
}

/// The graph's checkpoint and its unconsumed inbox, in sequence order:
/// every row still there was accepted and not yet folded into the
/// checkpoint.
pub(crate) async fn load(
    db: &Database,
    graph: &str,
) -> Result<(Checkpoint, Vec<InboxEvent>), GraphError> {
    let row = sqlx::query(
        "SELECT cache, dirty, paused, fires, last_fired_at, consumed_seq, last_firing
         FROM graph_state WHERE graph = $1",
    )
    .bind(graph)
    .fetch_optional(db.pool())
    .await
    .map_err(GraphError::db("reading a graph's checkpoint"))?
    .ok_or_else(|| GraphError::Corrupt(format!("graph `{graph}` has no state row")))?;
    let corrupt = |what: &str, error: serde_json::Error| {
        GraphError::Corrupt(format!(
            "graph `{graph}`: the stored {what} is not valid: {error}"
        ))
    };
    let cache: String = row
        .try_get(0)
        .map_err(GraphError::db("reading a checkpoint"))?;
    let dirty: String = row
        .try_get(1)
        .map_err(GraphError::db("reading a checkpoint"))?;
    let checkpoint = Checkpoint {
        cache: serde_json::from_str(&cache).map_err(|e| corrupt("cache", e))?,
        dirty: serde_json::from_str(&dirty).map_err(|e| corrupt("new-value flags", e))?,
        paused: row
            .try_get::<i64, _>(2)
            .map_err(GraphError::db("reading a checkpoint"))?
            != 0,
        fires: row
            .try_get(3)
            .map_err(GraphError::db("reading a checkpoint"))?,
        last_fired_at: row
            .try_get(4)
            .map_err(GraphError::db("reading a checkpoint"))?,
        consumed_seq: row
            .try_get(5)
            .map_err(GraphError::db("reading a checkpoint"))?,
        last_firing: row
            .try_get(6)
            .map_err(GraphError::db("reading a checkpoint"))?,
    };
    let inbox = inbox_after(db, graph, i64::MIN, None).await?;
    Ok((checkpoint, inbox))
}

pub(crate) async fn append(tx: &mut Conn, events: &[NewEvent<'_>]) -> Result<(), sqlx::Error> {
    for chunk in events.chunks(CHUNK) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| {
                let p = r * 5;
                format!(
                    "(${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO graph_events (graph, seq, accumulator, payload, received_at) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for event in chunk {
            query = query
                .bind(event.graph)
                .bind(event.seq)
                .bind(event.accumulator)
                .bind(event.payload)
                .bind(event.received_at);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Writes a reactor's commit, if its lease still holds: the checkpoint
/// update is conditioned on owner and epoch, and a refused one is
/// [`CommitError::Fenced`] (the caller rolls back).
pub(crate) async fn commit(tx: &mut Conn, commit: &Commit, now: i64) -> Result<(), CommitError> {
    let checkpoint = &commit.checkpoint;
    // Consumed rows go first: the transaction starts with a write, so on
    // SQLite it waits for the lock instead of failing on a stale snapshot.
    for chunk in commit.consumed.chunks(200) {
        let ranges: Vec<String> = (0..chunk.len())
            .map(|i| format!("seq BETWEEN ${} AND ${}", 2 + i * 2, 3 + i * 2))
            .collect();
        let sql = format!(
            "DELETE FROM graph_events WHERE graph = $1 AND ({})",
            ranges.join(" OR ")
        );
        let mut delete = sqlx::query(&sql).bind(&commit.graph);
        for (from, to) in chunk {
            delete = delete.bind(*from).bind(*to);
        }
        delete.execute(&mut *tx).await?;
    }
    let cache = Value::Object(checkpoint.cache.clone()).to_string();
    let dirty = serde_json::to_string(&checkpoint.dirty).unwrap_or_else(|_| "[]".into());
    let updated = sqlx::query(
        "UPDATE graph_state SET cache = $2, dirty = $3, paused = $4, fires = $5, last_fired_at = $6,
             consumed_seq = $7, last_firing = $8, updated_at = $9
         WHERE graph = $1 AND owner = $10 AND epoch = $11",
    )
    .bind(&commit.graph)
    .bind(cache)
    .bind(dirty)
    .bind(i64::from(checkpoint.paused))
    .bind(checkpoint.fires)
    .bind(checkpoint.last_fired_at)
    .bind(checkpoint.consumed_seq)
    .bind(checkpoint.last_firing)
    .bind(now)
    .bind(&commit.lease.owner)
    .bind(commit.lease.epoch)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(CommitError::Fenced);
    }
    for firing in &commit.firings {
        sqlx::query(
            "INSERT INTO graph_firings (graph, id, fired_at, manual, ok, error, duration_us,
                 first_seq, last_seq, inputs, outputs, dispatched)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&firing.graph)
        .bind(firing.id)
        .bind(firing.fired_at_ms)
        .bind(i64::from(firing.manual))
        .bind(i64::from(firing.ok))
        .bind(firing.error.as_deref())
        .bind(firing.duration_us)
        .bind(firing.first_seq)
        .bind(firing.last_seq)
        .bind(firing.inputs.to_string())
        .bind(firing.outputs.to_string())
        // A failed firing, or one of a graph without subscriptions, starts
        // nothing: nothing to dispatch.
        .bind(i64::from(!firing.ok || !commit.subscribed))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

pub(crate) async fn mark_dispatched(
    tx: &mut Conn,
    graph: &str,
    firings: &[i64],
) -> Result<(), sqlx::Error> {
    for id in firings {
        sqlx::query("UPDATE graph_firings SET dispatched = 1 WHERE graph = $1 AND id = $2")
            .bind(graph)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

const FIRING_COLUMNS: &str =
    "graph, id, fired_at, manual, ok, error, duration_us, first_seq, last_seq, inputs, outputs";

fn firing_from(row: &sqlx::any::AnyRow) -> Result<FiringRecord, GraphError> {
    let read = GraphError::db("reading a firing");
    let inputs: String = row.try_get(9).map_err(read)?;
    let outputs: Option<String> = row.try_get(10).map_err(read)?;
    let json = |text: &str| {
        serde_json::from_str(text)
            .map_err(|error| GraphError::Corrupt(format!("a stored firing is not JSON: {error}")))
    };
    Ok(FiringRecord {
        graph: row.try_get(0).map_err(read)?,
        id: row.try_get(1).map_err(read)?,
        fired_at_ms: row.try_get(2).map_err(read)?,
        manual: row.try_get::<i64, _>(3).map_err(read)? != 0,
        ok: row.try_get::<i64, _>(4).map_err(read)? != 0,
        error: row.try_get(5).map_err(read)?,
        duration_us: row.try_get(6).map_err(read)?,
        first_seq: row.try_get(7).map_err(read)?,
        last_seq: row.try_get(8).map_err(read)?,
        inputs: json(&inputs)?,
        outputs: outputs
            .as_deref()
            .map(json)
            .transpose()?
            .unwrap_or(Value::Null),
    })
}

/// The graph's latest firings, newest first.
pub(crate) async fn firings(
    db: &Database,
    graph: &str,
    limit: i64,
) -> Result<Vec<FiringRecord>, GraphError> {
    let rows = sqlx::query(&format!(
        "SELECT {FIRING_COLUMNS} FROM graph_firings WHERE graph = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(graph)
    .bind(limit)
    .fetch_all(db.pool())
    .await
    .map_err(GraphError::db("listing firings"))?;
    rows.iter().map(firing_from).collect()
}

/// Successful firings whose subscribed workflows may not have started.
pub(crate) async fn undispatched(
    db: &Database,
    graph: &str,
) -> Result<Vec<FiringRecord>, GraphError> {
    let rows = sqlx::query(&format!(
        "SELECT {FIRING_COLUMNS} FROM graph_firings WHERE graph = $1 AND dispatched = 0 ORDER BY id"
    ))
    .bind(graph)
    .fetch_all(db.pool())
    .await
    .map_err(GraphError::db("listing undispatched firings"))?;
    rows.iter().map(firing_from).collect()
}
