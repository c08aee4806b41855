//! A task that invokes a graph: the graph runs after the task's body, in
//! the same attempt, reading the task's context; its nodes' outputs join
//! the task's output; a node's failure fails (and retries) the task.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cloacina_contract::Identifier;
use cloacina_contract::manifest::{
    Backoff, Declaration, GraphNodeDeclaration, InvokedGraphDeclaration, RetryPolicy,
    WorkflowDeclaration,
};
use cloacina_loader::TaskFailure;
use cloacina_runtime::{ExecutionStatus, FunctionPlugin, Workflow};
use serde_json::json;

use crate::support::{TestDb, package, task};

on_both_databases! {
    an_invoked_graph_runs_within_its_task => invoked_graph;
}

fn id(text: &str) -> Identifier {
    Identifier::new(text).expect("identifier")
}

async fn invoked_graph(db: TestDb) {
    let runner = db.runner().await;
    let mut price = task("price", &[]);
    price.invokes = Some(id("pricing"));
    price.retry = RetryPolicy {
        max_attempts: 2,
        backoff: Backoff::Fixed,
        delay_ms: 10,
        ..RetryPolicy::default()
    };
    let mut ship = task("ship", &["price"]);
    ship.retry = RetryPolicy::default();
    let declaration = Declaration {
        tasks: vec![price, ship, task("subtotal", &[]), task("with_tax", &[])],
        workflows: vec![WorkflowDeclaration {
            name: id("order"),
            description: String::new(),
            tasks: vec![id("price"), id("ship")],
        }],
        invoked_graphs: vec![InvokedGraphDeclaration {
            name: id("pricing"),
            description: String::new(),
            inputs: vec![id("items"), id("rate")],
            nodes: vec![
                GraphNodeDeclaration {
                    id: id("subtotal"),
                    inputs: vec![id("items")],
                },
                GraphNodeDeclaration {
                    id: id("with_tax"),
                    inputs: vec![id("subtotal"), id("rate")],
                },
            ],
        }],
        ..Declaration::default()
    };
    declaration.validate().expect("valid");
    let flaky = Arc::new(AtomicUsize::new(0));
    let calls = flaky.clone();
    let plugin = FunctionPlugin::new()
        .task("price", |_, _| Ok(json!({"rate": 0.25})))
        .task("subtotal", |ctx, _| {
            let sum: i64 = ctx["items"]
                .as_array()
                .map_or(0, |items| items.iter().filter_map(|n| n.as_i64()).sum());
            Ok(json!({"sum": sum}))
        })
        .task("with_tax", move |ctx, _| {
            // The first call fails: the whole task attempt is retried.
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(TaskFailure::Retryable("the tax service is busy".into()));
            }
            let sum = ctx["subtotal"]["sum"].as_f64().unwrap_or(0.0);
            Ok(json!({"total": sum * (1.0 + ctx["rate"].as_f64().unwrap_or(0.0))}))
        })
        .task("ship", |ctx, _| {
            Ok(json!({"shipped": ctx["with_tax"]["total"]}))
        });
    let workflow =
        Workflow::from_declaration(&declaration, "order", package("1.0.0"), Arc::new(plugin))
            .expect("workflow");
    runner.register_workflow(workflow).expect("registered");

    let result = runner
        .execute("order", json!({"items": [10, 30]}))
        .await
        .expect("runs");
    assert_eq!(result.status, ExecutionStatus::Completed, "{result:?}");
    let context = result.final_context.expect("final context");
    assert_eq!(context["shipped"], 50.0);
    assert_eq!(context["subtotal"], json!({"sum": 40}));
    assert_eq!(
        flaky.load(Ordering::SeqCst),
        2,
        "the failed node failed its task's first attempt"
    );
    let tasks = runner.tasks(result.execution_id).await.expect("tasks");
    let price = tasks
        .iter()
        .find(|t| t.task_name == "price")
        .expect("price");
    assert_eq!(price.attempt, 2);
    runner.shutdown().await;
}
