//! Executions of DAGs: context flow, ordering, durability of results.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cloacina_runtime::{EventType, ExecutionStatus, FunctionPlugin, RuntimeError, TaskStatus};
use serde_json::json;

use crate::support::{TestDb, task, workflow};

on_both_databases! {
    a_diamond_passes_contexts_downstream => diamond;
    many_executions_run_at_once_within_the_task_limit => concurrency_limit;
    bad_requests_are_refused_clearly => bad_requests;
}

async fn diamond(db: TestDb) {
    let runner = db.runner().await;
    let plugin = FunctionPlugin::new()
        .task("fetch", |ctx, _| Ok(json!({"n": ctx["seed"].as_i64().unwrap_or(0) + 1, "shared": "fetch"})))
        .task("left", |ctx, _| Ok(json!({"left": ctx["n"].as_i64().unwrap_or(0) * 10, "shared": "left", "nested": {"l": 1}})))
        .task("right", |ctx, _| Ok(json!({"right": ctx["n"].as_i64().unwrap_or(0) * 100, "shared": "right", "nested": {"r": 2}})))
        .task("join", |ctx, _| {
            Ok(json!({"sum": ctx["left"].as_i64().unwrap_or(0) + ctx["right"].as_i64().unwrap_or(0), "saw": ctx["shared"].clone()}))
        });
    runner
        .register_workflow(workflow(
            "diamond",
            vec![
                task("fetch", &[]),
                task("left", &["fetch"]),
                task("right", &["fetch"]),
                task("join", &["left", "right"]),
            ],
            plugin,
        ))
        .expect("registered");

    let result = runner
        .execute("diamond", json!({"seed": 4}))
        .await
        .expect("executes");
    assert_eq!(result.status, ExecutionStatus::Completed, "{result:?}");
    let context = result.final_context.clone().expect("final context");
    assert_eq!(context["sum"], 50 + 500);
    assert_eq!(context["seed"], 4, "the input flows through");
    assert_eq!(
        context["saw"], "right",
        "the later-declared dependency wins a conflict"
    );
    assert_eq!(
        context["nested"],
        json!({"l": 1, "r": 2}),
        "objects merge recursively"
    );
    assert!(result.duration_ms().is_some());

    // Durable: a new runner on the same database reads the same.
    runner.shutdown().await;
    let again = db.runner().await;
    let stored = again.status(result.execution_id).await.expect("stored");
    assert_eq!(stored.status, ExecutionStatus::Completed);
    assert_eq!(stored.final_context, result.final_context);
    let tasks = again.tasks(result.execution_id).await.expect("tasks");
    assert_eq!(
        tasks
            .iter()
            .map(|t| t.task_name.as_str())
            .collect::<Vec<_>>(),
        ["fetch", "left", "right", "join"]
    );
    assert!(
        tasks
            .iter()
            .all(|t| t.status == TaskStatus::Completed && t.attempt == 1)
    );
    let events = again.events(result.execution_id, 0).await.expect("events");
    let sequence: Vec<i64> = events.iter().map(|e| e.sequence_num).collect();
    assert_eq!(
        sequence,
        (1..=sequence.len() as i64).collect::<Vec<_>>(),
        "dense, ordered sequence numbers"
    );
    assert_eq!(
        events.first().map(|e| e.event_type),
        Some(EventType::WorkflowStarted)
    );
    assert_eq!(
        events.last().map(|e| e.event_type),
        Some(EventType::WorkflowCompleted)
    );
    let started = |name: &str| {
        events.iter().position(|e| {
            e.event_type == EventType::TaskStarted && e.task_name.as_deref() == Some(name)
        })
    };
    let completed = |name: &str| {
        events.iter().position(|e| {
            e.event_type == EventType::TaskCompleted && e.task_name.as_deref() == Some(name)
        })
    };
    assert!(completed("fetch") < started("left") && completed("fetch") < started("right"));
    assert!(completed("left") < started("join") && completed("right") < started("join"));
    again.shutdown().await;
}

async fn concurrency_limit(db: TestDb) {
    let mut config = db.config();
    config.max_concurrent_tasks = 3;
    let runner = db.runner_with(config).await;
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n, p) = (now.clone(), peak.clone());
    let plugin = FunctionPlugin::new().task("work", move |_, _| {
        let running = n.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(running, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        n.fetch_sub(1, Ordering::SeqCst);
        Ok(json!({"done": true}))
    });
    runner
        .register_workflow(workflow("one", vec![task("work", &[])], plugin))
        .expect("registered");
    let ids = futures_join(&runner, 12).await;
    for id in ids {
        let result = runner.wait(id).await.expect("waits");
        assert_eq!(result.status, ExecutionStatus::Completed);
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        3,
        "exactly the limit ran at once"
    );
    runner.shutdown().await;
}

async fn futures_join(
    runner: &cloacina_runtime::Runner,
    count: usize,
) -> Vec<cloacina_runtime::ExecutionId> {
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(
            runner
                .execute_async("one", json!({}))
                .await
                .expect("starts"),
        );
    }
    ids
}

async fn bad_requests(db: TestDb) {
    let runner = db.runner().await;
    runner
        .register_workflow(workflow(
            "ok",
            vec![task("a", &[])],
            FunctionPlugin::new().task("a", |_, _| Ok(json!({}))),
        ))
        .expect("registered");
    let not_object = runner.execute("ok", json!([1, 2])).await;
    assert!(
        matches!(
            not_object,
            Err(RuntimeError::ContextNotAnObject("an array"))
        ),
        "{not_object:?}"
    );
    let unknown = runner.execute("nope", json!({})).await;
    assert!(matches!(unknown, Err(RuntimeError::UnknownWorkflow(ref name)) if name == "nope"));
    assert!(cloacina_runtime::parse_context("{not json").is_err());
    assert!(
        runner
            .status("00000000-0000-0000-0000-000000000000".parse().expect("id"))
            .await
            .is_err()
    );
    runner.shutdown().await;
}
