//! One firing of a computation graph: which nodes run, in what order, with
//! what context. The host's reactor and the SDK's test harness both
//! traverse a graph with [`fire`], so a graph behaves the same in a unit
//! test as on a server.
//!
//! A node's context has one key per input it declares, under the input's
//! name: an accumulator's current value (`null` until the source reported),
//! an upstream node's output, or one field of it (`node.field`). When an
//! upstream node was skipped or answered `null`, or a routed field is
//! missing or `null`, the node is skipped, and so is everything behind it.
//! The firing's metadata is under [`FIRING_KEY`].

use serde_json::{Map, Value};

use crate::context::merge;
use crate::manifest::{GraphTopology, InputSource, InvokedGraphDeclaration};

/// The context key of the firing's metadata (`{graph, id, manual}`); input
/// names cannot start with `$`, so it never collides with one.
pub const FIRING_KEY: &str = "$firing";

/// What a firing computed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FiringOutcome {
    /// Each node that ran, with its output, in the order they ran.
    pub outputs: Map<String, Value>,
    /// Nodes skipped because an input was routed away.
    pub skipped: Vec<String>,
}

/// A node that failed (after whatever retries the caller applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFailed<E> {
    pub node: String,
    pub error: E,
}

/// Runs one firing of `graph` on `sources` (accumulator name -> current
/// value), calling `call(node, context)` for each node that runs.
pub fn fire<E>(
    graph: &impl GraphTopology,
    sources: &Map<String, Value>,
    firing: &Value,
    mut call: impl FnMut(&str, Value) -> Result<Value, E>,
) -> Result<FiringOutcome, NodeFailed<E>> {
    let mut outcome = FiringOutcome::default();
    for index in graph.node_order() {
        let node = &graph.nodes()[index];
        let Some(mut context) = node_context(graph, node.inputs.as_slice(), sources, &outcome)
        else {
            outcome.skipped.push(node.id.to_string());
            continue;
        };
        context.insert(FIRING_KEY.to_owned(), firing.clone());
        let output =
            call(node.id.as_str(), Value::Object(context)).map_err(|error| NodeFailed {
                node: node.id.to_string(),
                error,
            })?;
        outcome.outputs.insert(node.id.to_string(), output);
    }
    Ok(outcome)
}

/// Runs `graph`, invoked by a task whose attempt received `input` and
/// returned `output`: the graph's inputs are read from the input with the
/// output merged in, and the task's output becomes its own plus each node
/// that ran, under the node's name. The task's attempt fails if a node
/// does. The host's runtime and the SDK's harness both call this.
pub fn invoke<E>(
    graph: &InvokedGraphDeclaration,
    task: &str,
    input: &Value,
    output: Value,
    call: impl FnMut(&str, Value) -> Result<Value, E>,
) -> Result<Value, NodeFailed<E>> {
    let mut context = input.clone();
    merge(&mut context, output.clone());
    let sources = match context {
        Value::Object(sources) => sources,
        _ => Map::new(),
    };
    let firing = serde_json::json!({"graph": graph.name, "invoked_by": task});
    let outcome = fire(graph, &sources, &firing, call)?;
    let mut result = match output {
        Value::Object(fields) => fields,
        _ => Map::new(),
    };
    result.extend(outcome.outputs);
    Ok(Value::Object(result))
}

/// A node's context, or None when one of its inputs was routed away.
fn node_context(
    graph: &impl GraphTopology,
    inputs: &[crate::Identifier],
    sources: &Map<String, Value>,
    outcome: &FiringOutcome,
) -> Option<Map<String, Value>> {
    let mut context = Map::new();
    for input in inputs {
        let value = match graph.resolve(input)? {
            InputSource::Accumulator(accumulator) => sources
                .get(accumulator.name.as_str())
                .cloned()
                .unwrap_or(Value::Null),
            InputSource::Context(key) => sources.get(key.as_str()).cloned().unwrap_or(Value::Null),
            InputSource::Node(node) => outcome
                .outputs
                .get(node.as_str())
                .filter(|output| !output.is_null())?
                .clone(),
            InputSource::Field { node, field } => outcome
                .outputs
                .get(node.as_str())?
                .get(field)
                .filter(|value| !value.is_null())?
                .clone(),
        };
        context.insert(input.to_string(), value);
    }
    Some(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identifier;
    use crate::manifest::ComputationGraphDeclaration;
    use crate::manifest::{
        AccumulatorDeclaration, AccumulatorKind, GraphNodeDeclaration, InputStrategy, ReactionMode,
        ReactorDeclaration,
    };
    use serde_json::json;

    fn id(text: &str) -> Identifier {
        Identifier::new(text).expect("valid")
    }

    fn routing_graph() -> ComputationGraphDeclaration {
        let node = |name: &str, inputs: &[&str]| GraphNodeDeclaration {
            id: id(name),
            inputs: inputs.iter().map(|i| id(i)).collect(),
        };
        ComputationGraphDeclaration {
            name: id("g"),
            description: String::new(),
            accumulators: vec![AccumulatorDeclaration::new(
                id("t"),
                AccumulatorKind::Passthrough,
            )],
            reactor: ReactorDeclaration {
                reaction_mode: ReactionMode::WhenAny,
                input_strategy: InputStrategy::Latest,
                sources: vec![],
            },
            // Declared out of order: `alert` reads `decide`'s field.
            nodes: vec![
                node("alert", &["decide.high"]),
                node("calm", &["decide.low"]),
                node("decide", &["t"]),
                node("after_alert", &["alert"]),
            ],
            subscriptions: vec![],
        }
    }

    #[test]
    fn routing_runs_the_chosen_branch_and_skips_the_other() {
        let graph = routing_graph();
        let sources: Map<String, Value> = json!({"t": 42}).as_object().cloned().expect("object");
        let mut seen = Vec::new();
        let outcome = fire(&graph, &sources, &json!({"id": 1}), |node, context| {
            seen.push((node.to_owned(), context.clone()));
            Ok::<_, String>(match node {
                "decide" => json!({"high": {"value": context["t"]}}),
                "alert" => json!({"alerted": context["decide.high"]["value"]}),
                _ => json!({"ran": node}),
            })
        })
        .expect("fires");
        assert_eq!(seen[0].0, "decide");
        assert_eq!(seen[0].1, json!({"t": 42, "$firing": {"id": 1}}));
        assert_eq!(outcome.outputs["alert"], json!({"alerted": 42}));
        assert_eq!(
            outcome.outputs["after_alert"],
            json!({"ran": "after_alert"})
        );
        assert_eq!(outcome.skipped, ["calm"]);
    }

    #[test]
    fn a_source_that_never_reported_is_null_and_a_failure_names_its_node() {
        let graph = routing_graph();
        let failed = fire(&graph, &Map::new(), &Value::Null, |node, context| {
            assert!(context["t"].is_null());
            Err(format!("{node} broke"))
        })
        .expect_err("fails");
        assert_eq!(
            failed,
            NodeFailed {
                node: "decide".into(),
                error: "decide broke".into()
            }
        );
    }

    #[test]
    fn an_invoked_graph_reads_the_task_context_and_adds_its_outputs() {
        let graph = InvokedGraphDeclaration {
            name: id("pricing"),
            description: String::new(),
            inputs: vec![id("order"), id("rate")],
            nodes: vec![
                GraphNodeDeclaration {
                    id: id("subtotal"),
                    inputs: vec![id("order")],
                },
                GraphNodeDeclaration {
                    id: id("taxed"),
                    inputs: vec![id("subtotal"), id("rate")],
                },
            ],
        };
        let output = invoke(
            &graph,
            "price",
            &json!({"order": [2, 3], "kept": true}),
            json!({"rate": 0.5}),
            |node, context| {
                Ok::<_, String>(match node {
                    "subtotal" => json!({"sum": context["order"].as_array().map_or(0, |o| o.iter().filter_map(|n| n.as_i64()).sum::<i64>())}),
                    _ => json!({"total": context["subtotal"]["sum"].as_f64().unwrap_or(0.0) * (1.0 + context["rate"].as_f64().unwrap_or(0.0))}),
                })
            },
        )
        .expect("runs");
        assert_eq!(
            output,
            json!({"rate": 0.5, "subtotal": {"sum": 5}, "taxed": {"total": 7.5}})
        );
    }
}
