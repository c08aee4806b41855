//! Reactor-triggered computation graphs declared in Python, run by the
//! host's graph runtime (`cloacina-graphs`) like a package's: accumulators
//! committed before they are acknowledged, one supervised reactor per
//! graph, one transaction per firing, subscribed workflows started once
//! per firing. The graph's nodes (and polling accumulators) are Python
//! functions, called like tasks through [`PythonTasks`].

use std::collections::HashMap;
use std::sync::Arc;

use cloacina_contract::Declaration;
use cloacina_contract::manifest::{ComputationGraphDeclaration, Identifier, TaskDeclaration};
use cloacina_graphs::{CommandReply, GraphCommand, GraphRuntime};
use cloacina_runtime::PackageRef;
use pyo3::prelude::*;

use crate::plugin::{PythonTask, PythonTasks, Retrying};

/// A graph as the runtime registers it: its package identity, the
/// declaration (the graph and a task per Python function) and the plugin
/// that calls those functions.
pub(crate) struct PythonGraph {
    pub(crate) package: PackageRef,
    pub(crate) declaration: Declaration,
    pub(crate) plugin: Arc<PythonTasks>,
}

/// The package declaration of graph `declaration` (JSON of a
/// `ComputationGraphDeclaration`) whose functions (nodes and polling
/// accumulators) are the tasks `functions`, each call limited to
/// `timeout_ms`: checked by the contract's rules, as a package's graph is.
fn declare(
    declaration: &str,
    functions: &[String],
    timeout_ms: Option<u64>,
) -> Result<Declaration, String> {
    let mut graph: ComputationGraphDeclaration =
        serde_json::from_str(declaration).map_err(|error| format!("invalid graph: {error}"))?;
    let tasks = functions
        .iter()
        .map(|name| {
            let id = Identifier::new(name.as_str())
                .map_err(|error| format!("`{name}` cannot name a node or accumulator: {error}"))?;
            Ok(TaskDeclaration {
                id,
                description: String::new(),
                dependencies: Vec::new(),
                retry: Default::default(),
                timeout_ms,
                invokes: None,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    // Subscribed workflows are Python workflows, registered on their own:
    // the package rules (a subscription names one of the package's
    // workflows) are checked without them.
    let subscriptions = std::mem::take(&mut graph.subscriptions);
    let mut declaration = Declaration {
        tasks,
        computation_graphs: vec![graph],
        ..Declaration::default()
    };
    declaration
        .validate()
        .map_err(|error| format!("invalid graph: {error}"))?;
    declaration.computation_graphs[0].subscriptions = subscriptions;
    Ok(declaration)
}

/// Checks graph `declaration` with its function names as `declare` does,
/// raising `ConfigurationError` with the reason: what a graph is checked
/// by when it is declared, before any runner takes it.
#[pyfunction]
pub(crate) fn check_graph(
    py: Python<'_>,
    declaration: &str,
    functions: Vec<String>,
) -> PyResult<()> {
    declare(declaration, &functions, None)
        .map(|_| ())
        .map_err(|message| crate::errors::raise(py, "ConfigurationError", message))
}

/// Checks and assembles graph `declaration` with its functions `tasks`
/// (name -> runner, each call limited to `timeout_ms`) and its
/// registration number `generation` (a later registration of the same
/// graph replaces an earlier one).
pub(crate) fn python_graph(
    declaration: &str,
    generation: u64,
    tasks: Vec<(String, Py<PyAny>)>,
    timeout_ms: Option<u64>,
    submit: Py<PyAny>,
) -> Result<PythonGraph, String> {
    let names: Vec<String> = tasks.iter().map(|(name, _)| name.clone()).collect();
    let declaration = declare(declaration, &names, timeout_ms)?;
    let runners: HashMap<String, PythonTask> = tasks
        .into_iter()
        .map(|(name, run)| {
            let task = PythonTask {
                run,
                retrying: Retrying::Never,
            };
            (name, task)
        })
        .collect();
    let name = declaration.computation_graphs[0].name.to_string();
    Ok(PythonGraph {
        package: PackageRef {
            name: format!("python-graph:{name}"),
            version: semver::Version::new(0, 0, generation),
        },
        declaration,
        plugin: Arc::new(PythonTasks::new(runners, submit)),
    })
}

/// Registers `graph` on `graphs`.
pub(crate) async fn register(graphs: &GraphRuntime, graph: PythonGraph) -> Result<(), String> {
    graphs
        .register(&graph.package, &graph.declaration, graph.plugin)
        .await
        .map(|_| ())
        .map_err(|error| cloacina_contract::explain(&error))
}

/// A reactor command by its name: `fire`, `pause`, `resume` or `state`.
pub(crate) fn command(name: &str) -> Result<GraphCommand, String> {
    match name {
        "fire" => Ok(GraphCommand::ForceFire),
        "pause" => Ok(GraphCommand::Pause),
        "resume" => Ok(GraphCommand::Resume),
        "state" => Ok(GraphCommand::GetState),
        other => Err(format!("unknown reactor command `{other}`")),
    }
}

/// A command's reply as JSON text for the Python layer.
pub(crate) fn reply_json(reply: &CommandReply) -> String {
    let value = match reply {
        CommandReply::Fired(firing) => serde_json::json!({ "fired": firing }),
        CommandReply::Paused => serde_json::json!({ "paused": true }),
        CommandReply::Resumed => serde_json::json!({ "paused": false }),
        CommandReply::State(state) => serde_json::json!({ "state": state }),
    };
    value.to_string()
}
