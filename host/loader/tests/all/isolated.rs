//! Native plugins in worker processes: same results as in process, and the
//! three things only a process boundary gives: surviving a crash, killing a
//! task that ignores its deadline, and unloading.

use std::path::Path;
use std::time::{Duration, Instant};

use cloacina_loader::isolated::IsolatedPlugin;
use cloacina_loader::{CallControl, Plugin, TaskFailure};
use cloacina_tests::sample_library;
use serde_json::json;

fn worker() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cloacina-plugin-worker"))
}

fn load(name: &str) -> IsolatedPlugin {
    IsolatedPlugin::load(worker(), sample_library(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn etl_gives_the_same_results_in_a_worker() {
    let etl = load("etl");
    assert_eq!(etl.declaration().tasks.len(), 3);
    let raw = etl
        .call(
            "extract",
            &json!({ "input": [1, 2] }).to_string(),
            &CallControl::new(),
        )
        .expect("extract");
    assert_eq!(raw, r#"{"raw":[1,2]}"#);
    let retry = load("retry");
    assert!(matches!(
        retry.call("flaky", "{}", &CallControl::new().attempt_number(1)),
        Err(TaskFailure::Retryable(_))
    ));
}

#[test]
fn a_crashing_plugin_takes_only_its_worker_down() {
    let panic = load("panic");
    let first_pid = panic.worker_pid().expect("a worker runs");
    let error = panic
        .call("crash", "{}", &CallControl::new())
        .expect_err("crashed");
    assert!(
        matches!(&error, TaskFailure::Fatal(message) if message.contains("died")),
        "{error:?}"
    );
    // The next call gets a fresh worker.
    let error = panic
        .call(
            "explode",
            r#"{"reason":"after the crash"}"#,
            &CallControl::new(),
        )
        .expect_err("panics");
    assert!(
        matches!(&error, TaskFailure::Fatal(m) if m.contains("after the crash")),
        "{error:?}"
    );
    assert_ne!(panic.worker_pid(), Some(first_pid));
}

#[test]
fn a_task_that_ignores_its_deadline_is_killed() {
    let crate_dir = cloacina_tests::scratch_plugin(
        "use cloacina_plugin::{Context, TaskResult, task};\n\
         #[task]\nfn stubborn(_ctx: &Context) -> TaskResult {\n\
         let mut n = 0u64; loop { n = std::hint::black_box(n + 1); }\n}\n\
         cloacina_plugin::plugin! { tasks: [stubborn] }\n",
    );
    let library = cloacina_tests::build_library(crate_dir.path());
    let stubborn = IsolatedPlugin::load(worker(), &library).expect("loads");
    let pid = stubborn.worker_pid().expect("worker");
    let started = Instant::now();
    let error = stubborn
        .call(
            "stubborn",
            "{}",
            &CallControl::with_timeout(Duration::from_millis(100)),
        )
        .expect_err("killed");
    assert_eq!(error, TaskFailure::TimedOut(100));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the worker was killed"
    );
}

#[test]
fn dropping_the_plugin_unloads_it() {
    let etl = load("etl");
    let pid = etl.worker_pid().expect("worker");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(etl);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "worker {pid} still runs"
    );
}

#[test]
fn calls_at_once_run_in_separate_workers_of_the_pool() {
    let crate_dir = cloacina_tests::scratch_plugin(
        "use cloacina_plugin::{Context, TaskResult, json, task};\n\
         #[task]\nfn whoami(_ctx: &Context) -> TaskResult {\n\
         std::thread::sleep(std::time::Duration::from_millis(500));\n\
         Ok(json!({ \"pid\": std::process::id() }))\n}\n\
         cloacina_plugin::plugin! { tasks: [whoami] }\n",
    );
    let library = cloacina_tests::build_library(crate_dir.path());
    let pids_of_two_calls_at_once = |plugin: &IsolatedPlugin| {
        let barrier = std::sync::Barrier::new(2);
        let pids: Vec<String> = std::thread::scope(|scope| {
            let calls: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        plugin
                            .call("whoami", "{}", &CallControl::new())
                            .expect("whoami")
                    })
                })
                .collect();
            calls
                .into_iter()
                .map(|call| call.join().expect("the calling thread"))
                .collect()
        });
        pids
    };
    let pool = IsolatedPlugin::load_with_workers(worker(), &library, 2).expect("loads");
    assert_eq!(pool.workers(), 2);
    let pids = pids_of_two_calls_at_once(&pool);
    assert_ne!(pids[0], pids[1], "two workers ran the two calls: {pids:?}");

    let single = IsolatedPlugin::load_with_workers(worker(), &library, 1).expect("loads");
    let pids = pids_of_two_calls_at_once(&single);
    assert_eq!(
        pids[0], pids[1],
        "one worker ran both calls in turn: {pids:?}"
    );

    // A call waiting for a busy worker gives up at its deadline instead of
    // starting late.
    std::thread::scope(|scope| {
        let busy = scope.spawn(|| single.call("whoami", "{}", &CallControl::new()));
        std::thread::sleep(Duration::from_millis(100));
        let waited = Instant::now();
        let late = single.call(
            "whoami",
            "{}",
            &CallControl::with_timeout(Duration::from_millis(50)),
        );
        assert_eq!(late, Err(TaskFailure::TimedOut(50)));
        assert!(
            waited.elapsed() < Duration::from_millis(350),
            "the waiting call returned before the busy one ended"
        );
        assert!(
            busy.join().expect("the busy call").is_ok(),
            "the busy call was not disturbed"
        );
    });
}
