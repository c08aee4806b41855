//! The statements the engine runs inside its transactions. One text for
//! both dialects except where noted.

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

/// A new task row.
pub(crate) struct NewTask<'a> {
    pub execution: &'a str,
    pub workflow: &'a str,
    pub package_version: &'a str,
    pub name: &'a str,
    pub position: i64,
    pub dependencies: i64,
    pub max_attempts: i64,
}

/// Inserts task rows (of any number of executions): roots ready, the rest
/// pending.
pub(crate) async fn insert_tasks(
    conn: &mut Conn,
    tasks: &[NewTask<'_>],
    now: i64,
) -> SqlResult<()> {
    let params = Params::whole_statement(conn);
    for chunk in tasks.chunks(params.rows_per_statement()) {
        let sql = format!(
            "INSERT INTO task_executions (execution_id, task_name, workflow_name, package_version,
                position, status, remaining_deps, max_attempts, ready_at, created_at, updated_at) VALUES {}",
            placeholder_rows(chunk.len(), 11, params)
        );
        let mut query = sqlx::query(&sql);
        for task in chunk {
            let root = task.dependencies == 0;
            query = query
                .bind(task.execution)
                .bind(task.name)
                .bind(task.workflow)
                .bind(task.package_version)
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
                .bind(now)
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

/// Claims up to `limit` tasks that may run now, of executions whose
/// workflow (name, version) is among `runnable` — what this host has
/// loaded; others are left to hosts that have them. PostgreSQL skips rows
/// other hosts are claiming; SQLite has one writer, so nothing to skip.
pub(crate) async fn claim(
    conn: &mut Conn,
    dialect: Dialect,
    host: &str,
    now: i64,
    limit: i64,
    runnable: &[(String, String)],
) -> SqlResult<Vec<Claimed>> {
    if runnable.is_empty() {
        return Ok(Vec::new());
    }
    let lock = match dialect {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    let sql = format!(
        "UPDATE task_executions
            SET status = 'running', claimed_by = $1, attempt = attempt + 1, started_at = $2, updated_at = $2
          WHERE (execution_id, task_name) IN (
                SELECT t.execution_id, t.task_name FROM task_executions AS t
                 WHERE t.status IN ('ready', 'retrying') AND t.ready_at <= $2
                   AND (t.workflow_name, t.package_version) IN (VALUES {})
                 ORDER BY t.ready_at LIMIT $3{lock})
      RETURNING execution_id, task_name, attempt",
        placeholder_rows(runnable.len(), 2, Params::Numbered { first: 4 })
    );
    let mut query = sqlx::query(&sql).bind(host).bind(now).bind(limit);
    for (workflow, version) in runnable {
        query = query.bind(workflow.as_str()).bind(version.as_str());
    }
    let rows = query.fetch_all(conn).await?;
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

/// The columns a task's release sets.
#[derive(Default)]
pub(crate) struct TaskChange<'a> {
    pub output: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_kind: Option<&'a str>,
    pub ready_at: Option<i64>,
    pub completed_at: Option<i64>,
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
    let params = Params::whole_statement(conn);
    for chunk in events.chunks(params.rows_per_statement()) {
        let sql = format!(
            "INSERT INTO execution_events (execution_id, sequence_num, event_type, task_name, event_data, created_at) VALUES {}",
            placeholder_rows(chunk.len(), 6, params)
        );
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

/// What PostgreSQL says of transaction `xid`: `committed`, `aborted`,
/// `in progress`, or nothing when it is too old to tell.
pub(crate) async fn transaction_status(
    pool: &sqlx::AnyPool,
    xid: i64,
) -> SqlResult<Option<String>> {
    sqlx::query_scalar("SELECT txid_status($1)")
        .bind(xid)
        .fetch_one(pool)
        .await
}

/// Removes the lease rows of hosts silent since before `cutoff`.
pub(crate) async fn forget_dead_hosts(conn: &mut Conn, cutoff: i64) -> SqlResult<()> {
    sqlx::query("DELETE FROM hosts WHERE heartbeat_at < $1")
        .bind(cutoff)
        .execute(conn)
        .await?;
    Ok(())
}

/// Which of `executions` no longer run.
pub(crate) async fn ended_among(
    conn: &mut Conn,
    executions: &[&str],
) -> SqlResult<std::collections::HashSet<String>> {
    let mut ended = std::collections::HashSet::new();
    let params = Params::whole_statement(conn);
    for chunk in executions.chunks(params.rows_per_statement()) {
        let sql = format!(
            "SELECT id FROM executions WHERE status <> 'running' AND id IN ({})",
            placeholder_list(chunk.len(), params)
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for execution in chunk {
            query = query.bind(*execution);
        }
        ended.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(ended)
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

/// How a generated statement writes its parameters.
#[derive(Debug, Clone, Copy)]
enum Params {
    /// `$n, $n+1...` from `first`: what PostgreSQL needs, and what a
    /// statement with other parameters before the generated ones uses.
    Numbered { first: usize },
    /// `?`: bound by position. sqlx binds numbered parameters on SQLite by
    /// name, and SQLite finds a name by a linear scan, so binding costs
    /// grow with the square of the parameter count; anonymous ones bind in
    /// linear time. Only for a statement whose parameters are all
    /// generated, in binding order.
    Anonymous,
}

impl Params {
    /// For a statement whose every parameter is generated, in binding
    /// order: anonymous on SQLite, numbered from 1 on PostgreSQL.
    fn whole_statement(conn: &Conn) -> Params {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Params::Anonymous
        } else {
            Params::Numbered { first: 1 }
        }
    }

    /// Rows per statement: few with numbered parameters (their binding is
    /// quadratic on SQLite), many with anonymous ones.
    fn rows_per_statement(self) -> usize {
        match self {
            Params::Numbered { .. } => SET_CHUNK,
            Params::Anonymous => ANONYMOUS_CHUNK,
        }
    }
}

/// `($1, $2), ($3, $4)` (or `(?, ?), (?, ?)`): `rows` rows of `columns`
/// placeholders.
fn placeholder_rows(rows: usize, columns: usize, params: Params) -> String {
    let row = |r: usize| {
        let params = match params {
            Params::Numbered { first } => Params::Numbered {
                first: first + r * columns,
            },
            Params::Anonymous => Params::Anonymous,
        };
        format!("({})", placeholder_list(columns, params))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// `$3, $4, $5` (or `?, ?, ?`): `count` placeholders.
fn placeholder_list(count: usize, params: Params) -> String {
    match params {
        Params::Numbered { first } => {
            let list: Vec<String> = (first..first + count).map(|p| format!("${p}")).collect();
            list.join(", ")
        }
        Params::Anonymous => vec!["?"; count].join(", "),
    }
}

/// `(VALUES ($a, $b), ($c, $d))` wrapped so both dialects name the
/// columns: `SELECT column1 AS x, ... FROM (VALUES ...) AS vals`.
fn values_table(columns: &[&str], rows: usize, params: Params) -> String {
    let mut sql = String::from("(SELECT ");
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("column{} AS {column}", i + 1));
    }
    sql.push_str(" FROM (VALUES ");
    sql.push_str(&placeholder_rows(rows, columns.len(), params));
    sql.push_str(") AS vals)");
    sql
}

/// Rows per multi-row statement with numbered parameters. Small on
/// purpose: on SQLite their binding costs grow with the square of a
/// statement's parameter count (see [`Params::Anonymous`]).
const SET_CHUNK: usize = 48;

/// Rows per multi-row statement whose parameters bind in linear time.
const ANONYMOUS_CHUNK: usize = 256;

/// One task leaving `running`, for [`release_tasks`].
pub(crate) struct Release<'a> {
    pub execution: &'a str,
    pub task: &'a str,
    pub attempt: i64,
    pub to: TaskStatus,
    pub change: TaskChange<'a>,
}

/// Releases many claims of `host` in one statement per chunk; returns the
/// (execution, task) pairs whose claim was still ours.
pub(crate) async fn release_tasks(
    conn: &mut Conn,
    host: &str,
    releases: &[Release<'_>],
    now: i64,
) -> SqlResult<Vec<(String, String)>> {
    let mut released = Vec::with_capacity(releases.len());
    let params = Params::whole_statement(conn);
    for chunk in releases.chunks(params.rows_per_statement()) {
        let table = values_table(
            &[
                "host",
                "now",
                "execution_id",
                "task_name",
                "attempt",
                "status",
                "output",
                "last_error",
                "error_kind",
                "ready_at",
                "completed_at",
            ],
            chunk.len(),
            params,
        );
        let sql = format!(
            "UPDATE task_executions
                SET status = v.status, output = COALESCE(v.output, task_executions.output),
                    last_error = v.last_error, error_kind = v.error_kind, ready_at = v.ready_at,
                    completed_at = v.completed_at, claimed_by = NULL, updated_at = v.now
               FROM {table} AS v
              WHERE task_executions.execution_id = v.execution_id
                AND task_executions.task_name = v.task_name
                AND task_executions.status = 'running'
                AND task_executions.claimed_by = v.host
                AND task_executions.attempt = v.attempt
          RETURNING task_executions.execution_id, task_executions.task_name"
        );
        let mut query = sqlx::query(&sql);
        for release in chunk {
            query = query
                .bind(host)
                .bind(now)
                .bind(release.execution)
                .bind(release.task)
                .bind(release.attempt)
                .bind(release.to.as_str())
                .bind(release.change.output)
                .bind(release.change.error)
                .bind(release.change.error_kind)
                .bind(release.change.ready_at)
                .bind(release.change.completed_at);
        }
        for row in query.fetch_all(&mut *conn).await? {
            released.push((row.try_get(0)?, row.try_get(1)?));
        }
    }
    Ok(released)
}

/// Counts down completed dependencies: `(execution, task, how many)`;
/// a task whose count reaches zero becomes ready.
pub(crate) async fn dependencies_done(
    conn: &mut Conn,
    done: &[(String, String, i64)],
    now: i64,
) -> SqlResult<()> {
    let params = Params::whole_statement(conn);
    for chunk in done.chunks(params.rows_per_statement()) {
        let table = values_table(
            &["now", "execution_id", "task_name", "n"],
            chunk.len(),
            params,
        );
        let sql = format!(
            "UPDATE task_executions
                SET remaining_deps = task_executions.remaining_deps - v.n,
                    status = CASE WHEN task_executions.remaining_deps = v.n THEN 'ready' ELSE task_executions.status END,
                    ready_at = CASE WHEN task_executions.remaining_deps = v.n THEN v.now ELSE task_executions.ready_at END,
                    updated_at = v.now
               FROM {table} AS v
              WHERE task_executions.execution_id = v.execution_id
                AND task_executions.task_name = v.task_name
                AND task_executions.status = 'pending'"
        );
        let mut query = sqlx::query(&sql);
        for (execution, task, n) in chunk {
            query = query
                .bind(now)
                .bind(execution.as_str())
                .bind(task.as_str())
                .bind(*n);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Tasks that ended, per execution: (execution, count, first failure).
pub(crate) struct Ended {
    pub execution: String,
    pub count: i64,
    pub failed_task: Option<String>,
    pub error: Option<String>,
}

/// What an execution's row says after [`executions_ended`].
pub(crate) struct Remaining {
    pub execution: String,
    pub tasks_remaining: i64,
    pub failed_task: Option<String>,
    pub error: Option<String>,
}

pub(crate) async fn executions_ended(
    conn: &mut Conn,
    ended: &[Ended],
    now: i64,
) -> SqlResult<Vec<Remaining>> {
    let mut remaining = Vec::with_capacity(ended.len());
    let params = Params::whole_statement(conn);
    for chunk in ended.chunks(params.rows_per_statement()) {
        let table = values_table(
            &["now", "id", "n", "failed_task", "error"],
            chunk.len(),
            params,
        );
        let sql = format!(
            "UPDATE executions
                SET tasks_remaining = executions.tasks_remaining - v.n,
                    failed_task = COALESCE(executions.failed_task, v.failed_task),
                    error = COALESCE(executions.error, v.error),
                    updated_at = v.now
               FROM {table} AS v
              WHERE executions.id = v.id
          RETURNING executions.id, executions.tasks_remaining, executions.failed_task, executions.error"
        );
        let mut query = sqlx::query(&sql);
        for end in chunk {
            query = query
                .bind(now)
                .bind(end.execution.as_str())
                .bind(end.count)
                .bind(end.failed_task.as_deref())
                .bind(end.error.as_deref());
        }
        for row in query.fetch_all(&mut *conn).await? {
            remaining.push(Remaining {
                execution: row.try_get(0)?,
                tasks_remaining: row.try_get(1)?,
                failed_task: row.try_get(2)?,
                error: row.try_get(3)?,
            });
        }
    }
    Ok(remaining)
}

/// Reserves event sequence numbers for many executions at once:
/// `(execution, count)` -> `(execution, first)`.
pub(crate) async fn reserve_sequences(
    conn: &mut Conn,
    counts: &[(String, i64)],
) -> SqlResult<Vec<(String, i64)>> {
    let mut firsts = Vec::with_capacity(counts.len());
    let params = Params::whole_statement(conn);
    for chunk in counts.chunks(params.rows_per_statement()) {
        let table = values_table(&["id", "n"], chunk.len(), params);
        let sql = format!(
            "UPDATE executions SET event_seq = executions.event_seq + v.n
               FROM {table} AS v
              WHERE executions.id = v.id
          RETURNING executions.id, executions.event_seq"
        );
        let mut query = sqlx::query(&sql);
        for (execution, n) in chunk {
            query = query.bind(execution.as_str()).bind(*n);
        }
        // SQLite's RETURNING sees only the updated table: n comes from here.
        let asked: std::collections::HashMap<&str, i64> =
            chunk.iter().map(|(e, n)| (e.as_str(), *n)).collect();
        for row in query.fetch_all(&mut *conn).await? {
            let (id, last): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
            let n = asked.get(id.as_str()).copied().unwrap_or(1);
            firsts.push((id, last - n + 1));
        }
    }
    Ok(firsts)
}

/// Inserts many new executions' rows.
pub(crate) async fn insert_executions(
    conn: &mut Conn,
    executions: &[NewExecution<'_>],
) -> SqlResult<()> {
    let params = Params::whole_statement(conn);
    for chunk in executions.chunks(params.rows_per_statement()) {
        let sql = format!(
            "INSERT INTO executions (id, workflow_name, package_name, package_version, origin, status,
                input_context, tasks_remaining, created_at, updated_at) VALUES {}",
            placeholder_rows(chunk.len(), 10, params)
        );
        let mut query = sqlx::query(&sql);
        for e in chunk {
            query = query
                .bind(e.id.to_string())
                .bind(e.workflow)
                .bind(e.package_name)
                .bind(e.package_version)
                .bind(e.origin)
                .bind(ExecutionStatus::Running.as_str())
                .bind(e.input)
                .bind(e.tasks)
                .bind(e.now)
                .bind(e.now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
