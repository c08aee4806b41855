//! `cloacinactl run`: packages verified, loaded and run on the embedded
//! runtime; failures exit 7; a run killed with SIGKILL is resumed on the
//! same database without rerunning its completed tasks.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cloacina_tests::{
    cloacinactl, cloacinactl_path, drop_schema, postgres_url, sample_crate, scratch, unique_schema,
};

use crate::packaging::path;

/// Packs `sample` (signed) into `dir/NAME.cloacina`.
fn pack(dir: &Path, sample: &str, target: &str) -> String {
    if !dir.join("keys/author.key").is_file() {
        cloacinactl(dir, &["key", "generate", "author", "--out", "keys"]).success();
    }
    let file = format!("{sample}.cloacina");
    cloacinactl(
        dir,
        &[
            "pack",
            path(&sample_crate(sample)),
            "--target",
            target,
            "--sign",
            "keys/author.key",
            "-o",
            &file,
        ],
    )
    .success();
    file
}

#[test]
fn a_package_runs_natively_and_as_webassembly_with_the_same_result() {
    let dir = scratch();
    let file = pack(dir.path(), "etl", "all");
    let trusted = ["--trusted-key", "keys/author.pub"];
    let context = r#"{"input": [1, 2, 3, 4]}"#;
    let mut contexts = Vec::new();
    for prefer in ["native", "wasm"] {
        let mut args = vec![
            "--json",
            "run",
            &file,
            "etl",
            "--context",
            context,
            "--prefer",
            prefer,
        ];
        args.extend(trusted);
        let report = cloacinactl(dir.path(), &args).success().json();
        assert_eq!(report["status"], "completed", "{report}");
        assert_eq!(report["artifact"], prefer);
        assert_eq!(report["final_context"]["total"], 20);
        let types: Vec<&str> = report["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["event_type"].as_str())
            .collect();
        assert_eq!(types.first(), Some(&"workflow_started"));
        assert_eq!(types.last(), Some(&"workflow_completed"));
        contexts.push(report["final_context"].clone());
    }
    assert_eq!(contexts[0], contexts[1]);

    // People see each event, then the final context.
    let mut args = vec!["run", &file];
    args.extend(trusted);
    let shown = cloacinactl(dir.path(), &args).success();
    for line in ["completed in", "\"total\": 110"] {
        assert!(shown.stdout.contains(line), "missing `{line}`:\n{shown}");
    }
    for task in ["extract", "transform", "load"] {
        assert!(
            shown
                .stdout
                .lines()
                .any(|l| l
                    .split_whitespace()
                    .skip(1)
                    .eq(["task_completed", task, "attempt=1"])),
            "no completion line for {task}:\n{shown}"
        );
    }
    // Verification comes first: an untrusted signer is refused (exit 3).
    cloacinactl(dir.path(), &["run", &file]).failure(3, "verification failed");
    // Bad arguments are usage errors (exit 2).
    let mut args = vec!["run", &file, "--context", "[1]"];
    args.extend(trusted);
    cloacinactl(dir.path(), &args).failure(2, "must be a JSON object");
    let mut args = vec!["run", &file, "nope"];
    args.extend(trusted);
    cloacinactl(dir.path(), &args).failure(2, "no workflow `nope`");
}

#[test]
fn failing_and_retrying_workflows_report_their_outcome() {
    let dir = scratch();
    let retry = pack(dir.path(), "retry", "native");
    let report = cloacinactl(
        dir.path(),
        &["--json", "run", &retry, "--trusted-key", "keys/author.pub"],
    )
    .success()
    .json();
    let retries = report["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event_type"] == "task_retry_scheduled")
        .count();
    assert_eq!(retries, 2, "{report}");

    let panic = pack(dir.path(), "panic", "native");
    let failed = cloacinactl(
        dir.path(),
        &["run", &panic, "panic", "--trusted-key", "keys/author.pub"],
    )
    .failure(7, "workflow panic failed");
    assert!(
        failed.stderr.contains("explode"),
        "the failing task is named:\n{failed}"
    );
    assert!(failed.stdout.contains("task_failed"), "{failed}");

    // A task that aborts its process: isolated, it fails alone (exit 7);
    // in process, it takes the run down with it.
    let isolated = cloacinactl(
        dir.path(),
        &[
            "run",
            &panic,
            "crash",
            "--isolate",
            "--trusted-key",
            "keys/author.pub",
        ],
    )
    .failure(7, "workflow crash failed");
    assert!(isolated.stdout.contains("task_failed"), "{isolated}");
    let in_process = cloacinactl(
        dir.path(),
        &["run", &panic, "crash", "--trusted-key", "keys/author.pub"],
    );
    assert_eq!(in_process.code, None, "killed by SIGABRT:\n{in_process}");

    // A task past its timeout is stopped: cooperatively in the native
    // library, by epoch interruption in the WebAssembly sandbox.
    let timeout = pack(dir.path(), "timeout", "all");
    for prefer in ["native", "wasm"] {
        let started = Instant::now();
        cloacinactl(
            dir.path(),
            &[
                "run",
                &timeout,
                "--prefer",
                prefer,
                "--trusted-key",
                "keys/author.pub",
            ],
        )
        .failure(7, "timed out after 200 ms");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{prefer}: stopped at its deadline"
        );
    }
}

#[test]
fn a_run_killed_mid_task_is_resumed_without_rerunning_completed_tasks() {
    let dir = scratch();
    let database = format!(
        "sqlite://{}",
        dir.path().join("state/cloacina.db").display()
    );
    killed_and_resumed(dir, &database, &[]);
}

#[test]
fn a_run_killed_mid_task_on_postgresql_is_taken_over_once_its_lease_expires() {
    let Some(url) = postgres_url() else { return };
    let tenant = unique_schema("e2e");
    killed_and_resumed(scratch(), &url, &["--tenant", &tenant, "--lease-ttl", "1"]);
    drop_schema(&url, &tenant);
}

/// Runs the ETL sample, kills the process with SIGKILL while `transform`
/// runs, and resumes the execution from another process.
fn killed_and_resumed(dir: tempfile::TempDir, database: &str, extra: &[&str]) {
    let file = pack(dir.path(), "etl", "native");
    let marker = dir.path().join("paused");
    let context = serde_json::json!({ "pause_marker": marker }).to_string();

    // First run: `transform` creates the marker and sleeps; kill -9 then.
    let mut child = Command::new(cloacinactl_path())
        .args([
            "run",
            &file,
            "--trusted-key",
            "keys/author.pub",
            "--database-url",
            database,
            "--context",
            &context,
        ])
        .args(extra)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().expect("stdout");
    let mut execution = None;
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(id) = line.split("execution ").nth(1) {
            execution = Some(id.trim().to_owned());
        }
        if line.contains("task_started") && line.contains("transform") {
            break;
        }
    }
    let execution = execution.expect("the run printed its execution id");
    while !marker.exists() {
        assert!(Instant::now() < deadline, "transform never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    // Second run on the same database finishes that execution.
    let mut args = vec![
        "--json",
        "run",
        &file,
        "--trusted-key",
        "keys/author.pub",
        "--database-url",
        database,
        "--resume",
        &execution,
    ];
    args.extend(extra);
    let report = cloacinactl(dir.path(), &args).success().json();
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(report["final_context"]["total"], 110);
    let events = report["events"].as_array().expect("events");
    let started = |task: &str| {
        events
            .iter()
            .filter(|e| e["event_type"] == "task_started" && e["task_name"] == task)
            .count()
    };
    assert_eq!(
        started("extract"),
        1,
        "the completed task did not run again"
    );
    assert_eq!(
        started("transform"),
        2,
        "the interrupted task ran again (at-least-once)"
    );
    assert_eq!(started("load"), 1);
    assert!(
        events
            .iter()
            .any(|e| e["event_type"] == "task_lease_expired" && e["task_name"] == "transform")
    );
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
        .block_on(future)
}

#[test]
fn two_host_processes_share_one_postgresql_and_run_each_task_once() {
    let Some(url) = postgres_url() else { return };
    let dir = scratch();
    let file = pack(dir.path(), "fan-out", "native");
    let tenant = unique_schema("e2e");
    let common = [
        "--trusted-key",
        "keys/author.pub",
        "--database-url",
        &url,
        "--tenant",
        &tenant,
        "--max-concurrent-tasks",
        "1",
    ];

    // Host A starts the execution; every task takes 400 ms.
    let first = Command::new(cloacinactl_path())
        .args([
            "--json",
            "run",
            &file,
            "--context",
            r#"{"work_ms": 400, "base": 2}"#,
        ])
        .args(common)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawns");
    // Find the execution in the database as soon as it exists.
    let execution: String = block_on(async {
        let pool = sqlx::PgPool::connect(&url).await.expect("connects");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found: Result<Option<String>, _> =
                sqlx::query_scalar(&format!("SELECT id FROM \"{tenant}\".executions LIMIT 1"))
                    .fetch_optional(&pool)
                    .await;
            if let Ok(Some(id)) = found {
                break id;
            }
            assert!(
                Instant::now() < deadline,
                "host A never started its execution"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    // Host B joins the same execution.
    let second = cloacinactl(
        dir.path(),
        &[
            &["--json", "run", &file, "--resume", &execution][..],
            &common[..],
        ]
        .concat(),
    )
    .success()
    .json();
    let first = first.wait_with_output().expect("host A ends");
    assert!(first.status.success(), "host A failed");
    let first: serde_json::Value = serde_json::from_slice(&first.stdout).expect("JSON");
    drop_schema(&url, &tenant);

    for report in [&first, &second] {
        assert_eq!(report["status"], "completed", "{report}");
        assert_eq!(report["final_context"]["sum"], 2 * (2 + 3 + 5));
    }
    let events = first["events"].as_array().expect("events");
    let mut hosts = std::collections::BTreeSet::new();
    for task in ["split", "worker_a", "worker_b", "worker_c", "gather"] {
        let starts: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["event_type"] == "task_started" && e["task_name"] == task)
            .collect();
        assert_eq!(starts.len(), 1, "{task} ran once: {events:?}");
        hosts.insert(
            starts[0]["event_data"]["host"]
                .as_str()
                .expect("host")
                .to_owned(),
        );
    }
    assert_eq!(hosts.len(), 2, "both host processes ran tasks");
}

/// A task that never looks at its deadline (a spin loop): `run` still ends
/// with exit 7 at the deadline, natively in process (the thread is left
/// behind, and `run` says so) and in the WebAssembly sandbox (the epoch
/// interrupts the guest); the sample is built as an author would build it.
#[test]
fn a_task_that_ignores_its_deadline_does_not_hang_run() {
    let crate_dir = cloacina_tests::scratch_plugin(
        "use cloacina_plugin::{Context, TaskResult, json, task};\n\
         #[task(timeout_ms = 300)]\n\
         fn spin(_ctx: &Context) -> TaskResult {\n\
             let mut n: u64 = 0;\n\
             loop { n = std::hint::black_box(n.wrapping_add(1)); if n == u64::MAX { break; } }\n\
             Ok(json!({ \"n\": n }))\n\
         }\n\
         #[task]\n\
         fn forever(_ctx: &Context) -> TaskResult {\n\
             let mut n: u64 = 0;\n\
             loop { n = std::hint::black_box(n.wrapping_add(1)); if n == u64::MAX { break; } }\n\
             Ok(json!({ \"n\": n }))\n\
         }\n\
         cloacina_plugin::plugin! { tasks: [spin, forever], workflows: [\n\
             cloacina_plugin::workflow(\"spin\").tasks([\"spin\"]),\n\
             cloacina_plugin::workflow(\"forever\").tasks([\"forever\"]),\n\
         ] }\n",
    );
    let dir = crate_dir.path();
    cloacinactl(
        dir,
        &["pack", ".", "--target", "all", "-o", "spin.cloacina"],
    )
    .success();
    for prefer in ["native", "wasm"] {
        let started = Instant::now();
        let mut child = Command::new(cloacinactl_path())
            .args([
                "run",
                "spin.cloacina",
                "spin",
                "--allow-unsigned",
                "--prefer",
                prefer,
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let status = loop {
            if let Some(status) = child.try_wait().expect("waits") {
                break Some(status);
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        let status = status.unwrap_or_else(|| panic!("{prefer}: `run` never exited:\n{stderr}"));
        assert_eq!(status.code(), Some(7), "{prefer}:\n{stderr}");
        assert!(
            stderr.contains("timed out after 300 ms"),
            "{prefer}:\n{stderr}"
        );
        if prefer == "native" {
            assert!(
                stderr.contains("--isolate"),
                "the way out is named:\n{stderr}"
            );
        }
    }

    // No deadline at all: Ctrl-C cancels, a second Ctrl-C quits at once.
    let mut child = Command::new(cloacinactl_path())
        .args(["run", "spin.cloacina", "forever", "--allow-unsigned"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // Interrupt once the task runs.
    for line in lines.by_ref() {
        if line.expect("line").contains("task_started") {
            break;
        }
    }
    let pid = child.id().to_string();
    let interrupt = || {
        let status = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    };
    interrupt();
    std::thread::sleep(Duration::from_millis(500));
    interrupt();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "`run` ignored Ctrl-C twice"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        matches!(status.code(), Some(7 | 130)),
        "cancelled (7) or quit (130): {status:?}"
    );
}

/// `ctx.log` lines reach people: `run` prints them with their task and
/// attempt, natively, in a worker process and in the WebAssembly sandbox
/// alike; `--no-logs` hides them; `--json` keeps them as `task_log` events.
#[test]
fn task_logs_are_shown_from_every_kind_of_artifact() {
    let dir = scratch();
    let file = pack(dir.path(), "etl", "all");
    let context = r#"{"input": [1, 2, 3]}"#;
    for how in [
        &["--prefer", "native"][..],
        &["--prefer", "wasm"],
        &["--isolate"],
    ] {
        let args = [
            &[
                "run",
                file.as_str(),
                "--trusted-key",
                "keys/author.pub",
                "--context",
                context,
            ][..],
            how,
        ]
        .concat();
        let shown = cloacinactl(dir.path(), &args).success();
        assert!(
            shown.stdout.contains("[extract#1] extracted 3 numbers"),
            "{how:?}: {shown}"
        );
    }
    let quiet = cloacinactl(
        dir.path(),
        &[
            "run",
            &file,
            "--trusted-key",
            "keys/author.pub",
            "--context",
            context,
            "--no-logs",
        ],
    )
    .success();
    assert!(!quiet.stdout.contains("extracted"), "{quiet}");
    let report = cloacinactl(
        dir.path(),
        &[
            "--json",
            "run",
            &file,
            "--trusted-key",
            "keys/author.pub",
            "--context",
            context,
        ],
    )
    .success()
    .json();
    let logged: Vec<&serde_json::Value> = report["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["event_type"] == "task_log")
        .collect();
    assert_eq!(logged.len(), 1, "{report}");
    assert_eq!(logged[0]["task_name"], "extract");
    assert_eq!(logged[0]["event_data"]["message"], "extracted 3 numbers");
    assert_eq!(logged[0]["event_data"]["attempt"], 1);
}
