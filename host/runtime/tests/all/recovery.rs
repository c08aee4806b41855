//! What survives a host that stops mid-run, and hosts sharing a database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloacina_loader::TaskFailure;
use cloacina_runtime::{
    EventType, ExecutionStatus, FunctionPlugin, HostIdentity, RunnerConfig, TaskStatus,
};
use serde_json::json;

use crate::support::{TestDb, task, workflow};

on_both_databases! {
    a_host_that_stops_mid_task_is_taken_over_without_rerunning_completed_tasks => takeover;
    hosts_are_listed_as_they_said_with_the_tasks_they_run => hosts_view;
}

/// `Runner::hosts`: the lease row as the host wrote it (id, address,
/// version), and its running task counted while it runs, not after.
async fn hosts_view(db: TestDb) {
    let identity = HostIdentity {
        address: Some("10.0.0.7:8080".to_owned()),
        version: "9.8.7".to_owned(),
        ..HostIdentity::default()
    };
    let runner = db
        .runner_with(RunnerConfig {
            host: identity.clone(),
            ..db.config()
        })
        .await;
    let release = Arc::new(AtomicBool::new(false));
    let gate = release.clone();
    let plugin = FunctionPlugin::new().task("hold", move |_, _| {
        while !gate.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(json!({}))
    });
    runner
        .register_workflow(workflow("hold", vec![task("hold", &[])], plugin))
        .expect("registered");
    let id = runner
        .execute_async("hold", json!({}))
        .await
        .expect("starts");
    assert!(
        crate::support::eventually(Duration::from_secs(5), async || {
            let hosts = runner.hosts().await.expect("hosts");
            hosts.first().map(|host| host.running_tasks) == Some(1)
        })
        .await,
        "the running task is counted"
    );
    let hosts = runner.hosts().await.expect("hosts");
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    let host = &hosts[0];
    assert_eq!(host.id, identity.id);
    assert_eq!(host.id, runner.host_id());
    assert_eq!(host.address, identity.address);
    assert_eq!(host.version.as_deref(), Some("9.8.7"));
    assert!(host.heartbeat_at_ms >= host.started_at_ms, "{host:?}");

    release.store(true, Ordering::SeqCst);
    let result = runner.wait(id).await.expect("ends");
    assert_eq!(result.status, ExecutionStatus::Completed);
    let hosts = runner.hosts().await.expect("hosts");
    assert_eq!(hosts[0].running_tasks, 0, "{hosts:?}");
    runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hosts_share_one_postgresql_without_running_a_task_twice() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let runs: Arc<Mutex<HashMap<(String, String), u32>>> = Arc::default();
    let config = RunnerConfig {
        max_concurrent_tasks: 4,
        ..db.config()
    };
    let mut hosts = Vec::new();
    for _ in 0..2 {
        // Two hosts: each its own id.
        let runner = db
            .runner_with(RunnerConfig {
                host: HostIdentity::default(),
                ..config.clone()
            })
            .await;
        let names = ["a", "b", "c", "d", "e"];
        let mut plugin = FunctionPlugin::new();
        for name in names {
            let runs = runs.clone();
            plugin = plugin.task(name, move |ctx, _| {
                let execution = ctx["run"].as_str().unwrap_or_default().to_owned();
                *runs
                    .lock()
                    .expect("lock")
                    .entry((execution, name.to_owned()))
                    .or_default() += 1;
                std::thread::sleep(Duration::from_millis(2));
                Ok(json!({}))
            });
        }
        runner
            .register_workflow(workflow(
                "shared",
                vec![
                    task("a", &[]),
                    task("b", &["a"]),
                    task("c", &["a"]),
                    task("d", &["a"]),
                    task("e", &["b", "c", "d"]),
                ],
                plugin,
            ))
            .expect("registered");
        hosts.push(runner);
    }
    let mut ids = Vec::new();
    for i in 0..60 {
        let host = &hosts[i % 2];
        ids.push(
            host.execute_async("shared", json!({"run": format!("run-{i}")}))
                .await
                .expect("starts"),
        );
    }
    let mut by_host: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let result = hosts[0].wait(*id).await.expect("ends");
        assert_eq!(result.status, ExecutionStatus::Completed);
        for event in hosts[0].events(*id, 0).await.expect("events") {
            if event.event_type == EventType::TaskStarted {
                let host = event
                    .event_data
                    .as_ref()
                    .and_then(|d| d["host"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                *by_host.entry(host).or_default() += 1;
            }
        }
    }
    let runs = runs.lock().expect("lock").clone();
    assert_eq!(runs.len(), 60 * 5);
    assert!(runs.values().all(|&n| n == 1), "a task ran twice: {runs:?}");
    assert_eq!(by_host.len(), 2, "both hosts took work: {by_host:?}");
    for host in hosts {
        host.shutdown().await;
    }
}

async fn takeover(db: TestDb) {
    let release = Arc::new(AtomicBool::new(false));
    let first_runs = Arc::new(Mutex::new(Vec::<String>::new()));
    let config = RunnerConfig {
        lease_ttl: Duration::from_secs(1),
        shutdown_grace: Duration::from_millis(100),
        ..db.config()
    };

    // The first host completes `prepare`, then hangs in `slow` and stops
    // without finishing it (its lease goes with it).
    let first = db.runner_with(config.clone()).await;
    let (gate, log) = (release.clone(), first_runs.clone());
    let log2 = first_runs.clone();
    let plugin = FunctionPlugin::new()
        .task("prepare", move |_, _| {
            log.lock().expect("lock").push("prepare".into());
            Ok(json!({"prepared": true}))
        })
        .task("slow", move |_, _| {
            log2.lock().expect("lock").push("slow".into());
            while !gate.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(json!({"by": "first"}))
        });
    first
        .register_workflow(workflow(
            "job",
            vec![task("prepare", &[]), task("slow", &["prepare"])],
            plugin,
        ))
        .expect("registered");
    let id = first.execute_async("job", json!({})).await.expect("starts");
    assert!(
        crate::support::eventually(Duration::from_secs(5), async || first_runs
            .lock()
            .expect("lock")
            .len()
            == 2)
        .await
    );
    first.shutdown().await;
    assert_eq!(
        first.status(id).await.ok().map(|r| r.status),
        None,
        "the first host is gone"
    );

    // The second host (another id: a host that kept the first one's would
    // see its claims as its own) takes the unfinished task over.
    let second = db
        .runner_with(RunnerConfig {
            host: HostIdentity::default(),
            ..config
        })
        .await;
    let second_runs = Arc::new(Mutex::new(Vec::<String>::new()));
    let (log, log2) = (second_runs.clone(), second_runs.clone());
    let plugin = FunctionPlugin::new()
        .task("prepare", move |_, _| {
            log.lock().expect("lock").push("prepare".into());
            Ok(json!({}))
        })
        .task("slow", move |ctx, _| {
            log2.lock().expect("lock").push("slow".into());
            Ok(json!({"by": "second", "saw_prepared": ctx["prepared"].clone()}))
        });
    second
        .register_workflow(workflow(
            "job",
            vec![task("prepare", &[]), task("slow", &["prepare"])],
            plugin,
        ))
        .expect("registered");
    let result = tokio::time::timeout(Duration::from_secs(10), second.wait(id))
        .await
        .expect("finishes")
        .expect("ends");
    release.store(true, Ordering::SeqCst);
    assert_eq!(result.status, ExecutionStatus::Completed);
    let context = result.final_context.expect("context");
    assert_eq!(context["by"], "second");
    assert_eq!(
        context["saw_prepared"], true,
        "the completed task's output survived"
    );
    assert_eq!(
        *second_runs.lock().expect("lock"),
        ["slow"],
        "the completed task did not run again"
    );
    let tasks = second.tasks(id).await.expect("tasks");
    assert!(
        tasks
            .iter()
            .all(|t| t.status == TaskStatus::Completed && t.attempt == 1),
        "{tasks:?}"
    );
    let events = second.events(id, 0).await.expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.event_type == EventType::TaskLeaseExpired
                && e.task_name.as_deref() == Some("slow"))
    );
    second.shutdown().await;
}

/// PostgreSQL drops every connection of the runner mid-run (as on a
/// restart or failover): executions wait and finish, none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn executions_survive_the_database_dropping_its_connections() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let runner = db.runner().await;
    let plugin = FunctionPlugin::new()
        .task("a", |_, _| {
            std::thread::sleep(Duration::from_millis(30));
            Ok(json!({"a": 1}))
        })
        .task("b", |_, _| {
            std::thread::sleep(Duration::from_millis(30));
            Ok(json!({"b": 2}))
        });
    runner
        .register_workflow(workflow(
            "pair",
            vec![task("a", &[]), task("b", &["a"])],
            plugin,
        ))
        .expect("registered");
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(
            runner
                .execute_async("pair", json!({}))
                .await
                .expect("starts"),
        );
    }
    // Cut every connection of this tenant, twice, while tasks run.
    let admin = sqlx::PgPool::connect(&db.url)
        .await
        .expect("admin connection");
    let mut cut_in_all = 0;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let cut: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(format!("cloacina_{}", db.tenant))
        .fetch_all(&admin)
        .await
        .expect("terminate");
        // The second cut may find none if the pool has not reconnected yet.
        cut_in_all += cut.len();
    }
    assert!(
        cut_in_all > 0,
        "the runner's connections were found and cut"
    );
    for id in ids {
        let result = tokio::time::timeout(Duration::from_secs(30), runner.wait(id))
            .await
            .expect("finishes")
            .expect("ends");
        assert_eq!(result.status, ExecutionStatus::Completed, "{result:?}");
        assert_eq!(result.final_context.expect("context")["b"], 2);
    }
    runner.shutdown().await;
}

/// Every answer to this tenant's COMMITs is lost (a fail point): each batch
/// lands, and the writer, asking PostgreSQL what became of the transaction
/// (`txid_status`), announces it once instead of applying it again. Every
/// execution completes; each task starts and completes once; the events
/// are numbered 1..n.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_whose_answer_is_lost_are_settled_by_asking_the_database() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    fail::cfg(
        "writer-commit-reply-lost",
        &format!("return({})", db.tenant),
    )
    .expect("the fail point");
    let runner = db.runner().await;
    let plugin = FunctionPlugin::new()
        .task("a", |_, _| Ok(json!({"a": 1})))
        .task("b", |_, _| Ok(json!({"b": 2})))
        .task("c", |_, _| Ok(json!({"c": 3})));
    runner
        .register_workflow(workflow(
            "trio",
            vec![task("a", &[]), task("b", &["a"]), task("c", &["b"])],
            plugin,
        ))
        .expect("registered");
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(
            runner
                .execute_async("trio", json!({}))
                .await
                .expect("a start whose commit answer was lost is still answered"),
        );
    }
    for id in ids {
        let result = tokio::time::timeout(Duration::from_secs(30), runner.wait(id))
            .await
            .expect("finishes")
            .expect("ends");
        assert_eq!(result.status, ExecutionStatus::Completed, "{result:?}");
        assert_eq!(result.final_context.expect("context")["c"], 3);
        let events = runner.events(id, 0).await.expect("events");
        let numbers: Vec<i64> = events.iter().map(|event| event.sequence_num).collect();
        assert_eq!(numbers, (1..=events.len() as i64).collect::<Vec<_>>());
        for name in ["a", "b", "c"] {
            let count = |kind: EventType| {
                events
                    .iter()
                    .filter(|event| {
                        event.event_type == kind && event.task_name.as_deref() == Some(name)
                    })
                    .count()
            };
            assert_eq!(count(EventType::TaskStarted), 1, "{name}: {events:?}");
            assert_eq!(count(EventType::TaskCompleted), 1, "{name}: {events:?}");
        }
    }
    fail::remove("writer-commit-reply-lost");
    runner.shutdown().await;
}

/// A host claims only tasks of workflow versions it has loaded: a host
/// without the package leaves them to one that has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_without_the_workflow_leaves_its_tasks_alone() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let bare = db.runner().await;
    let loaded = db.runner().await;
    let plugin = FunctionPlugin::new().task("only", |_, _| Ok(json!({"ok": true})));
    loaded
        .register_workflow(workflow("only_here", vec![task("only", &[])], plugin))
        .expect("registered");
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let result = loaded.execute("only_here", json!({})).await.expect("runs");
        assert_eq!(result.status, ExecutionStatus::Completed);
        let events = loaded.events(result.execution_id, 0).await.expect("events");
        let host = events
            .iter()
            .find(|e| e.event_type == EventType::TaskStarted)
            .and_then(|e| e.event_data.as_ref())
            .and_then(|d| d["host"].as_str().map(str::to_owned));
        assert_eq!(host.as_deref(), Some(loaded.host_id()));
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "no task waited for a host that cannot run it"
    );
    bare.shutdown().await;
    loaded.shutdown().await;
}

/// Cancelled on one host while its task runs on another: the task's
/// retryable failure does not schedule a retry of a cancelled execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_from_another_host_stops_retries() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let plugin = || {
        FunctionPlugin::new().task("flaky", |_, _| {
            std::thread::sleep(Duration::from_millis(300));
            Err(cloacina_loader::TaskFailure::Retryable("try again".into()))
        })
    };
    let declaration = || {
        let mut flaky = task("flaky", &[]);
        flaky.retry.max_attempts = 5;
        flaky.retry.delay_ms = 10;
        flaky
    };
    let running_host = db.runner().await;
    running_host
        .register_workflow(workflow("flaky", vec![declaration()], plugin()))
        .expect("registered");
    let id = running_host
        .execute_async("flaky", json!({}))
        .await
        .expect("starts");
    assert!(
        crate::support::eventually(Duration::from_secs(5), async || {
            running_host.tasks(id).await.expect("tasks")[0].status == TaskStatus::Running
        })
        .await
    );
    // Registered only now, so it does not take the task itself.
    let cancelling_host = db.runner().await;
    cancelling_host
        .register_workflow(workflow("flaky", vec![declaration()], plugin()))
        .expect("registered");
    assert!(cancelling_host.cancel(id).await.expect("cancels"));
    assert!(
        crate::support::eventually(Duration::from_secs(5), async || {
            running_host.tasks(id).await.expect("tasks")[0].status == TaskStatus::Cancelled
        })
        .await,
        "the running task ended cancelled"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tasks = running_host.tasks(id).await.expect("tasks");
    assert_eq!(
        (tasks[0].status, tasks[0].attempt),
        (TaskStatus::Cancelled, 1)
    );
    let events = running_host.events(id, 0).await.expect("events");
    assert!(
        !events
            .iter()
            .any(|e| e.event_type == EventType::TaskRetryScheduled)
    );
    assert_eq!(
        running_host.status(id).await.expect("status").status,
        ExecutionStatus::Cancelled
    );
    running_host.shutdown().await;
    cancelling_host.shutdown().await;
}

/// A cancel sent to one host stops a task running on another within a
/// second (the cancel's NOTIFY reaches the other host's listener), and no
/// further task starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_sent_to_one_host_stops_a_task_running_on_another() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let stopped_at: Arc<Mutex<Option<std::time::Instant>>> = Arc::default();
    let ran_after = Arc::new(AtomicBool::new(false));
    let mut hosts = Vec::new();
    for index in 0..2 {
        let runner = db.runner().await;
        let stopped_at = stopped_at.clone();
        let ran_after = ran_after.clone();
        let plugin = FunctionPlugin::new()
            .task("wait", move |_, control| {
                // Only the second host may run it: the first holds back
                // until the test is over.
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while !control.should_stop() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if index == 1 {
                    *stopped_at.lock().expect("lock") = Some(std::time::Instant::now());
                }
                Err(TaskFailure::Cancelled)
            })
            .task("after", move |_, _| {
                ran_after.store(true, Ordering::SeqCst);
                Ok(json!({}))
            });
        runner
            .register_workflow(workflow(
                "long",
                vec![task("wait", &[]), task("after", &["wait"])],
                plugin,
            ))
            .expect("registered");
        hosts.push(runner);
    }
    let (first, second) = (&hosts[0], &hosts[1]);
    // Started on the second host, which claims its ready task at once.
    let id = second
        .execute_async("long", json!({}))
        .await
        .expect("starts");
    assert!(
        crate::support::eventually(Duration::from_secs(10), async || {
            first
                .events(id, 0)
                .await
                .expect("events")
                .iter()
                .any(|e| e.event_type == EventType::TaskStarted)
        })
        .await,
        "the task started"
    );
    let started_on = first.events(id, 0).await.expect("events");
    let host = started_on
        .iter()
        .find(|e| e.event_type == EventType::TaskStarted)
        .and_then(|e| e.event_data.as_ref())
        .and_then(|data| data["host"].as_str())
        .map(str::to_owned);
    assert_eq!(
        host.as_deref(),
        Some(second.host_id()),
        "it runs on the second host"
    );
    let asked = std::time::Instant::now();
    assert!(
        first.cancel(id).await.expect("cancels"),
        "the first host cancels it"
    );
    assert!(
        crate::support::eventually(Duration::from_secs(5), async || {
            stopped_at.lock().expect("lock").is_some()
        })
        .await,
        "the task on the second host stopped"
    );
    let stopped = stopped_at.lock().expect("lock").expect("stopped");
    assert!(
        stopped.duration_since(asked) < Duration::from_secs(1),
        "stopped {:?} after the cancel",
        stopped.duration_since(asked)
    );
    let result = second.wait(id).await.expect("ends");
    assert_eq!(result.status, ExecutionStatus::Cancelled);
    let events = first.events(id, 0).await.expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.event_type == EventType::WorkflowCancelled)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !ran_after.load(Ordering::SeqCst),
        "no task started after the cancel"
    );
    for host in &hosts {
        host.shutdown().await;
    }
}

/// A follower on one host streams an execution another host runs, every
/// event in order, as the other host commits them (its NOTIFY wakes the
/// follower: nothing polls). Prints the latency from each event's commit
/// to its arrival.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_on_one_host_streams_an_execution_run_on_another() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let running = db.runner().await;
    let following = db.runner().await;
    let steps: Vec<_> = (0..6)
        .map(|i| {
            let needs: Vec<String> = if i == 0 {
                Vec::new()
            } else {
                vec![format!("s{}", i - 1)]
            };
            (format!("s{i}"), needs)
        })
        .collect();
    let plugin = steps
        .iter()
        .fold(FunctionPlugin::new(), |plugin, (name, _)| {
            plugin.task(name, |_, _| {
                std::thread::sleep(Duration::from_millis(30));
                Ok(json!({}))
            })
        });
    let tasks = steps
        .iter()
        .map(|(name, needs)| {
            let needs: Vec<&str> = needs.iter().map(String::as_str).collect();
            task(name, &needs)
        })
        .collect();
    // Only the first host has the workflow: it runs every task.
    running
        .register_workflow(workflow("chain", tasks, plugin))
        .expect("registered");
    let id = running
        .execute_async("chain", json!({}))
        .await
        .expect("starts");
    let mut follower = following.follow(id, 0);
    let mut received = Vec::new();
    let mut latencies = Vec::new();
    let deadline = Duration::from_secs(30);
    while let Some(event) = tokio::time::timeout(deadline, follower.next())
        .await
        .expect("the next event in time")
        .expect("read")
    {
        latencies.push(cloacina_runtime::clock::now_ms() - event.created_at_ms);
        received.push(event);
    }
    let committed = running.events(id, 0).await.expect("events");
    assert_eq!(received, committed, "every event, in order");
    assert!(received.last().is_some_and(|e| e.event_type.is_terminal()));
    // The first events may predate the follower; the rest arrived live.
    let mut live: Vec<i64> = latencies.iter().skip(2).copied().collect();
    live.sort_unstable();
    println!(
        "cross-host follower: {} events, latency p50 {} ms, max {} ms",
        received.len(),
        live.get(live.len() / 2).copied().unwrap_or(0),
        live.last().copied().unwrap_or(0)
    );
    running.shutdown().await;
    following.shutdown().await;
}
