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
//! A computation graph fires the same way: [`Harness::fire`] runs one firing
//! on the accumulator values you give, with the host's traversal (node
//! order, routing by `node.field`, skips), each node retried by its task's
//! policy:
//!
//! ```ignore
//! #[test]
//! fn a_hot_reading_raises_an_alert() {
//!     let fired = crate::test_harness()
//!         .fire("climate", json!({"temperature": {"celsius": 31.5}}))
//!         .expect("fires");
//!     assert!(fired.outputs.contains_key("raise_alert"));
//!     assert_eq!(fired.skipped, ["note_mild"]);
//! }
//! ```
//!
//! What the harness does not do: wait between retries (attempts follow one
//! another at once), enforce timeouts, or persist anything. The host does
//! those; the data flow and the retry decisions are the same.

use std::collections::BTreeMap;
use std::sync::Mutex;

use cloacina_contract::context;
use cloacina_contract::firing::{self, FiringOutcome};
use cloacina_contract::manifest::{
    AttemptFailure, ComputationGraphDeclaration, Declaration, TaskDeclaration, WorkflowTasksError,
    topological_order,
};
use serde_json::{Value, json};

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

    /// Runs one firing of computation graph `graph`, as the host's reactor
    /// would, on `sources`: a JSON object of accumulator name -> current
    /// value (an accumulator left out has not reported: `null`). Nodes run
    /// in the host's order, each retried as its task's policy says; a node
    /// whose routed input is missing is skipped, with everything behind it.
    /// The firing's metadata (`$firing` in each node's context) is
    /// `{"graph": graph, "id": 0, "manual": true}`.
    ///
    /// What ran and what was skipped, or the first node that failed for
    /// good (`RunFailure::task` names it). An unknown graph, `sources` that
    /// is not an object, or a key of it that is not an accumulator of the
    /// graph fail with `RunFailure::task` naming the graph and 0 attempts.
    pub fn fire(&self, graph: &str, sources: Value) -> Result<FiringOutcome, RunFailure> {
        let refused = |error: TaskError| RunFailure {
            task: graph.to_owned(),
            attempts: 0,
            error,
        };
        let declaration = self.declaration().map_err(refused)?;
        let graph_declaration = Self::graph(declaration, graph).map_err(refused)?;
        let sources = match sources {
            Value::Object(sources) => sources,
            other => {
                let kind = context::output_shape(&other).err().unwrap_or("null");
                return Err(refused(TaskError::fatal(format!(
                    "the sources of graph `{graph}` must be a JSON object of accumulator name -> value, not {kind}"
                ))));
            }
        };
        if let Some(unknown) = sources
            .keys()
            .find(|name| graph_declaration.accumulator(name).is_none())
        {
            let names: Vec<&str> = graph_declaration
                .accumulators
                .iter()
                .map(|a| a.name.as_str())
                .collect();
            return Err(refused(TaskError::fatal(format!(
                "graph `{graph}` has no accumulator `{unknown}`; it has: {}",
                names.join(", ")
            ))));
        }
        let firing = json!({ "graph": graph, "id": 0, "manual": true });
        firing::fire(
            graph_declaration,
            &sources,
            &firing,
            |node, node_context| {
                let task = declaration
                    .tasks
                    .iter()
                    .find(|task| task.id.as_str() == node)
                    .ok_or_else(|| RunFailure {
                        task: node.to_owned(),
                        attempts: 0,
                        error: TaskError::fatal(format!(
                            "node `{node}` is not a task of the plugin"
                        )),
                    })?;
                self.with_retries(task, &node_context)
            },
        )
        .map_err(|failed| failed.error)
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

    /// One attempt of `task`: its body, then the graph it invokes, if any
    /// (`cloacina_contract::firing::invoke`, as the host runs it).
    fn attempt(&self, task: &str, context: &Value, attempt: u32) -> TaskResult {
        let output = self.body(task, context, attempt)?;
        let declaration = self.declaration()?;
        let invoked = declaration
            .tasks
            .iter()
            .find(|t| t.id.as_str() == task)
            .and_then(|t| t.invokes.as_ref())
            .and_then(|name| declaration.invoked_graphs.iter().find(|g| &g.name == name));
        match invoked {
            None => Ok(output),
            Some(graph) => {
                cloacina_contract::firing::invoke(graph, task, context, output, |node, input| {
                    self.body(node, &input, attempt)
                })
                .map_err(|failed| TaskError {
                    message: format!(
                        "node `{}` of graph `{}`: {}",
                        failed.node, graph.name, failed.error.message
                    ),
                    ..failed.error
                })
            }
        }
    }

    fn body(&self, task: &str, context: &Value, attempt: u32) -> TaskResult {
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

    /// The plugin's declaration, or why it is invalid.
    fn declaration(&self) -> Result<&'static Declaration, TaskError> {
        self.definition
            .declaration()
            .map_err(|error| TaskError::fatal(format!("the plugin's declaration: {error}")))
    }

    /// The declaration of computation graph `graph`.
    fn graph<'a>(
        declaration: &'a Declaration,
        graph: &str,
    ) -> Result<&'a ComputationGraphDeclaration, TaskError> {
        declaration
            .computation_graphs
            .iter()
            .find(|g| g.name.as_str() == graph)
            .ok_or_else(|| {
                let names: Vec<&str> = declaration
                    .computation_graphs
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect();
                TaskError::fatal(if names.is_empty() {
                    format!("the plugin has no computation graph `{graph}`; it declares none")
                } else {
                    format!(
                        "the plugin has no computation graph `{graph}`; it has: {}",
                        names.join(", ")
                    )
                })
            })
    }

    /// The declarations of `workflow`'s tasks.
    fn workflow_tasks(&self, workflow: &str) -> Result<Vec<TaskDeclaration>, TaskError> {
        let declaration = self.declaration()?;
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

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::{
        Context, InputStrategy, ReactionMode, TaskDefinition, computation_graph, workflow,
    };

    /// `t` above 10 is high, else low; a `t` that is not a number fails.
    fn decide(ctx: &Context<'_>) -> TaskResult {
        let t = ctx
            .get("t")
            .and_then(Value::as_i64)
            .ok_or_else(|| TaskError::fatal("`t` is not a number"))?;
        let level = if t > 10 { "high" } else { "low" };
        Ok(json!({ level: { "t": t }, "firing": ctx.get(firing::FIRING_KEY) }))
    }

    /// Fails (retryably) on its first attempt.
    fn alert(ctx: &Context<'_>) -> TaskResult {
        if ctx.attempt() == 1 {
            return Err(TaskError::retryable("not yet"));
        }
        ctx.log("alerting");
        Ok(json!({ "alerted": ctx.get("decide.high"), "attempt": ctx.attempt() }))
    }

    fn calm(_: &Context<'_>) -> TaskResult {
        Ok(json!({ "calm": true }))
    }

    fn plugin() -> &'static PluginDefinition {
        static PLUGIN: OnceLock<PluginDefinition> = OnceLock::new();
        PLUGIN.get_or_init(|| {
            PluginDefinition::new(
                vec![
                    TaskDefinition::new("decide", r#"{"id":"decide"}"#, decide),
                    TaskDefinition::new(
                        "alert",
                        r#"{"id":"alert","retry":{"max_attempts":2,"backoff":"fixed","delay_ms":0}}"#,
                        alert,
                    ),
                    TaskDefinition::new("calm", r#"{"id":"calm"}"#, calm),
                ],
                vec![workflow("just_decide").tasks(["decide"])],
                vec![],
                vec![],
                vec![
                    computation_graph("levels", ReactionMode::WhenAny, InputStrategy::Latest)
                        .passthrough("t")
                        .node("decide", ["t"])
                        .node("alert", ["decide.high"])
                        .node("calm", ["decide.low"]),
                ],
                vec![],
            )
        })
    }

    #[test]
    fn a_firing_routes_retries_and_carries_its_metadata() {
        let harness = Harness::new(plugin());
        let high = harness.fire("levels", json!({"t": 42})).expect("fires");
        assert_eq!(
            high.outputs["decide"]["firing"],
            json!({"graph": "levels", "id": 0, "manual": true})
        );
        assert_eq!(
            high.outputs["alert"],
            json!({"alerted": {"t": 42}, "attempt": 2})
        );
        assert_eq!(high.skipped, ["calm"]);
        assert_eq!(harness.logs(), ["alert (attempt 2): alerting"]);

        let low = harness.fire("levels", json!({"t": 3})).expect("fires");
        assert_eq!(low.outputs["calm"], json!({"calm": true}));
        assert_eq!(low.skipped, ["alert"]);
    }

    #[test]
    fn a_failing_node_is_named() {
        let failed = Harness::new(plugin())
            .fire("levels", json!({}))
            .expect_err("`t` never reported");
        assert_eq!(failed.task, "decide");
        assert_eq!(failed.attempts, 1);
        assert!(failed.error.message.contains("`t`"), "{failed}");
    }

    #[test]
    fn unknown_graphs_and_malformed_sources_are_refused() {
        let harness = Harness::new(plugin());
        let unknown = harness.fire("nope", json!({})).expect_err("no such graph");
        assert_eq!((unknown.task.as_str(), unknown.attempts), ("nope", 0));
        assert!(
            unknown
                .error
                .message
                .contains("no computation graph `nope`; it has: levels"),
            "{unknown}"
        );
        let list = harness
            .fire("levels", json!([1]))
            .expect_err("not an object");
        assert!(
            list.error.message.contains("must be a JSON object")
                && list.error.message.contains("an array"),
            "{list}"
        );
        let typo = harness
            .fire("levels", json!({"tt": 1}))
            .expect_err("a typo");
        assert!(
            typo.error
                .message
                .contains("no accumulator `tt`; it has: t"),
            "{typo}"
        );
        assert!(harness.logs().is_empty());
    }

    #[test]
    fn a_workflow_runs_a_task_on_its_input() {
        let done = Harness::new(plugin())
            .run("just_decide", json!({"t": 11}))
            .expect("completes");
        assert_eq!(done["high"], json!({"t": 11}));
        assert_eq!(done["t"], 11);
    }
}
