//! Testing a plugin without packing it: call one task, or run a whole
//! workflow's DAG, in process, by the host's own rules (the contract's
//! context merge and task order, the task's retry policy, the output
//! check). `plugin!` defines `test_harness()` in the plugin crate:
//!
//! ```ignore
//! #[test]
//! fn the_etl_chain_sums_the_doubled_numbers() {
//!     let harness = crate::test_harness();
//!     let done = harness.run("etl", json!({"input": [1, 2, 3]})).expect("completes");
//!     assert_eq!(done["total"], 12);
//! }
//! ```
//!
//! What the harness does not do: wait between retries (attempts follow one
//! another at once), enforce timeouts, or persist anything. The host does
//! those; the data flow and the retry decisions are the same.

use std::collections::BTreeMap;
use std::sync::Mutex;

use cloacina_contract::context;
use cloacina_contract::manifest::{
    AttemptFailure, TaskDeclaration, WorkflowTasksError, topological_order,
};
use serde_json::Value;

use crate::{ErrorKind, Host, PluginDefinition, TaskError, TaskResult};

/// A plugin under test.
#[derive(Debug)]
pub struct Harness {
    definition: &'static PluginDefinition,
    logs: Mutex<Vec<String>>,
    cancelling: bool,
}

/// Why a workflow run did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailure {
    /// The task that failed (its dependants did not run).
    pub task: String,
    /// How many attempts it had.
    pub attempts: u32,
    pub error: TaskError,
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "task `{}` failed after {} attempt(s): {}",
            self.task, self.attempts, self.error
        )
    }
}

impl std::error::Error for RunFailure {}

/// The host services a task sees under test: its log lines are kept.
struct TestHost<'a> {
    task: &'a str,
    attempt: u32,
    logs: &'a Mutex<Vec<String>>,
    cancelling: bool,
}

impl Host for TestHost<'_> {
    fn log(&self, message: &str) {
        self.logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(format!(
                "{} (attempt {}): {message}",
                self.task, self.attempt
            ));
    }

    fn is_cancelled(&self) -> bool {
        self.cancelling
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl Harness {
    pub fn new(definition: &'static PluginDefinition) -> Harness {
        Harness {
            definition,
            logs: Mutex::new(Vec::new()),
            cancelling: false,
        }
    }

    /// The same plugin, with the host asking every task to stop
    /// (`ctx.is_cancelled()` is true), as at a deadline or a cancel: for
    /// testing that long tasks stop when told.
    pub fn cancelling(mut self) -> Harness {
        self.cancelling = true;
        self
    }

    /// Calls `task` once (attempt 1) with `context`, as the host would: a
    /// panic is a fatal error, the output must be a JSON object or null.
    pub fn call(&self, task: &str, context: Value) -> TaskResult {
        self.attempt(task, &context, 1)
    }

    /// Runs `workflow` with `input` as its context: tasks in the host's
    /// order, each on the merge of its dependencies' results, retried as
    /// its policy says. The final context (the merge of the results of the
    /// tasks nothing depends on), or the first task that failed for good.
    pub fn run(&self, workflow: &str, input: Value) -> Result<Value, RunFailure> {
        let tasks = self.workflow_tasks(workflow).map_err(|error| RunFailure {
            task: workflow.to_owned(),
            attempts: 0,
            error,
        })?;
        let order = topological_order(&tasks).map_err(|cycle| RunFailure {
            task: workflow.to_owned(),
            attempts: 0,
            error: TaskError::fatal(format!("a dependency cycle through {cycle}")),
        })?;
        let mut results: BTreeMap<&str, Value> = BTreeMap::new();
        for &position in &order {
            let task = &tasks[position];
            let task_input = if task.dependencies.is_empty() {
                input.clone()
            } else {
                context::merge_all(
                    task.dependencies
                        .iter()
                        .filter_map(|dependency| results.get(dependency.as_str()).cloned()),
                )
            };
            let output = self.with_retries(task, &task_input)?;
            results.insert(task.id.as_str(), context::task_result(task_input, output));
        }
        // The final context: the results of the tasks nothing depends on,
        // merged in the order they ran, as the host merges them.
        let depended_on: Vec<&str> = tasks
            .iter()
            .flat_map(|task| task.dependencies.iter().map(|d| d.as_str()))
            .collect();
        let finals = order
            .iter()
            .map(|&position| &tasks[position])
            .filter(|task| !depended_on.contains(&task.id.as_str()))
            .filter_map(|task| results.get(task.id.as_str()).cloned());
        Ok(context::merge_all(finals))
    }

    /// Every line the tasks logged so far, as `task (attempt N): message`.
    pub fn logs(&self) -> Vec<String> {
        self.logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn with_retries(&self, task: &TaskDeclaration, input: &Value) -> Result<Value, RunFailure> {
        let mut attempt = 1;
        loop {
            match self.attempt(task.id.as_str(), input, attempt) {
                Ok(output) => return Ok(output),
                Err(error) => {
                    let failure = match error.kind {
                        ErrorKind::Retryable => AttemptFailure::Retryable,
                        ErrorKind::Fatal => AttemptFailure::Final,
                    };
                    if !task.retry.retries(attempt, failure) {
                        return Err(RunFailure {
                            task: task.id.to_string(),
                            attempts: attempt,
                            error,
                        });
                    }
                    attempt += 1;
                }
            }
        }
    }

    fn attempt(&self, task: &str, context: &Value, attempt: u32) -> TaskResult {
        let host = TestHost {
            task,
            attempt,
            logs: &self.logs,
            cancelling: self.cancelling,
        };
        let output = self.definition.call(task, &context.to_string(), &host)?;
        context::check_output(task, &output).map_err(TaskError::fatal)?;
        serde_json::from_str(&output).map_err(TaskError::from)
    }

    /// The declarations of `workflow`'s tasks.
    fn workflow_tasks(&self, workflow: &str) -> Result<Vec<TaskDeclaration>, TaskError> {
        let declaration = self
            .definition
            .declaration()
            .map_err(|error| TaskError::fatal(format!("the plugin's declaration: {error}")))?;
        declaration
            .workflow_tasks(workflow)
            .map_err(|error| match error {
                WorkflowTasksError::NoSuchWorkflow(_) => {
                    let names: Vec<&str> = declaration
                        .workflows
                        .iter()
                        .map(|w| w.name.as_str())
                        .collect();
                    TaskError::fatal(format!(
                        "the plugin has no workflow `{workflow}`; it has: {}",
                        names.join(", ")
                    ))
                }
                other => TaskError::fatal(other.to_string()),
            })
    }
}
