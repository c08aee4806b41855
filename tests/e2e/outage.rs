//! The database goes away for longer than every pool timeout, then comes
//! back (PostgreSQL reached through a proxy the test cuts): nothing a user
//! gave the host is lost, and the host recovers by itself.
//!
//! During the outage: requests are answered 503 with a JSON error and
//! `Retry-After` within seconds; an HTTP upload is refused 503 (exit 75 from
//! the CLI), and so is starting a workflow (nothing starts later behind the
//! caller's back); a signed package dropped into the watched directory stays
//! where it is, never in `.rejected/`. After it: the dropped package is
//! registered, the same upload succeeds, and a workflow that was running
//! when the database went away completes.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cloacina_tests::{
    CuttableProxy, cloacinactl, drop_database, fresh_database, postgres_url, scratch,
};

use crate::serving::{Server, bootstrap_key, pack_signed};

/// How long the database stays unreachable: longer than the pools'
/// acquire timeout, the lease TTL and the key cache.
const OUTAGE: Duration = Duration::from_secs(65);

#[test]
fn a_database_outage_loses_nothing_and_the_host_recovers_by_itself() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let (database, direct_url) = fresh_database(&admin_url, "outage");
    let upstream: SocketAddr = "127.0.0.1:5432".parse().expect("address");
    let proxy = CuttableProxy::start(upstream);
    let url = direct_url.replace(":5432/", &format!(":{}/", proxy.port()));
    assert_ne!(
        url, direct_url,
        "the host must reach PostgreSQL through the proxy"
    );

    let dir = scratch();
    let run = |args: &[&str]| cloacinactl(dir.path(), args);
    run(&["key", "generate", "author", "--out", "keys"]).success();
    for sample in ["etl", "fan-out", "cron"] {
        pack_signed(dir.path(), sample);
    }
    run(&["trust", "add", "keys/author.pub", "--database-url", &url]).success();
    std::fs::create_dir_all(dir.path().join("drop")).expect("drop dir");
    let mut server = Server::start_with(
        dir.path(),
        &[
            "--database-url",
            &url,
            "--watch-dir",
            "drop",
            "--require-signatures",
            "--in-process",
        ],
    );
    let server_url = server.url();
    let addr: SocketAddr = server_url
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let key = bootstrap_key(dir.path());
    let remote = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", &server_url, "--api-key", &key]);
        run(&all)
    };

    // A workflow running when the database goes: `transform` pauses a
    // minute (the first time) once it has created the marker.
    remote(&["package", "upload", "etl.cloacina"]).success();
    crate::serving::wait_loaded(&remote, "etl");
    let marker = dir.path().join("paused");
    let context = serde_json::json!({ "pause_marker": marker }).to_string();
    let started = remote(&["--json", "workflow", "run", "etl", "--context", &context]).success();
    let execution = started.json()["execution_id"]
        .as_str()
        .expect("an execution id")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "transform never started");
        std::thread::sleep(Duration::from_millis(20));
    }

    proxy.cut();
    let outage_began = Instant::now();

    // Requests: 503 with a JSON error and Retry-After, within seconds.
    let asked = Instant::now();
    let (status, headers, body) = get(addr, "/v1/tenants/public/executions", &key);
    let took = asked.elapsed();
    assert_eq!(status, 503, "{headers}\n{body}");
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    assert!(
        headers.to_ascii_lowercase().contains("retry-after:"),
        "{headers}"
    );
    let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(error["code"], "unavailable", "{body}");

    // An upload: 503, exit 75 (try again later), nothing registered.
    remote(&["package", "upload", "fan-out.cloacina"]).failure(75, "503");
    // Starting a workflow: told to come back within seconds, and nothing
    // is started behind the caller's back once the database returns.
    let asked = Instant::now();
    remote(&["workflow", "run", "etl"]).failure(75, "503");
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "answered after {:?}",
        asked.elapsed()
    );

    // A dropped file stays where it is.
    std::fs::copy(
        dir.path().join("cron.cloacina"),
        dir.path().join("drop/cron.cloacina"),
    )
    .expect("drop");
    server.expect(&["cannot register a dropped file now", "cron.cloacina"]);

    // Later in the outage (the key cache has expired by then): still 503.
    std::thread::sleep(OUTAGE.saturating_sub(outage_began.elapsed()) / 2);
    let (status, headers, _) = get(addr, "/v1/tenants/public/workflows", &key);
    assert_eq!(status, 503, "{headers}");
    assert!(dir.path().join("drop/cron.cloacina").exists());
    assert!(!dir.path().join("drop/.rejected").exists());

    std::thread::sleep(OUTAGE.saturating_sub(outage_began.elapsed()));
    proxy.restore();

    // Back: the dropped file is registered, the upload goes through, and
    // the running workflow completes; the same process served it all.
    server.expect(&["dropped package registered", "cron.cloacina"]);
    retry_until_ok(|| remote(&["package", "upload", "fan-out.cloacina"]));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let shown = remote(&["--json", "execution", "show", &execution]);
        if shown.code == Some(0) && shown.json()["status"] == "Completed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the execution did not complete after the outage:\n{shown}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let events = remote(&["--json", "execution", "events", &execution]).success();
    assert!(
        events.stdout.contains("workflow_completed"),
        "{}",
        events.stdout
    );
    assert!(dir.path().join("drop/cron.cloacina").exists());
    assert!(!dir.path().join("drop/.rejected").exists());
    let executions = remote(&["--json", "execution", "list", "--workflow", "etl"]).success();
    assert_eq!(
        executions.json()["total"],
        1,
        "only the execution started before the outage: {executions}"
    );
    let listed = remote(&["--json", "package", "list"]).success();
    for workflow in ["etl", "fan_out", "cron"] {
        assert!(listed.stdout.contains(workflow), "{workflow}: {listed}");
    }

    let exit = server.terminate();
    assert!(exit.success(), "{exit:?}");
    drop(proxy);
    drop_database(&admin_url, &database);
}

/// Runs `command` until it succeeds (the server may still be reconnecting).
fn retry_until_ok(command: impl Fn() -> cloacina_tests::Outcome) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let outcome = command();
        if outcome.code == Some(0) {
            return;
        }
        assert!(Instant::now() < deadline, "never succeeded:\n{outcome}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A GET over a fresh connection: status, head and body.
pub(crate) fn get(addr: SocketAddr, path: &str, key: &str) -> (u16, String, String) {
    request(addr, "GET", path, key)
}

/// A request without a body over a fresh connection: status, head, body.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}
