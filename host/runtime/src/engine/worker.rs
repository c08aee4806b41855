//! Runs one claimed task: the plugin call on a blocking thread, bounded by
//! the task's timeout, and the outcome sent back to the writer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cloacina_loader::TaskFailure;
use tokio::sync::mpsc;

use super::{Assignment, Command, Finished};

/// How long past its deadline a task may take to notice it before its slot
/// is given back (the call's thread is left to finish on its own).
const DEADLINE_GRACE: Duration = Duration::from_millis(50);

/// Calls given up on in this process: their threads still run the task.
static ABANDONED_CALLS: AtomicUsize = AtomicUsize::new(0);

/// How many task calls in this process ignored their deadline and were
/// left running on their threads (native plugins in process cannot be
/// stopped; worker processes and WebAssembly can).
pub fn abandoned_calls() -> usize {
    ABANDONED_CALLS.load(Ordering::Relaxed)
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
        let call_control = control.clone();
        let call = tokio::task::spawn_blocking(move || plugin.call(&task, &context, &call_control));
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
