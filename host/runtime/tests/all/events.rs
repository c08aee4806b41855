//! Events: committed with each change, read back from a cursor, seen live.

use std::collections::HashSet;

use cloacina_runtime::{EventType, FunctionPlugin};
use serde_json::json;

use crate::support::{TestDb, task, workflow};

on_both_databases! {
    events_are_read_back_from_a_cursor_and_seen_live => cursor_and_live;
}

/// A follower on one host sees, live and in order, the events another host
/// commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_sees_another_hosts_events() {
    let Some(db) = crate::support::TestDb::postgres().await else {
        return;
    };
    let worker = db.runner().await;
    let watcher = db
        .runner_with(cloacina_runtime::RunnerConfig {
            max_concurrent_tasks: 1,
            ..db.config()
        })
        .await;
    let slow = || {
        FunctionPlugin::new().task("slow", |_, _| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            Ok(json!({"done": true}))
        })
    };
    worker
        .register_workflow(workflow("slow", vec![task("slow", &[])], slow()))
        .expect("registered");
    watcher
        .register_workflow(workflow("slow", vec![task("slow", &[])], slow()))
        .expect("registered");
    let id = worker
        .execute_async("slow", json!({}))
        .await
        .expect("starts");
    let mut follower = watcher.follow(id, 0);
    let mut types = Vec::new();
    while let Some(event) = follower.next().await.expect("follows") {
        types.push(event.event_type);
    }
    assert_eq!(types.first(), Some(&EventType::WorkflowStarted));
    assert_eq!(types.last(), Some(&EventType::WorkflowCompleted));
    assert_eq!(types.len(), 5);
    worker.shutdown().await;
    watcher.shutdown().await;
}

async fn cursor_and_live(db: TestDb) {
    let runner = db.runner().await;
    let plugin = FunctionPlugin::new()
        .task("a", |_, _| Ok(json!({"a": 1})))
        .task("b", |_, _| Ok(json!({"b": 2})));
    runner
        .register_workflow(workflow(
            "ab",
            vec![task("a", &[]), task("b", &["a"])],
            plugin,
        ))
        .expect("registered");

    let mut live = runner.subscribe();
    let id = runner.execute_async("ab", json!({})).await.expect("starts");
    let mut seen = Vec::new();
    while let Ok(event) = live.recv().await {
        if event.execution_id != id {
            continue;
        }
        let end = event.event_type.is_terminal();
        seen.push((*event).clone());
        if end {
            break;
        }
    }
    let types: Vec<EventType> = seen.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            EventType::WorkflowStarted,
            EventType::TaskCreated,
            EventType::TaskCreated,
            EventType::TaskStarted,
            EventType::TaskCompleted,
            EventType::TaskStarted,
            EventType::TaskCompleted,
            EventType::WorkflowCompleted,
        ]
    );
    let stored = runner.events(id, 0).await.expect("events");
    let key = |e: &cloacina_runtime::Event| (e.sequence_num, e.event_type, e.task_name.clone());
    assert_eq!(
        stored.iter().map(key).collect::<Vec<_>>(),
        seen.iter().map(key).collect::<Vec<_>>(),
        "live and stored agree"
    );
    let after_three = runner.events(id, 3).await.expect("events");
    assert_eq!(after_three.first().map(|e| e.sequence_num), Some(4));
    assert_eq!(after_three.len(), stored.len() - 3);
    assert!(
        runner
            .events(id, stored.len() as i64)
            .await
            .expect("events")
            .is_empty()
    );
    // A follower from a cursor sees the same, and stops at the end.
    let mut follower = runner.follow(id, 5);
    let mut followed = Vec::new();
    while let Some(event) = follower.next().await.expect("follows") {
        followed.push(key(&event));
    }
    assert_eq!(followed, stored.iter().skip(5).map(key).collect::<Vec<_>>());
    let tasks: HashSet<_> = stored.iter().filter_map(|e| e.task_name.clone()).collect();
    assert_eq!(tasks, HashSet::from(["a".to_owned(), "b".to_owned()]));
    runner.shutdown().await;
}
