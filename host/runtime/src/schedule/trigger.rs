//! Poll triggers. A trigger is a task of its package, called with an empty
//! context every `poll_interval_ms`. It answers `null` (nothing to do) or
//! `{"context": {...}, "key": "..."}` to start its workflow with that
//! context. The key deduplicates: a key that already fired never fires
//! again, on any host (without a key, the context's JSON text is the key).
//! Unless the trigger allows concurrent runs, it is not polled while an
//! execution it started still runs.

use std::sync::Arc;
use std::time::Duration;

use cloacina_contract::manifest::{Declaration, TriggerDeclaration};
use cloacina_loader::{CallControl, Plugin};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::database::Database;
use crate::engine::{Command, StartGuard};
use crate::runner::start_on;
use crate::workflow::WorkflowRegistry;
use crate::{RegistrationError, RuntimeError};

/// The shortest interval a trigger may be polled at.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A checked poll trigger and the plugin that answers its polls.
#[derive(Clone)]
pub struct Trigger {
    pub name: String,
    pub workflow: String,
    poll_interval: Duration,
    allow_concurrent: bool,
    plugin: Arc<dyn Plugin>,
}

impl std::fmt::Debug for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trigger")
            .field("name", &self.name)
            .field("workflow", &self.workflow)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

/// What one poll asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum PollAnswer {
    Nothing,
    Fire { context: Value, key: String },
}

impl Trigger {
    pub fn from_declaration(
        trigger: &TriggerDeclaration,
        package: &Declaration,
        plugin: Arc<dyn Plugin>,
    ) -> Result<Self, RegistrationError> {
        let invalid = |reason: String| RegistrationError::InvalidTrigger {
            trigger: trigger.name.to_string(),
            reason,
        };
        if !package.tasks.iter().any(|task| task.id == trigger.name) {
            return Err(invalid(format!(
                "the package has no task named `{}` to poll",
                trigger.name
            )));
        }
        if !package.workflows.iter().any(|w| w.name == trigger.workflow) {
            return Err(invalid(format!(
                "workflow `{}` is not in the package",
                trigger.workflow
            )));
        }
        Self::new(
            trigger.name.as_str(),
            trigger.workflow.as_str(),
            Duration::from_millis(trigger.poll_interval_ms),
            trigger.allow_concurrent,
            plugin,
        )
    }

    /// A trigger polling task `name` of `plugin` every `poll_interval` to
    /// start `workflow`.
    pub fn new(
        name: &str,
        workflow: &str,
        poll_interval: Duration,
        allow_concurrent: bool,
        plugin: Arc<dyn Plugin>,
    ) -> Result<Self, RegistrationError> {
        if poll_interval < MIN_POLL_INTERVAL {
            return Err(RegistrationError::InvalidTrigger {
                trigger: name.to_owned(),
                reason: format!(
                    "poll_interval_ms must be at least {}",
                    MIN_POLL_INTERVAL.as_millis()
                ),
            });
        }
        Ok(Trigger {
            name: name.to_owned(),
            workflow: workflow.to_owned(),
            poll_interval,
            allow_concurrent,
            plugin,
        })
    }

    /// Reads a poll's output.
    pub fn parse_answer(output: &str) -> Result<PollAnswer, String> {
        let value: Value = serde_json::from_str(output).map_err(|e| e.to_string())?;
        match value {
            Value::Null => Ok(PollAnswer::Nothing),
            Value::Object(mut answer) => {
                let Some(context) = answer.remove("context") else {
                    return Ok(PollAnswer::Nothing);
                };
                if !context.is_object() {
                    return Err("`context` must be a JSON object".into());
                }
                let key = match answer.remove("key") {
                    Some(Value::String(key)) => key,
                    Some(_) => return Err("`key` must be a string".into()),
                    None => context.to_string(),
                };
                Ok(PollAnswer::Fire { context, key })
            }
            _ => Err("a poll answers null or {\"context\": {...}, \"key\": \"...\"}".into()),
        }
    }

    async fn poll(&self) -> Result<PollAnswer, String> {
        let plugin = self.plugin.clone();
        let name = self.name.clone();
        let timeout = self.poll_interval.max(Duration::from_secs(1));
        let output = tokio::task::spawn_blocking(move || {
            plugin.call(&name, "{}", &CallControl::with_timeout(timeout))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        Self::parse_answer(&output)
    }
}

async fn still_running(db: &Database, origin: &str) -> Result<bool, RuntimeError> {
    let running: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM executions WHERE origin = $1 AND status = 'running'",
    )
    .bind(origin)
    .fetch_one(db.pool())
    .await
    .map_err(RuntimeError::db("checking a trigger's executions"))?;
    Ok(running > 0)
}

pub(super) async fn run(
    trigger: Trigger,
    db: Database,
    registry: Arc<WorkflowRegistry>,
    commands: mpsc::UnboundedSender<Command>,
) {
    let origin = format!("trigger:{}", trigger.name);
    let mut interval = tokio::time::interval(trigger.poll_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if !trigger.allow_concurrent {
            match still_running(&db, &origin).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(trigger = %trigger.name, error = &error as &dyn std::error::Error, "trigger check failed");
                    continue;
                }
            }
        }
        let (context, key) = match trigger.poll().await {
            Ok(PollAnswer::Nothing) => continue,
            Ok(PollAnswer::Fire { context, key }) => (context, key),
            Err(error) => {
                tracing::warn!(trigger = %trigger.name, %error, "trigger poll failed");
                continue;
            }
        };
        let Some(workflow) = registry.latest(&trigger.workflow) else {
            continue;
        };
        let guard = StartGuard::TriggerKey {
            trigger: trigger.name.clone(),
            key: key.clone(),
        };
        match start_on(&commands, workflow, context, origin.clone(), Some(guard)).await {
            Ok(Some(execution)) => {
                tracing::info!(trigger = %trigger.name, %execution, %key, "trigger fired")
            }
            Ok(None) => tracing::debug!(trigger = %trigger.name, %key, "trigger key already fired"),
            Err(RuntimeError::ShuttingDown) => return,
            Err(error) => {
                tracing::warn!(trigger = %trigger.name, error = &error as &dyn std::error::Error, "trigger could not start its workflow")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn poll_answers_are_read_strictly() {
        assert_eq!(Trigger::parse_answer("null"), Ok(PollAnswer::Nothing));
        assert_eq!(
            Trigger::parse_answer(r#"{"context": {"file": "a.csv"}, "key": "a.csv"}"#),
            Ok(PollAnswer::Fire {
                context: json!({"file": "a.csv"}),
                key: "a.csv".into()
            })
        );
        assert_eq!(
            Trigger::parse_answer(r#"{"context": {"n": 1}}"#),
            Ok(PollAnswer::Fire {
                context: json!({"n": 1}),
                key: r#"{"n":1}"#.into()
            })
        );
        assert!(Trigger::parse_answer(r#"{"context": 5}"#).is_err());
        assert!(Trigger::parse_answer("[1]").is_err());
    }
}
