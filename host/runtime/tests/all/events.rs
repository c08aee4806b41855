//! Events: committed with each change, read back from a cursor, seen live.

use std::collections::HashSet;

use cloacina_runtime::{EventType, FunctionPlugin};
use serde_json::json;

use crate::support::{TestDb, task, workflow};

on_both_databases! {
    events_are_read_back_from_a_cursor_and_seen_live => cursor_and_live;
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
    let tasks: HashSet<_> = stored.iter().filter_map(|e| e.task_name.clone()).collect();
    assert_eq!(tasks, HashSet::from(["a".to_owned(), "b".to_owned()]));
    runner.shutdown().await;
}
