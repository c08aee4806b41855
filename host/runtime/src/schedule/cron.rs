//! Cron schedules: a workflow started at each occurrence of a cron
//! expression in a time zone. Firings missed while no host ran are skipped
//! or run (up to a cap), as the schedule's catch-up policy says. The
//! `cron_schedules` row holds the last firing taken; taking a firing is a
//! conditional update in the start's transaction, so two hosts never both
//! start it.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use cloacina_contract::manifest::{CatchUp, CronScheduleDeclaration};
use croner::Cron;
use tokio::sync::mpsc;

use crate::clock::now_ms;
use crate::database::Database;
use crate::engine::{Command, StartGuard};
use crate::runner::start_on;
use crate::workflow::WorkflowRegistry;
use crate::{RegistrationError, RuntimeError};

/// An occurrence this late is still "now", not missed.
const ON_TIME: i64 = 5_000;
/// At most this many missed occurrences are looked at.
const MAX_SCAN: usize = 100_000;

/// A checked cron schedule.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    pub name: String,
    pub workflow: String,
    cron: Cron,
    timezone: chrono_tz::Tz,
    catch_up: CatchUp,
}

impl CronSchedule {
    pub fn from_declaration(
        declaration: &CronScheduleDeclaration,
    ) -> Result<Self, RegistrationError> {
        let invalid = |reason: String| RegistrationError::InvalidCron {
            schedule: declaration.name.to_string(),
            reason,
        };
        let cron = Cron::from_str(&declaration.expression).map_err(|error| {
            invalid(format!(
                "invalid expression `{}`: {error}",
                declaration.expression
            ))
        })?;
        let timezone = chrono_tz::Tz::from_str(&declaration.timezone)
            .map_err(|_| invalid(format!("unknown time zone `{}`", declaration.timezone)))?;
        Ok(CronSchedule {
            name: declaration.name.to_string(),
            workflow: declaration.workflow.to_string(),
            cron,
            timezone,
            catch_up: declaration.catch_up,
        })
    }

    /// The occurrences after `after` (ms), up to and including `until`.
    pub fn occurrences(&self, after: i64, until: i64) -> Vec<i64> {
        let Some(start) = self.timezone.timestamp_millis_opt(after).single() else {
            return Vec::new();
        };
        self.cron
            .iter_after(start)
            .map(|at| at.timestamp_millis())
            .take_while(|&at| at <= until)
            .take(MAX_SCAN)
            .collect()
    }

    /// The first occurrence after `after` (ms), if any.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let start = self.timezone.timestamp_millis_opt(after).single()?;
        self.cron
            .find_next_occurrence(&start, false)
            .ok()
            .map(|at| at.timestamp_millis())
    }

    /// Which of the missed occurrences (oldest first) to run, by the
    /// catch-up policy; one that is on time always runs.
    pub fn to_run(&self, missed: &[i64], now: i64) -> Vec<i64> {
        let Some(&latest) = missed.last() else {
            return Vec::new();
        };
        match self.catch_up {
            CatchUp::Skip if now - latest <= ON_TIME => vec![latest],
            CatchUp::Skip => Vec::new(),
            CatchUp::RunMissed { max_runs } => {
                let keep = (max_runs as usize).max(1);
                missed[missed.len().saturating_sub(keep)..].to_vec()
            }
        }
    }

    /// Creates the schedule's row on first sight: nothing before now counts
    /// as missed.
    pub(crate) async fn register(&self, db: &Database) -> Result<(), RuntimeError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO cron_schedules (name, workflow_name, last_fire_at, updated_at)
             VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&self.name)
        .bind(&self.workflow)
        .bind(now)
        .execute(db.pool())
        .await
        .map_err(RuntimeError::db("registering a cron schedule"))?;
        Ok(())
    }
}

async fn last_fire_at(db: &Database, name: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT last_fire_at FROM cron_schedules WHERE name = $1")
        .bind(name)
        .fetch_one(db.pool())
        .await
}

/// Marks occurrences up to `at` as passed without running them.
async fn skip_to(db: &Database, name: &str, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE cron_schedules SET last_fire_at = $1, updated_at = $2 WHERE name = $3 AND last_fire_at < $1")
        .bind(at)
        .bind(now_ms())
        .bind(name)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub(super) async fn run(
    schedule: CronSchedule,
    db: Database,
    registry: Arc<WorkflowRegistry>,
    commands: mpsc::UnboundedSender<Command>,
) {
    loop {
        if let Err(error) = tick(&schedule, &db, &registry, &commands).await {
            tracing::warn!(schedule = %schedule.name, error = &error as &dyn std::error::Error, "cron schedule failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn tick(
    schedule: &CronSchedule,
    db: &Database,
    registry: &WorkflowRegistry,
    commands: &mpsc::UnboundedSender<Command>,
) -> Result<(), RuntimeError> {
    let last = last_fire_at(db, &schedule.name)
        .await
        .map_err(RuntimeError::db("reading a cron schedule"))?;
    let now = now_ms();
    let Some(next) = schedule.next_after(last) else {
        tracing::warn!(schedule = %schedule.name, "the expression has no further occurrence");
        std::future::pending::<()>().await;
        return Ok(());
    };
    if next > now {
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(next - now).unwrap_or(0),
        ))
        .await;
        return Ok(());
    }
    let missed = schedule.occurrences(last, now);
    let run = schedule.to_run(&missed, now);
    let skipped_until = missed
        .iter()
        .copied()
        .filter(|at| run.first().is_none_or(|first| at < first))
        .max();
    if let Some(until) = skipped_until {
        tracing::info!(schedule = %schedule.name, skipped = missed.len() - run.len(), "skipping missed cron firings");
        skip_to(db, &schedule.name, until)
            .await
            .map_err(RuntimeError::db("skipping missed cron firings"))?;
    }
    let Some(workflow) = registry.latest(&schedule.workflow) else {
        return Err(RuntimeError::UnknownWorkflow(schedule.workflow.clone()));
    };
    for fire_at in run {
        let at: DateTime<Utc> = Utc
            .timestamp_millis_opt(fire_at)
            .single()
            .unwrap_or_default();
        let input =
            serde_json::json!({ "schedule": schedule.name, "scheduled_at": at.to_rfc3339() });
        let guard = StartGuard::CronFiring {
            schedule: schedule.name.clone(),
            fire_at,
        };
        let started = start_on(
            commands,
            workflow.clone(),
            input,
            format!("cron:{}", schedule.name),
            Some(guard),
        )
        .await?;
        if let Some(execution) = started {
            tracing::info!(schedule = %schedule.name, %execution, scheduled_at = %at.to_rfc3339(), "cron fired");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloacina_contract::Identifier;

    fn schedule(
        expression: &str,
        timezone: &str,
        catch_up: CatchUp,
    ) -> Result<CronSchedule, RegistrationError> {
        CronSchedule::from_declaration(&CronScheduleDeclaration {
            name: Identifier::new("s").expect("id"),
            workflow: Identifier::new("w").expect("id"),
            expression: expression.into(),
            timezone: timezone.into(),
            catch_up,
        })
    }

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .timestamp_millis()
    }

    #[test]
    fn occurrences_follow_the_time_zone() {
        let daily_9am_paris = schedule("0 9 * * *", "Europe/Paris", CatchUp::Skip).expect("valid");
        let found =
            daily_9am_paris.occurrences(ms("2026-07-01T00:00:00Z"), ms("2026-07-02T23:00:00Z"));
        // 09:00 in Paris is 07:00 UTC in summer.
        assert_eq!(
            found,
            vec![ms("2026-07-01T07:00:00Z"), ms("2026-07-02T07:00:00Z")]
        );
    }

    #[test]
    fn catch_up_policies_choose_what_runs() {
        let missed = [1_000, 2_000, 3_000, 4_000];
        let skip = schedule("* * * * *", "UTC", CatchUp::Skip).expect("valid");
        assert!(skip.to_run(&missed, 100_000).is_empty());
        assert_eq!(
            skip.to_run(&missed, 4_500),
            vec![4_000],
            "an on-time firing runs"
        );
        let two = schedule("* * * * *", "UTC", CatchUp::RunMissed { max_runs: 2 }).expect("valid");
        assert_eq!(two.to_run(&missed, 100_000), vec![3_000, 4_000]);
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        assert!(matches!(
            schedule("61 * * * *", "UTC", CatchUp::Skip),
            Err(RegistrationError::InvalidCron { .. })
        ));
        assert!(matches!(
            schedule("* * * * *", "Mars/Olympus", CatchUp::Skip),
            Err(RegistrationError::InvalidCron { .. })
        ));
    }
}
