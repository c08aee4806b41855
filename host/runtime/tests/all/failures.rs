//! Retries, fatal errors, skipped dependants, timeouts and cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cloacina_contract::manifest::{Backoff, RetryCondition, RetryPolicy};
use cloacina_loader::TaskFailure;
use cloacina_runtime::{EventType, ExecutionStatus, FunctionPlugin, TaskStatus};
use serde_json::json;

use crate::support::{TestDb, task, workflow};

on_both_databases! {
    a_retryable_error_is_retried_with_backoff => retried_until_success;
    a_fatal_error_fails_the_execution_and_skips_dependants => fatal_skips_dependants;
    retries_stop_at_max_attempts => retries_exhausted;
    a_task_past_its_timeout_is_stopped_and_frees_its_slot => timeouts;
    a_cancelled_execution_stops => cancellation;
    an_output_that_is_not_an_object_fails_instead_of_vanishing => non_object_output;
}

fn retry(max_attempts: u32, delay_ms: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        backoff: Backoff::Fixed,
        delay_ms,
        max_delay_ms: None,
        jitter: false,
        condition: RetryCondition::Retryable,
    }
}

async fn retried_until_success(db: TestDb) {
    let runner = db.runner().await;
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let plugin = FunctionPlugin::new().task("flaky", move |_, control| {
        let call = seen.fetch_add(1, Ordering::SeqCst) + 1;
        assert_eq!(
            control.attempt(),
            call,
            "the attempt number reaches the task"
        );
        if call < 3 {
            Err(TaskFailure::Retryable(format!("try {call} failed")))
        } else {
            Ok(json!({"tries": call}))
        }
    });
    let mut flaky = task("flaky", &[]);
    flaky.retry = retry(5, 30);
    runner
        .register_workflow(workflow("flaky", vec![flaky], plugin))
        .expect("registered");

    let started = Instant::now();
    let result = runner.execute("flaky", json!({})).await.expect("runs");
    assert_eq!(result.status, ExecutionStatus::Completed, "{result:?}");
    assert_eq!(result.final_context.expect("context")["tries"], 3);
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "two backoffs of 30 ms were waited"
    );
    let tasks = runner.tasks(result.execution_id).await.expect("tasks");
    assert_eq!(
        (tasks[0].attempt, tasks[0].status),
        (3, TaskStatus::Completed)
    );
    let events = runner.events(result.execution_id, 0).await.expect("events");
    let retries: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == EventType::TaskRetryScheduled)
        .collect();
    assert_eq!(retries.len(), 2);
    assert_eq!(
        retries[0].event_data.as_ref().expect("data")["error"],
        "retryable error: try 1 failed"
    );
    runner.shutdown().await;
}

async fn fatal_skips_dependants(db: TestDb) {
    let runner = db.runner().await;
    let plugin = FunctionPlugin::new()
        .task("start", |_, _| Ok(json!({})))
        .task("broken", |_, _| {
            Err(TaskFailure::Fatal("the input is corrupt".into()))
        })
        .task("after_broken", |_, _| Ok(json!({})))
        .task("last", |_, _| Ok(json!({})))
        .task("independent", |_, _| Ok(json!({"independent": true})));
    let mut broken = task("broken", &["start"]);
    broken.retry = retry(3, 10);
    runner
        .register_workflow(workflow(
            "fragile",
            vec![
                task("start", &[]),
                broken,
                task("after_broken", &["broken"]),
                task("last", &["after_broken", "independent"]),
                task("independent", &["start"]),
            ],
            plugin,
        ))
        .expect("registered");
    let result = runner.execute("fragile", json!({})).await.expect("runs");
    assert_eq!(result.status, ExecutionStatus::Failed);
    assert_eq!(result.failed_task.as_deref(), Some("broken"));
    let error = result.error.expect("error");
    assert!(
        error.contains("broken") && error.contains("the input is corrupt"),
        "{error}"
    );
    let tasks = runner.tasks(result.execution_id).await.expect("tasks");
    let status = |name: &str| {
        tasks
            .iter()
            .find(|t| t.task_name == name)
            .map(|t| (t.status, t.attempt))
    };
    assert_eq!(
        status("broken"),
        Some((TaskStatus::Failed, 1)),
        "a fatal error is not retried"
    );
    assert_eq!(status("after_broken"), Some((TaskStatus::Skipped, 0)));
    assert_eq!(status("last"), Some((TaskStatus::Skipped, 0)));
    assert_eq!(
        status("independent"),
        Some((TaskStatus::Completed, 1)),
        "other branches finish"
    );
    let events = runner.events(result.execution_id, 0).await.expect("events");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == EventType::TaskSkipped)
            .count(),
        2
    );
    let last = events.last().expect("events");
    assert_eq!(last.event_type, EventType::WorkflowFailed);
    assert_eq!(
        last.event_data.as_ref().expect("data")["failed_task"],
        "broken"
    );
    runner.shutdown().await;
}

async fn retries_exhausted(db: TestDb) {
    let runner = db.runner().await;
    let plugin = FunctionPlugin::new().task("never", |_, _| {
        Err(TaskFailure::Retryable("still down".into()))
    });
    let mut never = task("never", &[]);
    never.retry = RetryPolicy {
        backoff: Backoff::Exponential,
        ..retry(3, 5)
    };
    runner
        .register_workflow(workflow("never", vec![never], plugin))
        .expect("registered");
    let result = runner.execute("never", json!({})).await.expect("runs");
    assert_eq!(result.status, ExecutionStatus::Failed);
    let tasks = runner.tasks(result.execution_id).await.expect("tasks");
    assert_eq!((tasks[0].attempt, tasks[0].status), (3, TaskStatus::Failed));
    assert_eq!(
        tasks[0].last_error.as_deref(),
        Some("retryable error: still down")
    );
    runner.shutdown().await;
}

async fn timeouts(db: TestDb) {
    let mut config = db.config();
    config.max_concurrent_tasks = 1;
    let runner = db.runner_with(config).await;
    let plugin = FunctionPlugin::new()
        // Ignores cancellation for 2 s: its slot must come back at the deadline.
        .task("stubborn", |_, _| {
            std::thread::sleep(Duration::from_secs(2));
            Ok(json!({}))
        });
    let mut stubborn = task("stubborn", &[]);
    stubborn.timeout_ms = Some(100);
    let mut polite = task("polite", &[]);
    polite.timeout_ms = Some(100);
    polite.retry = RetryPolicy {
        condition: RetryCondition::Timeout,
        ..retry(2, 10)
    };
    runner
        .register_workflow(workflow("stubborn", vec![stubborn], plugin))
        .expect("registered");
    let plugin = FunctionPlugin::new().task("polite", |_, control| {
        while !control.should_stop() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(json!({}))
    });
    runner
        .register_workflow(workflow("polite", vec![polite], plugin))
        .expect("registered");
    let plugin = FunctionPlugin::new().task("quick", |_, _| Ok(json!({"quick": true})));
    runner
        .register_workflow(workflow("quick", vec![task("quick", &[])], plugin))
        .expect("registered");

    let started = Instant::now();
    let stubborn = runner.execute("stubborn", json!({})).await.expect("runs");
    assert_eq!(stubborn.status, ExecutionStatus::Failed);
    assert!(
        stubborn
            .error
            .as_deref()
            .is_some_and(|e| e.contains("timed out after 100 ms")),
        "{stubborn:?}"
    );
    // With one slot, this runs only if the stubborn task's slot came back.
    let quick = runner.execute("quick", json!({})).await.expect("runs");
    assert_eq!(quick.status, ExecutionStatus::Completed);
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "the slot was freed at the deadline"
    );

    let polite = runner.execute("polite", json!({})).await.expect("runs");
    assert_eq!(polite.status, ExecutionStatus::Failed);
    let tasks = runner.tasks(polite.execution_id).await.expect("tasks");
    assert_eq!(
        tasks[0].attempt, 2,
        "a timeout is retried when the condition says so"
    );
    runner.shutdown().await;
}

async fn cancellation(db: TestDb) {
    let runner = db.runner().await;
    let plugin = FunctionPlugin::new()
        .task("wait", |_, control| {
            while !control.should_stop() {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(TaskFailure::Cancelled)
        })
        .task("after", |_, _| Ok(json!({})));
    runner
        .register_workflow(workflow(
            "long",
            vec![task("wait", &[]), task("after", &["wait"])],
            plugin,
        ))
        .expect("registered");
    let id = runner
        .execute_async("long", json!({}))
        .await
        .expect("starts");
    let mut events = runner.subscribe();
    // Wait until the task runs, then cancel.
    let started = runner
        .events(id, 0)
        .await
        .expect("events")
        .iter()
        .any(|e| e.event_type == EventType::TaskStarted);
    if !started {
        while let Ok(event) = events.recv().await {
            if event.execution_id == id && event.event_type == EventType::TaskStarted {
                break;
            }
        }
    }
    assert!(runner.cancel(id).await.expect("cancels"));
    let result = runner.wait(id).await.expect("ends");
    assert_eq!(result.status, ExecutionStatus::Cancelled);
    assert!(
        !runner.cancel(id).await.expect("answers"),
        "cancelling twice is a no-op"
    );
    assert!(
        crate::support::eventually(Duration::from_secs(5), async || {
            runner
                .tasks(id)
                .await
                .expect("tasks")
                .iter()
                .all(|t| t.status == TaskStatus::Cancelled)
        })
        .await
    );
    runner.shutdown().await;
}

/// `Ok(json!(subtotal))` used to be merged into nothing: the execution
/// completed with the wrong result. Now the attempt fails, fatally, naming
/// the task and what it returned.
async fn non_object_output(db: TestDb) {
    let runner = db.runner().await;
    let mut subtotal = task("subtotal", &[]);
    subtotal.retry = retry(3, 10);
    let plugin = FunctionPlugin::new()
        .task("subtotal", |_, _| Ok(json!(31.05)))
        .task("nothing", |_, _| Ok(serde_json::Value::Null))
        .task("total", |_, _| Ok(json!({"total": 186.3})));
    runner
        .register_workflow(workflow(
            "orders",
            vec![
                subtotal,
                task("nothing", &[]),
                task("total", &["subtotal", "nothing"]),
            ],
            plugin,
        ))
        .expect("registered");
    let result = runner.execute("orders", json!({})).await.expect("runs");
    assert_eq!(result.status, ExecutionStatus::Failed);
    assert_eq!(result.failed_task.as_deref(), Some("subtotal"));
    let error = result.error.expect("error");
    assert!(
        error.contains("`subtotal` returned a number (31.05)") && error.contains("JSON object"),
        "{error}"
    );
    let tasks = runner.tasks(result.execution_id).await.expect("tasks");
    let of = |name: &str| {
        tasks
            .iter()
            .find(|t| t.task_name == name)
            .map(|t| (t.status, t.attempt))
    };
    assert_eq!(of("subtotal"), Some((TaskStatus::Failed, 1)), "not retried");
    assert_eq!(
        of("nothing"),
        Some((TaskStatus::Completed, 1)),
        "null is nothing, not an error"
    );
    assert_eq!(of("total"), Some((TaskStatus::Skipped, 0)));
    runner.shutdown().await;
}
