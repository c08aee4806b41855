//! `workflow run [--follow]`, `workflow show`.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use cloacina_client::Client;
use cloacina_wire::executions::{ExecuteRequest, ExecutionEvent};

use super::{connect, print};
use crate::cli::WorkflowCommand;
use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output::{self, out};

pub fn run(command: WorkflowCommand, json: bool) -> Result<(), Failure> {
    match command {
        WorkflowCommand::Run {
            name,
            context,
            follow,
            version,
            client,
        } => {
            let context: serde_json::Value = serde_json::from_str(&context)
                .context("--context is not valid JSON")
                .classify(FailureKind::Usage)?;
            let client = connect(&client)?;
            let started = client.execute(
                &name,
                &ExecuteRequest {
                    context: Some(context),
                    version,
                },
            )?;
            let id = started.execution_id.clone();
            if !follow {
                print(&started, json, |_| out!("started {name}: execution {id}"));
                return Ok(());
            }
            if !json {
                out!("started {name}: execution {id}");
            }
            follow_events(&client, &id, json)
        }
        WorkflowCommand::Show { name, client } => {
            let detail = connect(&client)?.workflow(&name)?;
            print(&detail, json, |v| {
                out!(
                    "{} (package {} {}): {}",
                    v.workflow_name,
                    v.package_name,
                    v.version,
                    v.build_status
                );
                if let Some(error) = &v.build_error {
                    out!("  error: {error}");
                }
                for task in &v.task_graph {
                    if task.dependencies.is_empty() {
                        out!("  {}", task.id);
                    } else {
                        out!("  {}  (after {})", task.id, task.dependencies.join(", "));
                    }
                }
            });
            Ok(())
        }
    }
}

/// Prints the execution's events as they are pushed on the delivery
/// socket until the terminal one (falling back to polling the events route
/// when the socket cannot be opened); exit 7 when it did not complete.
fn follow_events(client: &Client, id: &str, json: bool) -> Result<(), Failure> {
    let mut seen = 0i64;
    match follow_socket(client, id, json, &mut seen) {
        Ok(Some(end)) => return finish(client, id, &end, json),
        Ok(None) => {}
        Err(error) => tracing::debug!(
            error = &error as &dyn std::error::Error,
            "the delivery socket failed; polling instead"
        ),
    }
    loop {
        for event in client.events(id)?.events {
            if event.sequence_num <= seen {
                continue;
            }
            seen = event.sequence_num;
            if let Some(end) = show_event(&event, json) {
                return finish(client, id, &end, json);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Follows the execution on the delivery socket. Some(terminal event
/// type) when it ended there; `seen` is the last sequence number shown.
fn follow_socket(
    client: &Client,
    id: &str,
    json: bool,
    seen: &mut i64,
) -> Result<Option<String>, cloacina_client::ClientError> {
    let mut events = client.follow(id)?;
    while let Some(event) = events.next_event()? {
        if event.sequence_num <= *seen {
            continue;
        }
        *seen = event.sequence_num;
        if let Some(end) = show_event(&event, json) {
            events.close();
            return Ok(Some(end));
        }
    }
    Ok(None)
}

/// An event's data: JSON text on the wire, parsed.
pub fn event_data(event: &ExecutionEvent) -> serde_json::Value {
    event
        .event_data
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// A JSON value as a column: strings bare, absent as `-`.
pub fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Prints one event (a task's log line as `[task#attempt] message`); the
/// terminal event's type when it is one.
fn show_event(event: &ExecutionEvent, json: bool) -> Option<String> {
    if json {
        output::json(event);
    } else if event.event_type == "task_log" {
        let data = event_data(event);
        out!(
            "      {}",
            output::task_log_line(
                event.task_name.as_deref().unwrap_or("-"),
                &text(&data["attempt"]),
                &text(&data["message"])
            )
        );
    } else {
        let task = event
            .task_name
            .as_deref()
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        out!("{:>4}  {}{task}", event.sequence_num, event.event_type);
    }
    match event.event_type.as_str() {
        end @ ("workflow_completed" | "workflow_failed" | "workflow_cancelled") => {
            Some(end.to_owned())
        }
        _ => None,
    }
}

/// After the terminal event: the final context (exit 0), or the failing
/// task and its error (exit 7).
fn finish(client: &Client, id: &str, end: &str, json: bool) -> Result<(), Failure> {
    let execution = client.execution(id)?;
    if end == "workflow_completed" {
        if !json {
            out!(
                "completed on {} {}; final context:",
                execution.package_name,
                execution.package_version
            );
            out!(
                "{}",
                serde_json::to_string_pretty(&execution.final_context).unwrap_or_default()
            );
        }
        return Ok(());
    }
    let failed = execution
        .failed_task
        .as_deref()
        .map(|task| format!(" in task `{task}`"))
        .unwrap_or_default();
    Err(Failure {
        kind: FailureKind::WorkflowFailed,
        error: anyhow!(
            "execution {id} ended {}{failed}: {}",
            execution.status,
            execution.error.as_deref().unwrap_or("-")
        ),
        hint: None,
    })
}
