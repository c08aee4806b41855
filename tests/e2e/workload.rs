//! What the reliability suites (crashes, faults, soak) share: the shapes
//! of work they submit, and how they wait for it and check it came out as
//! it would have without the fault.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use cloacina_client::{Client, ClientError, ExecutionQuery};
use cloacina_tests::{ServerProcess, cloacinactl_path};
use serde_json::{Value, json};

/// `cloacinactl server start` on `url` with `home` as its home and `key`
/// as its bootstrap key, native plugins in worker processes (its
/// default), and the `extra` flags.
pub(crate) fn start_server(home: &Path, url: &str, key: &str, extra: &[&str]) -> ServerProcess {
    let args = [&["server", "start", "--database-url", url][..], extra].concat();
    ServerProcess::start_with(&cloacinactl_path(), &args, home, key, false)
}

/// The longest wait for every execution to end once the fault has passed.
const SETTLE: Duration = Duration::from_secs(180);

/// What an execution was given, so that its outcome can be checked.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    Chain { tag: u64 },
    FanOut { base: i64 },
    Etl { input: Vec<i64> },
}

impl Shape {
    pub(crate) fn workflow(&self) -> &'static str {
        match self {
            Shape::Chain { .. } => "chain10",
            Shape::FanOut { .. } => "fan_out",
            Shape::Etl { .. } => "etl",
        }
    }

    pub(crate) fn tasks(&self) -> &'static [&'static str] {
        match self {
            Shape::Chain { .. } => &["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"],
            Shape::FanOut { .. } => &["split", "worker_a", "worker_b", "worker_c", "gather"],
            Shape::Etl { .. } => &["extract", "transform", "load"],
        }
    }

    pub(crate) fn input(&self) -> Value {
        match self {
            Shape::Chain { tag } => json!({ "tag": tag }),
            // Tasks that take a while, so that kills land inside calls.
            Shape::FanOut { base } => json!({ "base": base, "work_ms": 40 }),
            Shape::Etl { input } => json!({ "input": input }),
        }
    }

    /// What the final context must hold.
    pub(crate) fn check(&self, context: &Value) -> Result<(), String> {
        let (key, expected) = match self {
            Shape::Chain { tag } => ("tag", json!(tag)),
            Shape::FanOut { base } => ("sum", json!(base * 10)),
            Shape::Etl { input } => ("total", json!(input.iter().sum::<i64>() * 2)),
        };
        if context[key] == expected {
            Ok(())
        } else {
            Err(format!("`{key}` should be {expected}: {context}"))
        }
    }
}

/// Waits until every workflow in `names` is loaded.
pub(crate) fn wait_loaded(client: &Client, names: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for name in names {
        loop {
            match client.workflow(name) {
                Ok(detail) if detail.build_status == "loaded" => break,
                Ok(detail) if detail.build_status == "failed" => {
                    panic!("{name} failed to load: {:?}", detail.build_error)
                }
                Ok(_) | Err(ClientError::Refused { status: 404, .. }) => {}
                Err(error) => panic!("reading workflow {name}: {error}"),
            }
            assert!(Instant::now() < deadline, "{name} was not loaded in time");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Every execution's status once none is pending or running.
pub(crate) fn wait_all_ended(client: &Client) -> BTreeMap<String, String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut all = BTreeMap::new();
        let mut offset = 0;
        loop {
            let page = client
                .executions(&ExecutionQuery {
                    limit: 500,
                    offset,
                    ..ExecutionQuery::default()
                })
                .expect("the executions list");
            let got = page.items.len();
            for item in page.items {
                all.insert(item.id, item.status.to_ascii_lowercase());
            }
            offset += got as u32;
            if got == 0 || all.len() as u64 >= page.total {
                break;
            }
        }
        let running: Vec<_> = all
            .iter()
            .filter(|(_, status)| matches!(status.as_str(), "pending" | "running"))
            .collect();
        if running.is_empty() {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "{} executions still unfinished after {SETTLE:?}: {running:?}",
            running.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Checks one execution's outcome and events; how many task runs a kill
/// interrupted and that ran again.
pub(crate) fn check_execution(client: &Client, id: &str, shape: &Shape) -> Result<usize, String> {
    let detail = client.execution(id).map_err(|error| error.to_string())?;
    if !detail.status.eq_ignore_ascii_case("completed") {
        return Err(format!("ended {}", detail.status));
    }
    shape.check(&detail.final_context.unwrap_or(Value::Null))?;
    let events = client.events(id).map_err(|error| error.to_string())?.events;
    // Numbered from 1, with no gap and no repeat, in order.
    let sequence: Vec<i64> = events.iter().map(|event| event.sequence_num).collect();
    let dense: Vec<i64> = (1..=sequence.len() as i64).collect();
    if sequence != dense {
        return Err(format!(
            "event sequence not dense, ordered and from 1: {sequence:?}"
        ));
    }
    let mut again = 0;
    for task in shape.tasks() {
        let of_task = events
            .iter()
            .filter(|event| event.task_name.as_deref() == Some(task));
        let mut completed = 0;
        let mut started: usize = 0;
        for event in of_task {
            match event.event_type.as_str() {
                "task_completed" => completed += 1,
                "task_started" if completed > 0 => {
                    return Err(format!("{task} started again after it completed"));
                }
                "task_started" => started += 1,
                _ => {}
            }
        }
        if completed != 1 {
            return Err(format!("{task} completed {completed} times"));
        }
        again += started.saturating_sub(1);
    }
    Ok(again)
}
