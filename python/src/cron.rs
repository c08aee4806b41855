//! Cron schedules a Python caller manages at run time (cloaca's
//! `register_cron_workflow` and friends): each is a row of
//! `cloaca_cron_schedules` in the runner's database, keyed by a UUID, and
//! while enabled a runtime cron schedule of the same name on every runner
//! of the database ([`CronSync`] keeps them equal to the table). The runtime's
//! own `cron_schedules` row holds its last firing (so one firing starts
//! once, whichever runner takes it), and its executions carry the origin
//! `cron:<id>`.

use std::collections::HashMap;
use std::str::FromStr;

use cloacina_contract::manifest::{CatchUp, CronScheduleDeclaration, Identifier};
use cloacina_database::{Database, Migration};
use cloacina_runtime::clock::now_ms;
use cloacina_runtime::schedule::CronSchedule;
use cloacina_runtime::{Runner, RuntimeError};
use pyo3::pyfunction;
use sqlx::Row;

const MIGRATIONS: &[Migration] = &[(
    1,
    &["CREATE TABLE cloaca_cron_schedules (
        id TEXT PRIMARY KEY,
        workflow_name TEXT NOT NULL,
        cron_expression TEXT NOT NULL,
        timezone TEXT NOT NULL,
        enabled BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )"],
)];

/// A failure of a cron call, with the text cloaca shows after "<what>: ".
#[derive(Debug, thiserror::Error)]
pub(crate) enum CronError {
    #[error("Invalid schedule ID `{0}`: not a UUID")]
    InvalidId(String),
    #[error("no cron schedule with id {0}")]
    Unknown(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Storage(#[from] cloacina_database::DatabaseError),
}

/// A stored schedule.
#[derive(Debug, Clone)]
pub(crate) struct StoredCron {
    pub(crate) id: String,
    pub(crate) workflow_name: String,
    pub(crate) cron_expression: String,
    pub(crate) timezone: String,
    pub(crate) enabled: bool,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    /// From the runtime's row: the last firing taken, if it has fired.
    pub(crate) last_run_at: Option<i64>,
    pub(crate) next_run_at: Option<i64>,
}

/// One execution a schedule started.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    pub(crate) execution_id: String,
    pub(crate) status: String,
    pub(crate) created_at: i64,
    pub(crate) completed_at: Option<i64>,
}

/// Counts of a set of schedule-started executions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) total: i64,
    pub(crate) successful: i64,
    pub(crate) lost: i64,
}

pub(crate) async fn migrate(db: &Database) -> Result<(), CronError> {
    db.migrate("cloaca", MIGRATIONS).await?;
    Ok(())
}

pub(crate) fn schedule(
    id: &str,
    workflow: &str,
    expression: &str,
    timezone: &str,
) -> Result<CronSchedule, CronError> {
    let invalid = |reason: String| CronError::Invalid(reason);
    let declaration = CronScheduleDeclaration {
        name: Identifier::new(id).map_err(|e| invalid(e.to_string()))?,
        workflow: Identifier::new(workflow)
            .map_err(|e| invalid(format!("`{workflow}` cannot name a workflow: {e}")))?,
        expression: expression.to_owned(),
        timezone: timezone.to_owned(),
        catch_up: CatchUp::Skip,
    };
    CronSchedule::from_declaration(&declaration).map_err(|e| invalid(e.to_string()))
}

/// Checks a cron expression and IANA time zone as a schedule would,
/// raising `ConfigurationError` with the reason.
#[pyfunction]
pub(crate) fn check_cron(
    py: pyo3::Python<'_>,
    expression: &str,
    timezone: &str,
) -> pyo3::PyResult<()> {
    schedule("check", "check", expression, timezone)
        .map(|_| ())
        .map_err(|error| crate::errors::raise(py, "ConfigurationError", error.to_string()))
}

fn check_id(id: &str) -> Result<(), CronError> {
    uuid::Uuid::from_str(id)
        .map(|_| ())
        .map_err(|_| CronError::InvalidId(id.to_owned()))
}

/// How often a runner reads the stored schedules, so that a change made
/// through another runner on the database reaches it.
pub(crate) const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The stored schedules one runner runs, kept equal to the table.
#[derive(Debug, Default)]
pub(crate) struct CronSync {
    /// Schedule id -> (expression, time zone) as started here.
    running: tokio::sync::Mutex<HashMap<String, (String, String)>>,
}

impl CronSync {
    /// Starts what is enabled and not running here (or changed), stops
    /// what runs here and is no longer enabled. A row that no longer
    /// checks (edited by hand, say) is skipped with a warning.
    pub(crate) async fn sync(&self, runner: &Runner) -> Result<(), CronError> {
        let mut running = self.running.lock().await;
        let wanted: HashMap<String, StoredCron> = list(runner, true, i64::MAX, 0)
            .await?
            .into_iter()
            .map(|stored| (stored.id.clone(), stored))
            .collect();
        running.retain(|id, _| {
            let keep = wanted.contains_key(id);
            if !keep {
                runner.remove_cron(id);
            }
            keep
        });
        for (id, stored) in wanted {
            let signature = (stored.cron_expression.clone(), stored.timezone.clone());
            if running.get(&id) == Some(&signature) {
                continue;
            }
            match schedule(
                &id,
                &stored.workflow_name,
                &stored.cron_expression,
                &stored.timezone,
            ) {
                Ok(checked) => {
                    runner.add_cron(checked).await?;
                    running.insert(id, signature);
                }
                Err(error) => {
                    tracing::warn!(schedule = %id, %error, "a stored cron schedule does not check; skipped")
                }
            }
        }
        Ok(())
    }

    /// Syncs every [`SYNC_EVERY`] until the runner's runtime stops.
    pub(crate) async fn follow(self: std::sync::Arc<Self>, runner: Runner) {
        let mut every = tokio::time::interval(SYNC_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(error) = self.sync(&runner).await {
                tracing::debug!(%error, "cannot read the stored cron schedules; trying again");
            }
        }
    }
}

pub(crate) async fn register(
    runner: &Runner,
    workflow: &str,
    expression: &str,
    timezone: &str,
) -> Result<String, CronError> {
    let id = uuid::Uuid::new_v4().to_string();
    schedule(&id, workflow, expression, timezone)?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO cloaca_cron_schedules (id, workflow_name, cron_expression, timezone, enabled, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 1, $5, $5)",
    )
    .bind(&id)
    .bind(workflow)
    .bind(expression)
    .bind(timezone)
    .bind(now)
    .execute(runner.database().pool())
    .await?;
    Ok(id)
}

pub(crate) async fn list(
    runner: &Runner,
    enabled_only: bool,
    limit: i64,
    offset: i64,
) -> Result<Vec<StoredCron>, CronError> {
    let rows = sqlx::query(
        "SELECT s.id, s.workflow_name, s.cron_expression, s.timezone, s.enabled, s.created_at, s.updated_at, c.last_fire_at
         FROM cloaca_cron_schedules s LEFT JOIN cron_schedules c ON c.name = s.id
         WHERE s.enabled = 1 OR $1 = 0
         ORDER BY s.created_at, s.id LIMIT $2 OFFSET $3",
    )
    .bind(i64::from(enabled_only))
    .bind(limit)
    .bind(offset)
    .fetch_all(runner.database().pool())
    .await?;
    rows.iter().map(stored).collect()
}

pub(crate) async fn get(runner: &Runner, id: &str) -> Result<StoredCron, CronError> {
    check_id(id)?;
    let row = sqlx::query(
        "SELECT s.id, s.workflow_name, s.cron_expression, s.timezone, s.enabled, s.created_at, s.updated_at, c.last_fire_at
         FROM cloaca_cron_schedules s LEFT JOIN cron_schedules c ON c.name = s.id WHERE s.id = $1",
    )
    .bind(id)
    .fetch_optional(runner.database().pool())
    .await?
    .ok_or_else(|| CronError::Unknown(id.to_owned()))?;
    stored(&row)
}

fn stored(row: &sqlx::any::AnyRow) -> Result<StoredCron, CronError> {
    let id: String = row.try_get(0)?;
    let workflow_name: String = row.try_get(1)?;
    let cron_expression: String = row.try_get(2)?;
    let timezone: String = row.try_get(3)?;
    let enabled = row.try_get::<i64, _>(4)? != 0;
    let created_at: i64 = row.try_get(5)?;
    let updated_at: i64 = row.try_get(6)?;
    let last_fire_at: Option<i64> = row.try_get(7)?;
    // The runtime's row starts at "now" when first seen, before any firing.
    let last_run_at = last_fire_at.filter(|&at| at > created_at + 1);
    let next_run_at = enabled
        .then(|| schedule(&id, &workflow_name, &cron_expression, &timezone).ok())
        .flatten()
        .and_then(|s| s.next_after(now_ms()));
    Ok(StoredCron {
        id,
        workflow_name,
        cron_expression,
        timezone,
        enabled,
        created_at,
        updated_at,
        last_run_at,
        next_run_at,
    })
}

pub(crate) async fn update(
    runner: &Runner,
    id: &str,
    expression: &str,
    timezone: &str,
) -> Result<(), CronError> {
    let current = get(runner, id).await?;
    schedule(id, &current.workflow_name, expression, timezone)?;
    sqlx::query("UPDATE cloaca_cron_schedules SET cron_expression = $1, timezone = $2, updated_at = $3 WHERE id = $4")
        .bind(expression)
        .bind(timezone)
        .bind(now_ms())
        .bind(id)
        .execute(runner.database().pool())
        .await?;
    Ok(())
}

pub(crate) async fn set_enabled(runner: &Runner, id: &str, enabled: bool) -> Result<(), CronError> {
    get(runner, id).await?;
    sqlx::query("UPDATE cloaca_cron_schedules SET enabled = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(enabled))
        .bind(now_ms())
        .bind(id)
        .execute(runner.database().pool())
        .await?;
    Ok(())
}

pub(crate) async fn delete(runner: &Runner, id: &str) -> Result<(), CronError> {
    get(runner, id).await?;
    let pool = runner.database().pool();
    sqlx::query("DELETE FROM cloaca_cron_schedules WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM cron_schedules WHERE name = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Executions started with `origin`, newest first.
pub(crate) async fn started_by(
    runner: &Runner,
    origin: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<Started>, CronError> {
    let rows = sqlx::query(
        "SELECT id, status, created_at, completed_at FROM executions WHERE origin = $1
         ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
    )
    .bind(origin)
    .bind(limit)
    .bind(offset)
    .fetch_all(runner.database().pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Started {
                execution_id: row.try_get(0)?,
                status: row.try_get(1)?,
                created_at: row.try_get(2)?,
                completed_at: row.try_get(3)?,
            })
        })
        .collect()
}

/// Counts of the executions cron schedules started since `since` (ms);
/// one still running `lost_after_ms` after its start counts as lost.
pub(crate) async fn stats(
    runner: &Runner,
    since: i64,
    lost_after_ms: i64,
) -> Result<Stats, CronError> {
    let row = sqlx::query(
        "SELECT COUNT(*),
                COALESCE(SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN status = 'running' AND created_at < $2 THEN 1 ELSE 0 END), 0)
         FROM executions WHERE origin LIKE 'cron:%' AND created_at >= $1",
    )
    .bind(since)
    .bind(now_ms() - lost_after_ms)
    .fetch_one(runner.database().pool())
    .await?;
    Ok(Stats {
        total: row.try_get(0)?,
        successful: row.try_get(1)?,
        lost: row.try_get(2)?,
    })
}
