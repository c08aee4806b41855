//! Running one firing's nodes: on one blocking thread, each node a task
//! call under its own timeout and retry policy.

use std::sync::Arc;
use std::time::Instant;

use cloacina_contract::context::check_output;
use cloacina_contract::firing::{FiringOutcome, NodeFailed, fire};
use cloacina_loader::{CallControl, TaskFailure};
use cloacina_runtime::retry::{AfterFailure, after_failure};
use serde_json::{Map, Value};

use crate::slot::GraphSpec;

/// What a firing computed, or why it failed, and how long it took.
pub(crate) struct Computed {
    pub result: Result<FiringOutcome, NodeFailed<TaskFailure>>,
    pub duration_us: i64,
}

/// Runs the graph's nodes on `sources` on a blocking thread.
pub(crate) async fn compute(
    spec: Arc<GraphSpec>,
    sources: Map<String, Value>,
    meta: Value,
) -> Computed {
    let joined = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let result = fire(&spec.declaration, &sources, &meta, |node, context| {
            call_node(&spec, node, &context)
        });
        Computed {
            result,
            duration_us: i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX),
        }
    })
    .await;
    joined.unwrap_or_else(|error| Computed {
        result: Err(NodeFailed {
            node: String::new(),
            error: TaskFailure::Fatal(format!("the firing's thread failed: {error}")),
        }),
        duration_us: 0,
    })
}

/// One node: attempts until success or the policy gives up.
fn call_node(spec: &GraphSpec, node: &str, context: &Value) -> Result<Value, TaskFailure> {
    let task = spec.tasks.get(node);
    let input = context.to_string();
    let mut attempt = 1;
    loop {
        let control = match task.and_then(|t| t.timeout_ms) {
            Some(ms) => CallControl::with_timeout(std::time::Duration::from_millis(ms)),
            None => CallControl::new(),
        }
        .attempt_number(attempt);
        let outcome = spec.plugin.call(node, &input, &control).and_then(|output| {
            check_output(node, &output).map_err(TaskFailure::InvalidOutput)?;
            serde_json::from_str::<Value>(&output)
                .map_err(|error| TaskFailure::InvalidOutput(error.to_string()))
        });
        let failure = match outcome {
            Ok(output) => return Ok(output),
            Err(failure) => failure,
        };
        let policy = task.map(|t| t.retry.clone()).unwrap_or_default();
        match after_failure(&policy, attempt, &failure) {
            AfterFailure::RetryIn(delay) => {
                std::thread::sleep(delay);
                attempt += 1;
            }
            AfterFailure::GiveUp => return Err(failure),
        }
    }
}
