//! `cloacinactl server start` with a drop directory: a signed package
//! dropped in is registered, loaded and run by its cron schedule; a host
//! killed right after registering converges when started again; SIGTERM
//! stops it cleanly. `tls`: HTTPS, trusted by the CLI, renewed on SIGHUP.

mod tls;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cloacina_tests::{cloacinactl, cloacinactl_path, sample_crate, scratch};

use crate::packaging::path;

/// A running `cloacinactl server start` whose log lines arrive on a
/// channel.
pub(crate) struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        Server::start_with(dir, &["--watch-dir", "drop", "--require-signatures"])
    }

    pub(crate) fn start_with(dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(cloacinactl_path())
            .args(["server", "start", "--home", "host"])
            .args(["--bind", "127.0.0.1:0"])
            .args(extra)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("CLOACINA_LOG", "info,sqlx=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Server {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The HTTP address it serves, from its log.
    pub(crate) fn url(&mut self) -> String {
        let line = self.expect(&["serving the HTTP API"]);
        let address = line.split("addr=").nth(1).expect("an address").trim();
        format!("http://{address}")
    }

    /// SIGTERM, then the exit status.
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        self.expect(&["stopped"]);
        self.child.wait().expect("exits")
    }

    /// SIGKILL: no chance to save or say anything.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for a log line containing every one of `words`.
    pub(crate) fn expect(&mut self, words: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if words.iter().all(|word| line.contains(word)) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with {words:?} in time; the log:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory with `SAMPLE.cloacina` signed by `keys/author`,
/// whom the host in `host/` trusts.
pub(crate) fn signed_and_trusted(sample: &str) -> tempfile::TempDir {
    let dir = scratch();
    cloacinactl(dir.path(), &["key", "generate", "author", "--out", "keys"]).success();
    pack_signed(dir.path(), sample);
    cloacinactl(
        dir.path(),
        &["trust", "add", "keys/author.pub", "--home", "host"],
    )
    .success();
    dir
}

/// Packs sample `SAMPLE` into `DIR/SAMPLE.cloacina`, signed by
/// `DIR/keys/author.key`.
pub(crate) fn pack_signed(dir: &Path, sample: &str) {
    let crate_dir = sample_crate(sample);
    let file = format!("{sample}.cloacina");
    cloacinactl(
        dir,
        &[
            "pack",
            path(&crate_dir),
            "--sign",
            "keys/author.key",
            "-o",
            &file,
        ],
    )
    .success();
}

/// The god-mode key a server started in `DIR/host` wrote on first start.
pub(crate) fn bootstrap_key(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("host/bootstrap-key"))
        .expect("bootstrap key")
        .trim()
        .to_owned()
}

#[test]
fn a_dropped_package_runs_and_a_killed_host_converges_on_restart() {
    let dir = signed_and_trusted("cron");

    // Dropped in by a rename, as careful writers do; the host is killed
    // (SIGKILL) the moment it has registered the package, before or while
    // it loads it.
    let mut server = Server::start(dir.path());
    server.expect(&["host running"]);
    std::fs::create_dir_all(dir.path().join("drop")).expect("drop dir");
    std::fs::copy(
        dir.path().join("cron.cloacina"),
        dir.path().join("drop/.cron.partial"),
    )
    .expect("copy");
    std::fs::rename(
        dir.path().join("drop/.cron.partial"),
        dir.path().join("drop/cron.cloacina"),
    )
    .expect("rename");
    server.expect(&["dropped package registered", "cron.cloacina"]);
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();

    // Started again: the registry still holds the package exactly once,
    // the host loads it, and the schedule (every 5 s) runs the workflow.
    let mut server = Server::start(dir.path());
    server.expect(&["package loaded", "cron@0.1.0"]);
    server.expect(&["execution started", "workflow=cron"]);
    server.expect(&["task completed", "tick"]);
    server.expect(&["execution completed"]);

    // SIGTERM: a clean stop, exit 0.
    let exit = server.terminate();
    assert!(exit.success(), "{exit:?}");
    assert!(
        !dir.path().join("drop/.rejected").exists(),
        "nothing was rejected"
    );
}

/// The client commands against a real server: upload a signed package,
/// see it load, run it with --follow, list and show executions, manage
/// tenants and keys; exit codes follow the server's answers.
#[test]
fn the_client_commands_drive_a_server() {
    let dir = signed_and_trusted("etl");
    let mut server = Server::start_with(dir.path(), &["--in-process"]);
    let url = server.url();
    let key = bootstrap_key(dir.path());
    let remote = |args: &[&str]| {
        cloacinactl(
            dir.path(),
            &[args, &["--server", &url, "--api-key", &key]].concat(),
        )
    };

    let uploaded = remote(&["--json", "package", "upload", "etl.cloacina"])
        .success()
        .json();
    assert_eq!(uploaded["package_name"], "etl");
    wait_loaded(&remote, "etl");
    let followed = remote(&[
        "workflow",
        "run",
        "etl",
        "--context",
        r#"{"input": [1, 2, 3]}"#,
        "--follow",
    ])
    .success();
    assert!(followed.stdout.contains("workflow_completed"), "{followed}");
    // It ends with the final context, and shows the task's log line.
    assert!(
        followed.stdout.contains("completed on etl 0.1.0")
            && followed.stdout.contains("\"total\": 12"),
        "{followed}"
    );
    assert!(
        followed.stdout.contains("[extract#1] extracted 3 numbers"),
        "{followed}"
    );
    // Versions are visible: the live one marked, executions name theirs.
    let packages = remote(&["package", "list"]).success();
    assert!(
        packages.stdout.contains("0.1.0 *")
            && packages.stdout.contains("extract -> transform -> load"),
        "{packages}"
    );
    remote(&["workflow", "run", "etl", "--version", "9.9.9"]).failure(2, "etl version 9.9.9");
    remote(&[
        "workflow",
        "run",
        "etl",
        "--version",
        "0.1.0",
        "--context",
        r#"{"input": [1, 2, 3]}"#,
        "--follow",
    ])
    .success();
    assert!(
        followed.stdout.contains("task_completed load"),
        "{followed}"
    );
    let listed = remote(&["--json", "execution", "list"]).success().json();
    assert_eq!(listed["total"], 2);
    assert_eq!(listed["items"][0]["package_version"], "0.1.0");
    let id = listed["items"][0]["id"].as_str().expect("id").to_owned();
    let shown = remote(&["--json", "execution", "show", &id])
        .success()
        .json();
    assert_eq!(shown["status"], "Completed");
    assert_eq!(shown["final_context"]["total"], 12);
    let logs = remote(&["execution", "logs", &id]).success();
    assert_eq!(
        logs.stdout.trim(),
        "[extract#1] extracted 3 numbers",
        "{logs}"
    );
    assert_eq!(shown["tasks"].as_array().map(Vec::len), Some(3));
    // Cancelling an ended execution changes nothing, and says so.
    let cancelled = remote(&["execution", "cancel", &id]).success();
    assert!(
        cancelled.stdout.contains("had already ended: Completed"),
        "{cancelled}"
    );
    let cancelled = remote(&["--json", "execution", "cancel", &id])
        .success()
        .json();
    assert_eq!(cancelled["cancelled"], false);

    remote(&["tenant", "create", "acme"]).success();
    assert!(
        remote(&["tenant", "list"])
            .success()
            .stdout
            .contains("acme")
    );
    let created = remote(&[
        "--json",
        "api-key",
        "create",
        "ci",
        "--role",
        "read",
        "--for-tenant",
        "acme",
    ])
    .success()
    .json();
    let reader_key = created["key"].as_str().expect("key").to_owned();
    let as_reader = |args: &[&str]| {
        cloacinactl(
            dir.path(),
            &[
                args,
                &[
                    "--server",
                    &url,
                    "--api-key",
                    &reader_key,
                    "--tenant",
                    "acme",
                ],
            ]
            .concat(),
        )
    };
    as_reader(&["package", "list"]).success();
    as_reader(&["workflow", "run", "etl"]).failure(10, "403");
    remote(&["api-key", "revoke", created["id"].as_str().expect("id")]).success();
    as_reader(&["package", "list"]).failure(10, "401");
    remote(&["workflow", "show", "nope"]).failure(11, "workflow_not_found");
    remote(&["tenant", "remove", "acme"]).success();
    remote(&["package", "delete", "etl", "0.1.0"]).success();
    remote(&["workflow", "run", "etl"]).failure(2, "execution_failed");

    // Every change above is in the audit log, newest first, with the key
    // that made it and where from; the trust store change made on the
    // host before it started is the local user's, with no key or address.
    let audit = remote(&["--json", "audit"]).success().json();
    let items = audit["items"].as_array().expect("items");
    let actions: Vec<&str> = items
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "package.delete",
            "tenant.remove",
            "key.revoke",
            "key.create",
            "tenant.create",
            "package.upload",
            "trust.add"
        ],
        "{audit}"
    );
    let (trusted, over_http) = items.split_last().expect("entries");
    assert!(
        over_http
            .iter()
            .all(|entry| entry["address"] == "127.0.0.1" && entry["actor_name"] == "bootstrap"),
        "{audit}"
    );
    assert!(
        trusted["actor_name"]
            .as_str()
            .is_some_and(|name| name.starts_with("local:"))
            && trusted["actor_key_id"].is_null()
            && trusted["address"].is_null()
            && trusted["detail"]["name"] == "author",
        "{trusted}"
    );
    let table = remote(&["audit", "--limit", "2"]).success();
    assert!(table.stdout.contains("package.delete"), "{table}");
    assert!(table.stdout.contains("2 of 7 entries"), "{table}");
}

/// SIGTERM while a task runs: the task finishes (grace period), the server
/// exits 0, and the next start completes the execution without running the
/// finished task again.
#[test]
fn sigterm_drains_and_the_next_start_completes_the_execution() {
    let dir = signed_and_trusted("fan-out");
    let mut server = Server::start_with(dir.path(), &["--in-process"]);
    let url = server.url();
    let key = bootstrap_key(dir.path());
    let remote = |url: &str, args: &[&str]| {
        cloacinactl(
            dir.path(),
            &[args, &["--server", url, "--api-key", &key]].concat(),
        )
    };
    remote(&url, &["package", "upload", "fan-out.cloacina"]).success();
    wait_loaded(&|args| remote(&url, args), "fan_out");
    let started = remote(
        &url,
        &[
            "--json",
            "workflow",
            "run",
            "fan_out",
            "--context",
            r#"{"work_ms": 1500, "base": 2}"#,
        ],
    )
    .success()
    .json();
    let id = started["execution_id"].as_str().expect("id").to_owned();
    server.expect(&["execution started"]);
    let stopping = Instant::now();
    let exit = server.terminate();
    assert!(exit.success(), "{exit:?}");
    assert!(
        stopping.elapsed() >= Duration::from_millis(500),
        "the running task was waited for"
    );

    let mut server = Server::start_with(dir.path(), &["--in-process"]);
    let url = server.url();
    wait_loaded(&|args| remote(&url, args), "fan_out");
    let deadline = Instant::now() + Duration::from_secs(60);
    let shown = loop {
        let shown = remote(&url, &["--json", "execution", "show", &id])
            .success()
            .json();
        if shown["status"] != "Running" {
            break shown;
        }
        assert!(Instant::now() < deadline, "never finished: {shown}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(shown["status"], "Completed", "{shown}");
    let split = shown["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["task_name"] == "split"))
        .expect("split")
        .clone();
    assert_eq!(
        split["attempt"], 1,
        "the finished task did not run again: {split}"
    );
    let exit = server.terminate();
    assert!(exit.success());
}

/// Polls `workflow show` until the workflow is loaded.
pub(crate) fn wait_loaded(remote: &dyn Fn(&[&str]) -> cloacina_tests::Outcome, workflow: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = remote(&["--json", "workflow", "show", workflow]);
        if shown.code == Some(0) && shown.json()["build_status"] == "loaded" {
            return;
        }
        assert!(Instant::now() < deadline, "never loaded:\n{shown}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// HTTP uploads go through the host's trust store: unsigned (with
/// --require-signatures), untrusted and garbage packages are refused with
/// the exit codes of `package verify`; other bytes under a registered
/// version are a conflict (exit 9).
#[test]
fn http_uploads_are_verified_against_the_trust_store() {
    let dir = signed_and_trusted("etl");
    let run = |args: &[&str]| cloacinactl(dir.path(), args);
    run(&["key", "generate", "stranger", "--out", "keys"]).success();
    let crate_dir = sample_crate("etl");
    let etl = path(&crate_dir);
    run(&["pack", etl, "-o", "unsigned.cloacina"]).success();
    run(&[
        "pack",
        etl,
        "--sign",
        "keys/stranger.key",
        "-o",
        "stranger.cloacina",
    ])
    .success();
    std::fs::write(dir.path().join("garbage.cloacina"), b"not a package").expect("write");
    let mut server = Server::start_with(dir.path(), &["--in-process", "--require-signatures"]);
    let url = server.url();
    let key = bootstrap_key(dir.path());
    let upload = |file: &str| {
        run(&[
            "package",
            "upload",
            file,
            "--server",
            &url,
            "--api-key",
            &key,
        ])
    };
    upload("unsigned.cloacina").failure(3, "not signed");
    upload("stranger.cloacina").failure(3, "not in the trust store");
    upload("garbage.cloacina").failure(4, "not a usable package");
    upload("etl.cloacina").success();
    upload("etl.cloacina").success();
    // The stranger's archive again, now that its key is trusted: the same
    // name and version with other bytes.
    run(&["trust", "add", "keys/stranger.pub", "--home", "host"]).success();
    upload("stranger.cloacina").failure(9, "409");
    let exit = server.terminate();
    assert!(exit.success());
}

/// The god key cannot be lost for good: the last one cannot be revoked,
/// and `api-key create --god --home` mints another in the host's database
/// while the server runs.
#[test]
fn a_lost_god_key_is_recovered_offline() {
    let dir = scratch();
    let mut server = Server::start_with(dir.path(), &["--in-process"]);
    let url = server.url();
    let god = bootstrap_key(dir.path());
    let with_key = |key: &str, args: &[&str]| {
        cloacinactl(
            dir.path(),
            &[args, &["--server", &url, "--api-key", key]].concat(),
        )
    };
    let keys = with_key(&god, &["--json", "api-key", "list"])
        .success()
        .json();
    let god_id = keys["items"][0]["id"].as_str().expect("id").to_owned();
    with_key(&god, &["api-key", "revoke", &god_id]).failure(9, "last god-mode key");

    cloacinactl(dir.path(), &["api-key", "create", "rescue", "--god"]).failure(2, "--home");
    cloacinactl(
        dir.path(),
        &["api-key", "create", "rescue", "--god", "--home", "hosst"],
    )
    .failure(2, "no host database");
    let rescue = cloacinactl(
        dir.path(),
        &[
            "--json", "api-key", "create", "rescue", "--god", "--home", "host",
        ],
    )
    .success()
    .json();
    assert_eq!(rescue["is_admin"], true);
    let rescue_key = rescue["key"].as_str().expect("key").to_owned();
    with_key(&rescue_key, &["api-key", "revoke", &god_id]).success();
    with_key(&rescue_key, &["tenant", "list"]).success();
    with_key(&god, &["tenant", "list"]).failure(10, "401");
}

/// One admission for every entry point: the same tampered package, and
/// the same garbage, give the same exit code whether uploaded into a
/// host's database (`--home`) or to a server (`--server`).
#[test]
fn a_refused_package_exits_alike_through_home_and_server() {
    let dir = signed_and_trusted("etl");
    let run = |args: &[&str]| cloacinactl(dir.path(), args);
    let mut files = cloacina_tests::package_files(
        &std::fs::read(dir.path().join("etl.cloacina")).expect("package"),
    );
    let library = files
        .keys()
        .find(|name| name.starts_with("native/"))
        .expect("native artifact")
        .clone();
    files.get_mut(&library).expect("library")[1000] ^= 0x01;
    std::fs::write(
        dir.path().join("tampered.cloacina"),
        cloacina_tests::pack_files(&files),
    )
    .expect("write");
    std::fs::write(dir.path().join("garbage.cloacina"), b"not a package").expect("write");
    let mut server = Server::start_with(dir.path(), &["--in-process", "--require-signatures"]);
    let url = server.url();
    let key = bootstrap_key(dir.path());
    for (file, code, phrase) in [
        ("tampered.cloacina", 3, "its SHA-256 differs"),
        ("garbage.cloacina", 4, "not a usable package"),
    ] {
        run(&["package", "upload", file, "--home", "host"]).failure(code, phrase);
        run(&[
            "package",
            "upload",
            file,
            "--server",
            &url,
            "--api-key",
            &key,
        ])
        .failure(code, phrase);
        let json = run(&[
            "--json",
            "package",
            "upload",
            file,
            "--server",
            &url,
            "--api-key",
            &key,
        ]);
        assert_eq!(json.code, Some(code), "{json}");
    }
    assert!(server.terminate().success());
}

/// SIGHUP never stops a server without TLS: it says there is nothing to
/// reload and keeps serving.
#[test]
fn sighup_without_tls_keeps_the_server_serving() {
    let dir = scratch();
    let mut server = Server::start_with(dir.path(), &["--in-process"]);
    let url = server.url();
    server.expect(&["host running"]);
    let pid = server.child.id().to_string();
    let signalled = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(signalled.success());
    server.expect(&["SIGHUP: nothing to reload"]);
    let addr = url.trim_start_matches("http://").parse().expect("address");
    let (status, head, body) = crate::outage::get(addr, "/health", "");
    assert_eq!(status, 200, "{head}\n{body}");
    let exit = server.terminate();
    assert!(exit.success(), "{exit:?}");
}
