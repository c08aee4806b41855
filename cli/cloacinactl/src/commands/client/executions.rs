//! `execution list|show|events|logs|cancel`.

use cloacina_client::ExecutionQuery;
use cloacina_wire::executions::{ExecutionDetail, TaskExecutionDetail};
use serde::Serialize;

use super::workflows::{event_data, text};
use super::{connect, or_dash, print};
use crate::cli::ExecutionCommand;
use crate::failure::Failure;
use crate::output::{self, out};

/// `execution show --json`: the execution with its tasks.
#[derive(Debug, Serialize)]
struct Shown {
    #[serde(flatten)]
    execution: ExecutionDetail,
    tasks: Vec<TaskExecutionDetail>,
}

/// `execution logs --json`: one task log line.
#[derive(Debug, Serialize)]
struct LogLine {
    sequence_num: i64,
    created_at: String,
    task: Option<String>,
    attempt: serde_json::Value,
    message: serde_json::Value,
}

#[derive(Debug, Serialize)]
struct Logs {
    execution_id: String,
    lines: Vec<LogLine>,
}

pub fn run(command: ExecutionCommand, json: bool) -> Result<(), Failure> {
    match command {
        ExecutionCommand::List {
            status,
            workflow,
            limit,
            offset,
            client,
        } => {
            let listed = connect(&client)?.executions(&ExecutionQuery {
                status,
                workflow,
                limit,
                offset,
            })?;
            print(&listed, json, |v| {
                out!(
                    "{:<36}  {:<20} {:<10} {:<10} {:<30} COMPLETED",
                    "ID",
                    "WORKFLOW",
                    "VERSION",
                    "STATUS",
                    "STARTED"
                );
                for item in &v.items {
                    out!(
                        "{:<36}  {:<20} {:<10} {:<10} {:<30} {}",
                        item.id,
                        item.workflow_name,
                        item.package_version,
                        item.status,
                        item.started_at,
                        or_dash(item.completed_at.as_deref())
                    );
                }
                out!("({} of {})", v.items.len(), v.total);
            });
        }
        ExecutionCommand::Show { id, client } => {
            let client = connect(&client)?;
            let shown = Shown {
                execution: client.execution(&id)?,
                tasks: client.tasks(&id)?.tasks,
            };
            print(&shown, json, |v| {
                let execution = &v.execution;
                out!(
                    "{} {} ({} {}): {}",
                    execution.workflow_name,
                    execution.execution_id,
                    execution.package_name,
                    execution.package_version,
                    execution.status
                );
                if let Some(error) = &execution.error {
                    out!("  error: {error}");
                }
                for task in &v.tasks {
                    out!(
                        "  {:<24} {:<10} attempt {}/{}",
                        task.task_name,
                        task.status,
                        task.attempt,
                        task.max_attempts
                    );
                }
                if let Some(result) = &execution.final_context {
                    out!("  result: {result}");
                }
            });
        }
        ExecutionCommand::Events { id, client } => {
            let events = connect(&client)?.events(&id)?;
            print(&events, json, |v| {
                for event in &v.events {
                    let task = event
                        .task_name
                        .as_deref()
                        .map(|t| format!(" {t}"))
                        .unwrap_or_default();
                    out!(
                        "{:>4}  {}  {}{task}",
                        event.sequence_num,
                        event.created_at,
                        event.event_type
                    );
                }
            });
        }
        ExecutionCommand::Cancel { id, client } => {
            let answer = connect(&client)?.cancel_execution(&id)?;
            print(&answer, json, |v| {
                if v.cancelled {
                    out!("cancelled {}", v.execution_id);
                } else {
                    out!("{} had already ended: {}", v.execution_id, v.status);
                }
            });
        }
        ExecutionCommand::Logs { id, client } => {
            let events = connect(&client)?.events(&id)?;
            let lines = events
                .events
                .iter()
                .filter(|event| event.event_type == "task_log")
                .map(|event| {
                    let data = event_data(event);
                    LogLine {
                        sequence_num: event.sequence_num,
                        created_at: event.created_at.clone(),
                        task: event.task_name.clone(),
                        attempt: data["attempt"].clone(),
                        message: data["message"].clone(),
                    }
                })
                .collect();
            let logs = Logs {
                execution_id: id,
                lines,
            };
            print(&logs, json, |v| {
                for line in &v.lines {
                    out!(
                        "{}",
                        output::task_log_line(
                            or_dash(line.task.as_deref()),
                            &text(&line.attempt),
                            &text(&line.message)
                        )
                    );
                }
            });
        }
    }
    Ok(())
}
