//! The manifest parser: any bytes as `manifest.json`. A manifest that
//! parses has one canonical spelling that reads back as itself, and
//! everything validation promises the runtime holds: each workflow's tasks
//! are declared and order without a cycle, each graph's nodes order after
//! what they read, and a firing runs or skips every node without panicking.

use std::convert::Infallible;

use cloacina_contract::firing::{fire, invoke};
use cloacina_contract::manifest::{GraphTopology, TaskDeclaration, topological_order};
use cloacina_contract::{Manifest, ManifestError};
use serde_json::{Map, Value, json};

pub fn check(bytes: &[u8]) {
    let canonical = Manifest::from_canonical_json(bytes);
    let Ok(manifest) = Manifest::from_json(bytes) else {
        assert!(canonical.is_err(), "canonical bytes that do not parse");
        return;
    };
    match canonical {
        Ok(canonical) => assert_eq!(canonical, manifest),
        Err(error) => assert!(
            matches!(error, ManifestError::NotCanonical),
            "a manifest that parses refused as canonical for another reason: {error}"
        ),
    }
    let written = manifest.to_canonical_json();
    let reread = Manifest::from_canonical_json(&written)
        .unwrap_or_else(|error| panic!("the canonical form does not read back: {error}"));
    assert_eq!(
        reread, manifest,
        "the canonical form reads back as another manifest"
    );
    assert_eq!(
        reread.to_canonical_json(),
        written,
        "the canonical form is not stable"
    );

    let declaration = manifest.declaration();
    for workflow in &declaration.workflows {
        let tasks = declaration
            .workflow_tasks(workflow.name.as_str())
            .unwrap_or_else(|error| panic!("a validated workflow: {error}"));
        let order = topological_order(&tasks)
            .unwrap_or_else(|cycle| panic!("a validated workflow has a cycle: {cycle}"));
        check_task_order(&tasks, &order);
    }
    let node_ran = |node: &str, _context: Value| Ok::<_, Infallible>(json!({ "ran": node }));
    for graph in &declaration.computation_graphs {
        check_node_order(graph);
        let sources: Map<String, Value> = graph
            .accumulators
            .iter()
            .map(|accumulator| (accumulator.name.to_string(), json!({ "value": 1 })))
            .collect();
        let outcome = fire(graph, &sources, &json!({ "id": 1 }), node_ran)
            .unwrap_or_else(|failed| match failed.error {});
        assert_eq!(
            outcome.outputs.len() + outcome.skipped.len(),
            graph.nodes.len(),
            "a firing neither ran nor skipped some node"
        );
    }
    for graph in &declaration.invoked_graphs {
        check_node_order(graph);
        let result = invoke(graph, "fuzz", &json!({}), json!({ "out": 1 }), node_ran)
            .unwrap_or_else(|failed| match failed.error {});
        assert!(result.is_object(), "an invocation's result is an object");
    }
}

/// `order` runs every task once, each after its dependencies.
fn check_task_order(tasks: &[TaskDeclaration], order: &[usize]) {
    let position = positions(order, tasks.len());
    for (index, task) in tasks.iter().enumerate() {
        for dependency in &task.dependencies {
            let before = tasks
                .iter()
                .position(|other| &other.id == dependency)
                .expect("a workflow holds its tasks' dependencies");
            assert!(
                position[before] < position[index],
                "task `{}` is ordered before its dependency `{dependency}`",
                task.id
            );
        }
    }
}

/// The graph's node order runs every node once, each after what it reads.
fn check_node_order(graph: &impl GraphTopology) {
    let nodes = graph.nodes();
    let position = positions(&graph.node_order(), nodes.len());
    for (index, node) in nodes.iter().enumerate() {
        for upstream in graph.upstream(node) {
            let before = nodes
                .iter()
                .position(|other| &other.id == upstream)
                .expect("upstream names a node");
            assert!(
                position[before] < position[index],
                "graph `{}`: node `{}` is ordered before `{upstream}`, which it reads",
                graph.graph_name(),
                node.id
            );
        }
    }
}

/// Where each index sits in `order`, which must be a permutation of 0..len.
fn positions(order: &[usize], len: usize) -> Vec<usize> {
    assert_eq!(order.len(), len, "an order that is not a permutation");
    let mut position = vec![usize::MAX; len];
    for (at, &index) in order.iter().enumerate() {
        assert!(
            index < len && position[index] == usize::MAX,
            "an order that is not a permutation"
        );
        position[index] = at;
    }
    position
}
