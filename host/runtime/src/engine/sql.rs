//! The statements the engine runs inside its transactions. One text for
//! both dialects except where noted.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::database::Dialect;
use crate::model::{EventType, ExecutionId, ExecutionStatus, TaskStatus};

pub(crate) type Conn = AnyConnection;
pub(crate) type SqlResult<T> = Result<T, sqlx::Error>;

/// A new execution's row.
pub(crate) struct NewExecution<'a> {
    pub id: ExecutionId,
    pub workflow: &'a str,
    pub package_name: &'a str,
    pub package_version: &'a str,
    pub origin: &'a str,
    pub input: &'a str,
    pub tasks: i64,
    pub now: i64,
}

pub(crate) async fn insert_execution(conn: &mut Conn, e: &NewExecution<'_>) -> SqlResult<()> {
    sqlx::query(
        "INSERT INTO executions (id, workflow_name, package_name, package_version, origin, status,
            input_context, tasks_remaining, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(e.id.to_string())
    .bind(e.workflow)
    .bind(e.package_name)
    .bind(e.package_version)
    .bind(e.origin)
    .bind(ExecutionStatus::Running.as_str())
    .bind(e.input)
    .bind(e.tasks)
    .bind(e.now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A new task row: (name, position, dependency count, max attempts).
pub(crate) struct NewTask<'a> {
    pub name: &'a str,
    pub position: i64,
    pub dependencies: i64,
    pub max_attempts: i64,
}

pub(crate) async fn insert_tasks(
    conn: &mut Conn,
    execution: ExecutionId,
    tasks: &[NewTask<'_>],
    now: i64,
) -> SqlResult<()> {
    const COLUMNS: usize = 8;
    let id = execution.to_string();
    for chunk in tasks.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO task_executions (execution_id, task_name, position, status, remaining_deps,
                max_attempts, ready_at, created_at, updated_at) VALUES ",
        );
        for row in 0..chunk.len() {
            let p = row * COLUMNS;
            if row > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7,
                p + 8,
                p + 8
            ));
        }
        let mut query = sqlx::query(&sql);
        for task in chunk {
            let root = task.dependencies == 0;
            query = query
                .bind(id.clone())
                .bind(task.name)
                .bind(task.position)
                .bind(
                    if root {
                        TaskStatus::Ready
                    } else {
                        TaskStatus::Pending
                    }
                    .as_str(),
                )
                .bind(task.dependencies)
                .bind(task.max_attempts)
                .bind(root.then_some(now))
                .bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A task claimed for this host.
pub(crate) struct Claimed {
    pub execution: String,
    pub task: String,
    pub attempt: i64,
}

/// Claims up to `limit` tasks that may run now. PostgreSQL skips rows
/// other hosts are claiming; SQLite has one writer, so nothing to skip.
pub(crate) async fn claim(
    conn: &mut Conn,
    dialect: Dialect,
    host: &str,
    now: i64,
    limit: i64,
) -> SqlResult<Vec<Claimed>> {
    let lock = match dialect {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    let sql = format!(
        "UPDATE task_executions
            SET status = 'running', claimed_by = $1, attempt = attempt + 1, started_at = $2, updated_at = $2
          WHERE (execution_id, task_name) IN (
                SELECT execution_id, task_name FROM task_executions
                 WHERE status IN ('ready', 'retrying') AND ready_at <= $2
                 ORDER BY ready_at LIMIT $3{lock})
      RETURNING execution_id, task_name, attempt"
    );
    let rows = sqlx::query(&sql)
        .bind(host)
        .bind(now)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Claimed {
                execution: row.try_get(0)?,
                task: row.try_get(1)?,
                attempt: row.try_get(2)?,
            })
        })
        .collect()
}

/// The earliest time a waiting task may be claimed, if any waits.
pub(crate) async fn next_ready_at(conn: &mut Conn) -> SqlResult<Option<i64>> {
    sqlx::query_scalar(
        "SELECT MIN(ready_at) FROM task_executions WHERE status IN ('ready', 'retrying')",
    )
    .fetch_one(conn)
    .await
}

/// What the engine needs of an execution it has not cached.
pub(crate) struct ExecutionHead {
    pub workflow: String,
    pub package_version: String,
    pub input: String,
}

pub(crate) async fn execution_head(
    conn: &mut Conn,
    execution: &str,
) -> SqlResult<Option<ExecutionHead>> {
    let row = sqlx::query(
        "SELECT workflow_name, package_version, input_context FROM executions WHERE id = $1",
    )
    .bind(execution)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(ExecutionHead {
            workflow: row.try_get(0)?,
            package_version: row.try_get(1)?,
            input: row.try_get(2)?,
        })
    })
    .transpose()
}

/// The stored results of an execution's completed tasks.
pub(crate) async fn completed_results(
    conn: &mut Conn,
    execution: &str,
) -> SqlResult<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT task_name, output FROM task_executions WHERE execution_id = $1 AND status = 'completed'",
    )
    .bind(execution)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get(0)?,
                row.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
            ))
        })
        .collect()
}

/// A claim on a task: whose, and which attempt.
pub(crate) struct ClaimRef<'a> {
    pub execution: &'a str,
    pub task: &'a str,
    pub host: &'a str,
    pub attempt: i64,
}

/// Moves a task this host runs out of `running`. False when the claim is no
/// longer ours (the lease expired, or the execution was cancelled).
pub(crate) async fn release_task(
    conn: &mut Conn,
    claim: &ClaimRef<'_>,
    to: TaskStatus,
    change: TaskChange<'_>,
    now: i64,
) -> SqlResult<bool> {
    let done = sqlx::query(
        "UPDATE task_executions
            SET status = $1, output = COALESCE($2, output), last_error = $3, error_kind = $4,
                ready_at = $5, completed_at = $6, claimed_by = NULL, updated_at = $7
          WHERE execution_id = $8 AND task_name = $9 AND status = 'running'
            AND claimed_by = $10 AND attempt = $11",
    )
    .bind(to.as_str())
    .bind(change.output)
    .bind(change.error)
    .bind(change.error_kind)
    .bind(change.ready_at)
    .bind(change.completed_at)
    .bind(now)
    .bind(claim.execution)
    .bind(claim.task)
    .bind(claim.host)
    .bind(claim.attempt)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The columns a task's release sets.
#[derive(Default)]
pub(crate) struct TaskChange<'a> {
    pub output: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_kind: Option<&'a str>,
    pub ready_at: Option<i64>,
    pub completed_at: Option<i64>,
}

/// One dependency of `task` completed: count it down, and make the task
/// ready when it was the last. Returns whether the task became ready.
pub(crate) async fn dependency_done(
    conn: &mut Conn,
    execution: &str,
    task: &str,
    now: i64,
) -> SqlResult<bool> {
    let row: Option<AnyRow> = sqlx::query(
        "UPDATE task_executions
            SET remaining_deps = remaining_deps - 1,
                status = CASE WHEN remaining_deps = 1 THEN 'ready' ELSE status END,
                ready_at = CASE WHEN remaining_deps = 1 THEN $1 ELSE ready_at END,
                updated_at = $1
          WHERE execution_id = $2 AND task_name = $3 AND status = 'pending'
      RETURNING status",
    )
    .bind(now)
    .bind(execution)
    .bind(task)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(row) => row.try_get::<String, _>(0)? == TaskStatus::Ready.as_str(),
        None => false,
    })
}

/// Ends every task of `tasks` that has not started with `to` (skipped or
/// cancelled); returns those it ended.
pub(crate) async fn end_waiting_tasks(
    conn: &mut Conn,
    execution: &str,
    tasks: &[&str],
    to: TaskStatus,
    now: i64,
) -> SqlResult<Vec<String>> {
    let mut ended = Vec::new();
    for task in tasks {
        let done = sqlx::query(
            "UPDATE task_executions SET status = $1, completed_at = $2, updated_at = $2, claimed_by = NULL
              WHERE execution_id = $3 AND task_name = $4 AND status IN ('pending', 'ready', 'retrying')",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(execution)
        .bind(*task)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            ended.push((*task).to_owned());
        }
    }
    Ok(ended)
}

/// Counts `ended` tasks of an execution as finished, recording the first
/// failure; returns how many remain and the failure kept.
pub(crate) async fn tasks_ended(
    conn: &mut Conn,
    execution: &str,
    ended: i64,
    failure: Option<(&str, &str)>,
    now: i64,
) -> SqlResult<(i64, Option<String>, Option<String>)> {
    let (task, error) = failure.unzip();
    let row = sqlx::query(
        "UPDATE executions
            SET tasks_remaining = tasks_remaining - $1,
                failed_task = COALESCE(failed_task, $2),
                error = COALESCE(error, $3),
                updated_at = $4
          WHERE id = $5
      RETURNING tasks_remaining, failed_task, error",
    )
    .bind(ended)
    .bind(task)
    .bind(error)
    .bind(now)
    .bind(execution)
    .fetch_one(conn)
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

/// Ends a running execution; false when it already ended (cancelled).
pub(crate) async fn finish_execution(
    conn: &mut Conn,
    execution: &str,
    status: ExecutionStatus,
    final_context: Option<&str>,
    now: i64,
) -> SqlResult<bool> {
    let done = sqlx::query(
        "UPDATE executions SET status = $1, final_context = $2, completed_at = $3, updated_at = $3
          WHERE id = $4 AND status = 'running'",
    )
    .bind(status.as_str())
    .bind(final_context)
    .bind(now)
    .bind(execution)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Reserves `count` sequence numbers for an execution's events; returns
/// the first.
pub(crate) async fn reserve_sequence(
    conn: &mut Conn,
    execution: &str,
    count: i64,
) -> SqlResult<i64> {
    let last: i64 = sqlx::query_scalar(
        "UPDATE executions SET event_seq = event_seq + $1 WHERE id = $2 RETURNING event_seq",
    )
    .bind(count)
    .bind(execution)
    .fetch_one(conn)
    .await?;
    Ok(last - count + 1)
}

/// An event row to insert.
pub(crate) struct EventRow<'a> {
    pub execution: &'a str,
    pub sequence_num: i64,
    pub event_type: EventType,
    pub task: Option<&'a str>,
    pub data: Option<String>,
    pub created_at: i64,
}

pub(crate) async fn insert_events(conn: &mut Conn, events: &[EventRow<'_>]) -> SqlResult<()> {
    const COLUMNS: usize = 6;
    for chunk in events.chunks(1000) {
        let mut sql = String::from(
            "INSERT INTO execution_events (execution_id, sequence_num, event_type, task_name, event_data, created_at) VALUES ",
        );
        for row in 0..chunk.len() {
            let p = row * COLUMNS;
            if row > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6
            ));
        }
        let mut query = sqlx::query(&sql);
        for event in chunk {
            query = query
                .bind(event.execution)
                .bind(event.sequence_num)
                .bind(event.event_type.as_str())
                .bind(event.task)
                .bind(event.data.as_deref())
                .bind(event.created_at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Puts back to `ready` every running task whose host's lease has expired
/// (and, with `all_but_me`, every running task not claimed by `host`: a
/// SQLite file has one host, so at start nothing else is alive). The lost
/// attempt is not counted.
pub(crate) async fn requeue_expired(
    conn: &mut Conn,
    host: &str,
    lease_cutoff: i64,
    all_but_me: bool,
    now: i64,
) -> SqlResult<Vec<(String, String)>> {
    let alive = if all_but_me {
        "claimed_by = $2 AND $3 = $3"
    } else {
        "claimed_by IN (SELECT id FROM hosts WHERE heartbeat_at >= $3) OR claimed_by = $2"
    };
    let sql = format!(
        "UPDATE task_executions
            SET status = 'ready', ready_at = $1, claimed_by = NULL, attempt = attempt - 1, updated_at = $1
          WHERE status = 'running' AND NOT ({alive})
      RETURNING execution_id, task_name"
    );
    let rows = sqlx::query(&sql)
        .bind(now)
        .bind(host)
        .bind(lease_cutoff)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Marks an execution cancelled, if it still runs.
pub(crate) async fn cancel_execution(
    conn: &mut Conn,
    execution: &str,
    now: i64,
) -> SqlResult<bool> {
    let done = sqlx::query(
        "UPDATE executions SET status = 'cancelled', error = 'cancelled', completed_at = $1, updated_at = $1
          WHERE id = $2 AND status = 'running'",
    )
    .bind(now)
    .bind(execution)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives a claimed task back, to be claimed again from `ready_at`.
pub(crate) async fn unclaim(
    conn: &mut Conn,
    execution: &str,
    task: &str,
    ready_at: i64,
) -> SqlResult<()> {
    sqlx::query(
        "UPDATE task_executions SET status = 'ready', claimed_by = NULL, attempt = attempt - 1, ready_at = $1
          WHERE execution_id = $2 AND task_name = $3 AND status = 'running'",
    )
    .bind(ready_at)
    .bind(execution)
    .bind(task)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes a cron schedule's firing at `fire_at`: true for exactly one
/// caller, however many hosts try.
pub(crate) async fn take_cron_firing(
    conn: &mut Conn,
    schedule: &str,
    fire_at: i64,
    now: i64,
) -> SqlResult<bool> {
    let done = sqlx::query(
        "UPDATE cron_schedules SET last_fire_at = $1, updated_at = $2 WHERE name = $3 AND last_fire_at < $1",
    )
    .bind(fire_at)
    .bind(now)
    .bind(schedule)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a trigger's firing for `key`: true the first time only.
pub(crate) async fn take_trigger_key(
    conn: &mut Conn,
    trigger: &str,
    key: &str,
    execution: &str,
    now: i64,
) -> SqlResult<bool> {
    let done = sqlx::query(
        "INSERT INTO trigger_firings (trigger_name, dedup_key, execution_id, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(trigger)
    .bind(key)
    .bind(execution)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
