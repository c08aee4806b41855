//! `cloacinactl server start` with a drop directory: a signed package
//! dropped in is registered, loaded and run by its cron schedule; a host
//! killed right after registering converges when started again; SIGTERM
//! stops it cleanly.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cloacina_tests::{cloacinactl, cloacinactl_path, sample_crate, scratch};

use crate::packaging::path;

/// A running `cloacinactl server start` whose log lines arrive on a
/// channel.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(cloacinactl_path())
            .args(["server", "start", "--home", "host", "--watch-dir", "drop"])
            .args(["--bind", "127.0.0.1:0"])
            .arg("--require-signatures")
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

    /// Waits for a log line containing every one of `words`.
    fn expect(&mut self, words: &[&str]) -> String {
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

#[test]
fn a_dropped_package_runs_and_a_killed_host_converges_on_restart() {
    let dir = scratch();
    let run = |args: &[&str]| cloacinactl(dir.path(), args);
    run(&["key", "generate", "author", "--out", "keys"]).success();
    let crate_dir = sample_crate("cron");
    run(&[
        "pack",
        path(&crate_dir),
        "--sign",
        "keys/author.key",
        "-o",
        "cron.cloacina",
    ])
    .success();
    run(&["trust", "add", "keys/author.pub", "--home", "host"]).success();

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
    let pid = server.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    server.expect(&["stopped"]);
    let exit = server.child.wait().expect("exits");
    assert!(exit.success(), "{exit:?}");
    assert!(
        !dir.path().join("drop/.rejected").exists(),
        "nothing was rejected"
    );
}
