//! `cloacinactl run`: packages verified, loaded and run on the embedded
//! runtime; failures exit 7; a run killed with SIGKILL is resumed on the
//! same database without rerunning its completed tasks.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cloacina_tests::{cloacinactl, cloacinactl_path, sample_crate, scratch};

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
        &["run", &panic, "--trusted-key", "keys/author.pub"],
    )
    .failure(7, "workflow panic failed");
    assert!(
        failed.stderr.contains("explode"),
        "the failing task is named:\n{failed}"
    );
    assert!(failed.stdout.contains("task_failed"), "{failed}");
}

#[test]
fn a_run_killed_mid_task_is_resumed_without_rerunning_completed_tasks() {
    let dir = scratch();
    let file = pack(dir.path(), "etl", "native");
    let database = format!(
        "sqlite://{}",
        dir.path().join("state/cloacina.db").display()
    );
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
            &database,
            "--context",
            &context,
        ])
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
    let report = cloacinactl(
        dir.path(),
        &[
            "--json",
            "run",
            &file,
            "--trusted-key",
            "keys/author.pub",
            "--database-url",
            &database,
            "--resume",
            &execution,
        ],
    )
    .success()
    .json();
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
