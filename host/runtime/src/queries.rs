//! Reading executions, their tasks and their events back, and the hosts
//! that run them.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::RuntimeError;
use crate::database::Database;
use crate::model::{
    Event, EventType, ExecutionId, ExecutionResult, ExecutionStatus, HostRecord, TaskRecord,
    TaskStatus,
};

fn corrupt(what: &str, value: &str) -> RuntimeError {
    RuntimeError::Corrupt(format!("unknown {what} `{value}` in the database"))
}

fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|text| serde_json::from_str(&text).ok())
}

pub(crate) async fn execution(
    db: &Database,
    id: ExecutionId,
) -> Result<ExecutionResult, RuntimeError> {
    let row = sqlx::query(
        "SELECT id, workflow_name, status, final_context, error, failed_task, created_at, completed_at, package_name, package_version
           FROM executions WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(db.pool())
    .await
    .map_err(RuntimeError::db("reading an execution"))?
    .ok_or(RuntimeError::UnknownExecution(id))?;
    execution_from_row(&row)
}

/// The context an execution started with (None for an unknown id).
pub(crate) async fn input_context(
    db: &Database,
    id: ExecutionId,
) -> Result<Option<serde_json::Value>, RuntimeError> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT input_context FROM executions WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(db.pool())
            .await
            .map_err(RuntimeError::db("reading an execution's input"))?;
    // Stored by the runtime as JSON; anything else is shown as it is.
    Ok(text.map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))))
}

fn execution_from_row(row: &AnyRow) -> Result<ExecutionResult, RuntimeError> {
    let read = RuntimeError::db("reading an execution");
    let get = |row: &AnyRow| -> Result<_, sqlx::Error> {
        Ok((
            row.try_get::<String, _>(0)?,
            row.try_get::<String, _>(1)?,
            row.try_get::<String, _>(2)?,
            row.try_get::<Option<String>, _>(3)?,
            row.try_get::<Option<String>, _>(4)?,
            row.try_get::<Option<String>, _>(5)?,
            row.try_get::<i64, _>(6)?,
            row.try_get::<Option<i64>, _>(7)?,
        ))
    };
    let (id, workflow_name, status, final_context, error, failed_task, created, completed) =
        get(row).map_err(read)?;
    let package_name: String = row.try_get(8).map_err(read)?;
    let package_version: String = row.try_get(9).map_err(read)?;
    Ok(ExecutionResult {
        execution_id: id.parse().map_err(|_| corrupt("execution id", &id))?,
        workflow_name,
        status: ExecutionStatus::parse(&status)
            .ok_or_else(|| corrupt("execution status", &status))?,
        final_context: json(final_context),
        error,
        failed_task,
        started_at_ms: created,
        completed_at_ms: completed,
        package_version: semver::Version::parse(&package_version)
            .map_err(|_| corrupt("package version", &package_version))?,
        package_name,
    })
}

/// Executions, newest first, optionally of one workflow and one status.
pub(crate) async fn executions(
    db: &Database,
    workflow: Option<&str>,
    status: Option<ExecutionStatus>,
    limit: i64,
    offset: i64,
) -> Result<Vec<ExecutionResult>, RuntimeError> {
    let filter = ExecutionFilter::new(workflow, status);
    let next = filter.binds.len() + 1;
    let sql = format!(
        "SELECT id, workflow_name, status, final_context, error, failed_task, created_at, completed_at, package_name, package_version
           FROM executions{}
          ORDER BY created_at DESC, id LIMIT ${next} OFFSET ${}",
        filter.clause,
        next + 1
    );
    let mut query = sqlx::query(&sql);
    for value in &filter.binds {
        query = query.bind(*value);
    }
    let rows = query
        .bind(limit)
        .bind(offset)
        .fetch_all(db.pool())
        .await
        .map_err(RuntimeError::db("listing executions"))?;
    rows.iter().map(execution_from_row).collect()
}

/// How many executions match the filters of [`executions`].
pub(crate) async fn count_executions(
    db: &Database,
    workflow: Option<&str>,
    status: Option<ExecutionStatus>,
) -> Result<i64, RuntimeError> {
    let filter = ExecutionFilter::new(workflow, status);
    let sql = format!("SELECT COUNT(*) FROM executions{}", filter.clause);
    let mut query = sqlx::query_scalar(&sql);
    for value in &filter.binds {
        query = query.bind(*value);
    }
    query
        .fetch_one(db.pool())
        .await
        .map_err(RuntimeError::db("counting executions"))
}

/// The `WHERE` clause of a filtered execution list, naming only the
/// filters given, so the database can use the index that fits (a clause
/// like `$1 IS NULL OR workflow_name = $1` would make it read every row).
struct ExecutionFilter<'a> {
    clause: String,
    binds: Vec<&'a str>,
}

impl<'a> ExecutionFilter<'a> {
    fn new(workflow: Option<&'a str>, status: Option<ExecutionStatus>) -> Self {
        let mut conditions = Vec::new();
        let mut binds = Vec::new();
        if let Some(workflow) = workflow {
            binds.push(workflow);
            conditions.push(format!("workflow_name = ${}", binds.len()));
        }
        if let Some(status) = status {
            binds.push(status.as_str());
            conditions.push(format!("status = ${}", binds.len()));
        }
        let clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        ExecutionFilter { clause, binds }
    }
}

pub(crate) async fn tasks(db: &Database, id: ExecutionId) -> Result<Vec<TaskRecord>, RuntimeError> {
    let rows = sqlx::query(
        "SELECT task_name, status, attempt, max_attempts, output, last_error, created_at, started_at, completed_at, package_version
           FROM task_executions WHERE execution_id = $1 ORDER BY position",
    )
    .bind(id.to_string())
    .fetch_all(db.pool())
    .await
    .map_err(RuntimeError::db("reading an execution's tasks"))?;
    rows.iter()
        .map(|row| {
            let read = RuntimeError::db("reading an execution's tasks");
            let status: String = row.try_get(1).map_err(read)?;
            Ok(TaskRecord {
                task_name: row.try_get(0).map_err(read)?,
                status: TaskStatus::parse(&status)
                    .ok_or_else(|| corrupt("task status", &status))?,
                attempt: row.try_get(2).map_err(read)?,
                max_attempts: row.try_get(3).map_err(read)?,
                output: json(row.try_get(4).map_err(read)?),
                last_error: row.try_get(5).map_err(read)?,
                created_at_ms: row.try_get(6).map_err(read)?,
                started_at_ms: row.try_get(7).map_err(read)?,
                completed_at_ms: row.try_get(8).map_err(read)?,
                package_version: {
                    let version: String = row.try_get(9).map_err(read)?;
                    semver::Version::parse(&version)
                        .map_err(|_| corrupt("package version", &version))?
                },
            })
        })
        .collect()
}

/// An execution's events after sequence number `after` (0: from the
/// start), in order.
pub(crate) async fn events(
    db: &Database,
    id: ExecutionId,
    after: i64,
) -> Result<Vec<Event>, RuntimeError> {
    let rows = sqlx::query(
        "SELECT sequence_num, event_type, task_name, event_data, created_at
           FROM execution_events WHERE execution_id = $1 AND sequence_num > $2
          ORDER BY sequence_num",
    )
    .bind(id.to_string())
    .bind(after)
    .fetch_all(db.pool())
    .await
    .map_err(RuntimeError::db("reading events"))?;
    rows.iter()
        .map(|row| {
            let read = RuntimeError::db("reading events");
            let event_type: String = row.try_get(1).map_err(read)?;
            Ok(Event {
                execution_id: id,
                sequence_num: row.try_get(0).map_err(read)?,
                event_type: EventType::parse(&event_type)
                    .ok_or_else(|| corrupt("event type", &event_type))?,
                task_name: row.try_get(2).map_err(read)?,
                event_data: json(row.try_get(3).map_err(read)?),
                created_at_ms: row.try_get(4).map_err(read)?,
            })
        })
        .collect()
}

/// Every host's lease row, oldest first, with the tasks it runs now: the
/// running tasks it claimed (counted on the partial index of running
/// claims, so finished tasks cost nothing).
pub(crate) async fn hosts(db: &Database) -> Result<Vec<HostRecord>, RuntimeError> {
    let rows = sqlx::query(
        "SELECT h.id, h.address, h.version, h.started_at, h.heartbeat_at,
                (SELECT COUNT(*) FROM task_executions AS t
                  WHERE t.status = 'running' AND t.claimed_by = h.id)
           FROM hosts AS h ORDER BY h.started_at, h.id",
    )
    .fetch_all(db.pool())
    .await
    .map_err(RuntimeError::db("listing hosts"))?;
    rows.iter()
        .map(|row| {
            let read = RuntimeError::db("listing hosts");
            Ok(HostRecord {
                id: row.try_get(0).map_err(read)?,
                address: row.try_get(1).map_err(read)?,
                version: row.try_get(2).map_err(read)?,
                started_at_ms: row.try_get(3).map_err(read)?,
                heartbeat_at_ms: row.try_get(4).map_err(read)?,
                running_tasks: row.try_get(5).map_err(read)?,
            })
        })
        .collect()
}
