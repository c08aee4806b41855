//! Runs one claimed task: the plugin call on a blocking thread, bounded by
//! the task's timeout, and the outcome sent back to the writer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::sync::Arc;

use cloacina_loader::{LogSink, TaskFailure};
use tokio::sync::mpsc;

use super::{Assignment, Command, Finished, TaskLog};
use crate::model::ExecutionId;

/// How long past its deadline a task may take to notice it before its slot
/// is given back (the call's thread is left to finish on its own).
const DEADLINE_GRACE: Duration = Duration::from_millis(50);

/// Log lines kept per attempt; past this, one line says how many were
/// dropped, so a chatty task cannot flood its execution's events.
const MAX_LOG_LINES: usize = 1_000;

/// Sends an attempt's `ctx.log` lines to the writer, as `task_log` events.
fn log_sink(
    execution: ExecutionId,
    task: String,
    attempt: i64,
    writer: mpsc::UnboundedSender<Command>,
) -> LogSink {
    let written = AtomicUsize::new(0);
    Arc::new(move |message: &str| {
        let line = written.fetch_add(1, Ordering::Relaxed);
        let message = match line.cmp(&MAX_LOG_LINES) {
            std::cmp::Ordering::Less => message.to_owned(),
            std::cmp::Ordering::Equal => {
                format!(
                    "(more than {MAX_LOG_LINES} lines: the rest of this attempt's log is dropped)"
                )
            }
            std::cmp::Ordering::Greater => return,
        };
        let _ = writer.send(Command::TaskLog(TaskLog {
            execution,
            task: task.clone(),
            attempt,
            message,
        }));
    })
}

/// Calls given up on in this process: their threads still run the task.
static ABANDONED_CALLS: AtomicUsize = AtomicUsize::new(0);

/// How many task calls in this process ignored their deadline and were
/// left running on their threads (native plugins in process cannot be
/// stopped; worker processes and WebAssembly can).
pub fn abandoned_calls() -> usize {
    ABANDONED_CALLS.load(Ordering::Relaxed)
}

/// Runs the graph a task invokes, after its body, within the same attempt
/// (same deadline and cancellation): its nodes read the task's context, and
/// their outputs join the task's output (`cloacina_contract::firing::invoke`,
/// the SDK's harness runs the same). A node's failure fails the attempt.
fn invoke_graph(
    plugin: &dyn cloacina_loader::Plugin,
    graph: &cloacina_contract::manifest::InvokedGraphDeclaration,
    task: &str,
    input: &serde_json::Value,
    output: &str,
    control: &cloacina_loader::CallControl,
) -> Result<String, TaskFailure> {
    cloacina_contract::context::check_output(task, output).map_err(TaskFailure::InvalidOutput)?;
    let output: serde_json::Value = serde_json::from_str(output)
        .map_err(|error| TaskFailure::InvalidOutput(error.to_string()))?;
    let node = |node: &str, context: serde_json::Value| {
        let text = plugin.call(node, &context.to_string(), control)?;
        cloacina_contract::context::check_output(node, &text)
            .map_err(TaskFailure::InvalidOutput)?;
        serde_json::from_str(&text).map_err(|error| TaskFailure::InvalidOutput(error.to_string()))
    };
    match cloacina_contract::firing::invoke(graph, task, input, output, node) {
        Ok(merged) => Ok(merged.to_string()),
        Err(failed) => {
            let about = |message: String| {
                format!(
                    "node `{}` of graph `{}`: {message}",
                    failed.node, graph.name
                )
            };
            Err(match failed.error {
                TaskFailure::Retryable(message) => TaskFailure::Retryable(about(message)),
                TaskFailure::Fatal(message) => TaskFailure::Fatal(about(message)),
                TaskFailure::InvalidOutput(message) => TaskFailure::InvalidOutput(about(message)),
                other => other,
            })
        }
    }
}

pub(super) fn spawn(assignment: Assignment, writer: mpsc::UnboundedSender<Command>) {
    tokio::spawn(async move {
        let Assignment {
            execution,
            position,
            attempt,
            workflow,
            input,
            control,
        } = assignment;
        let spec = &workflow.tasks()[position];
        let timeout = spec.timeout;
        let plugin = workflow.plugin().clone();
        let task = spec.id.clone();
        let context = input.to_string();
        let call_control = control.clone().with_log(log_sink(
            execution,
            spec.id.clone(),
            attempt,
            writer.clone(),
        ));
        let invoked = spec.invokes.clone();
        let task_input = input.clone();
        let call = tokio::task::spawn_blocking(move || {
            let output = plugin.call(&task, &context, &call_control)?;
            match invoked {
                None => Ok(output),
                Some(graph) => {
                    invoke_graph(&*plugin, &graph, &task, &task_input, &output, &call_control)
                }
            }
        });
        let joined = match timeout {
            Some(timeout) => {
                tokio::select! {
                    joined = call => Some(joined),
                    () = tokio::time::sleep(timeout + DEADLINE_GRACE) => None,
                }
            }
            None => Some(call.await),
        };
        let outcome = match joined {
            Some(Ok(result)) => match control.stop_reason() {
                // A task that returned after its deadline is still late.
                Some(stopped) => Err(stopped),
                None => result.and_then(|output| {
                    cloacina_contract::context::check_output(spec.id.as_str(), &output)
                        .map_err(TaskFailure::InvalidOutput)?;
                    Ok(output)
                }),
            },
            Some(Err(join_error)) => Err(TaskFailure::Fatal(format!(
                "the task's thread failed: {join_error}"
            ))),
            None => {
                control.cancel();
                ABANDONED_CALLS.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%execution, task = %spec.id, "task ignored its deadline; its slot is released and its result will be dropped");
                Err(control.stop_reason().unwrap_or(TaskFailure::Cancelled))
            }
        };
        let _ = writer.send(Command::Finished(Finished {
            execution,
            position,
            attempt,
            input,
            outcome,
        }));
    });
}
