//! The crash suite: workflows of three shapes (a ten-task chain, a 1 -> 3
//! -> 1 fan-out whose tasks sleep, an ETL chain with retries) are submitted
//! over HTTP to a real `cloacinactl server start` (native plugins in worker
//! processes, its default) while the server is killed with SIGKILL at
//! random points and started again on the same database, on SQLite and on
//! PostgreSQL. At the end every execution the server accepted has finished
//! exactly as it would have without the crashes:
//!
//! - none is lost: each accepted one, and each the server took before a
//!   kill cut its reply, completes, with the final context its input makes;
//! - no completed task runs again: each task completes once, and never
//!   starts after it completed;
//! - every event sequence is dense and ordered;
//! - the registry and the trust store are as they were.
//!
//! `CLOACINA_CRASH_KILLS` sets the kills per database (10 by default, the
//! CI mode; `scripts/reliability` runs 50), `CLOACINA_CRASH_SEED` replays a
//! run's random kill points (the seed is printed).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloacina_client::{Client, ClientError};
use cloacina_tests::{
    FreshDatabase, ServerProcess, cloacinactl, postgres_url, scratch, sqlite_url,
};
use cloacina_wire::executions::ExecuteRequest;

use crate::serving::pack_signed;
use crate::workload::{Shape, check_execution, start_server, wait_all_ended, wait_loaded};

const KEY: &str = "clk_crashcrashcrashcrashcrashcrash";
const TENANT: &str = "public";
/// Executions submitted between two kills.
const PER_ROUND: usize = 12;

#[test]
fn sqlite_hosts_killed_at_random_points_lose_and_repeat_nothing() {
    let dir = scratch();
    let url = sqlite_url(&dir.path().join("host"));
    crash_loop(&dir, &url, "SQLite");
}

#[test]
fn postgresql_hosts_killed_at_random_points_lose_and_repeat_nothing() {
    let Some(admin) = postgres_url() else { return };
    let database = FreshDatabase::create(&admin, "crashes");
    crash_loop(&scratch(), &database.url, "PostgreSQL");
}

/// A small deterministic generator (xorshift64*), so that a seed replays a
/// run's kill points and inputs.
struct Random(u64);

impl Random {
    fn new(seed: u64) -> Random {
        Random(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

fn settings() -> (usize, u64) {
    let kills = std::env::var("CLOACINA_CRASH_KILLS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10);
    let seed = std::env::var("CLOACINA_CRASH_SEED")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |since| since.as_nanos() as u64)
        });
    (kills, seed)
}

fn start(dir: &Path, url: &str) -> ServerProcess {
    start_server(
        &dir.join("host"),
        url,
        KEY,
        &["--require-signatures", "--lease-ttl", "1"],
    )
}

fn crash_loop(dir: &tempfile::TempDir, url: &str, database: &str) {
    let (kills, seed) = settings();
    println!("{database}: {kills} kills, CLOACINA_CRASH_SEED={seed}");
    let mut random = Random::new(seed);
    let run = |args: &[&str]| cloacinactl(dir.path(), args);
    run(&["key", "generate", "author", "--out", "keys"]).success();
    for sample in ["chain", "fan-out", "etl"] {
        pack_signed(dir.path(), sample);
    }
    run(&["trust", "add", "keys/author.pub", "--database-url", url]).success();
    let trust_before = run(&["--json", "trust", "list", "--database-url", url])
        .success()
        .json();

    let mut server = start(dir.path(), url);
    let mut client = Client::new(&format!("http://{}", server.addr), KEY, TENANT);
    for sample in ["chain", "fan-out", "etl"] {
        client
            .upload_package(&dir.path().join(format!("{sample}.cloacina")))
            .unwrap_or_else(|error| panic!("uploading {sample}: {error}"));
    }
    let workflows = ["chain10", "fan_out", "etl"];
    wait_loaded(&client, &workflows);

    let began = Instant::now();
    let accepted: Arc<Mutex<BTreeMap<String, Shape>>> = Arc::default();
    let mut unanswered = 0;
    let mut deferred = 0;
    let mut refusals = Vec::new();
    for _ in 0..kills {
        // Submit from a thread of its own; the kill lands somewhere in the
        // burst, or in the work it started.
        let shapes: Vec<Shape> = (0..PER_ROUND).map(|_| pick(&mut random)).collect();
        let submitter = {
            let client = client.clone();
            let accepted = accepted.clone();
            std::thread::spawn(move || {
                let (mut unanswered, mut deferred, mut refused) = (0, 0, Vec::new());
                for shape in shapes {
                    let request = ExecuteRequest {
                        context: Some(shape.input()),
                        version: None,
                    };
                    match client.execute(shape.workflow(), &request) {
                        Ok(started) => {
                            let mut accepted = accepted.lock().expect("lock");
                            accepted.insert(started.execution_id, shape);
                        }
                        // The kill cut the connection: the start may or
                        // may not have been taken (the list tells).
                        Err(ClientError::Unreachable { .. } | ClientError::Unreadable { .. }) => {
                            unanswered += 1
                        }
                        // Told to come back (the restarted host is still
                        // loading the workflow): nothing was started.
                        Err(ClientError::Refused {
                            status: 503,
                            retry_after: Some(_),
                            ..
                        }) => deferred += 1,
                        Err(error) => refused.push(error.to_string()),
                    }
                }
                (unanswered, deferred, refused)
            })
        };
        std::thread::sleep(Duration::from_millis(random.below(400)));
        server.kill();
        let (cut, later, refused) = submitter.join().expect("the submitter");
        unanswered += cut;
        deferred += later;
        refusals.extend(refused);
        server = start(dir.path(), url);
        client = Client::new(&format!("http://{}", server.addr), KEY, TENANT);
        wait_loaded(&client, &workflows);
    }
    let accepted = accepted.lock().expect("lock").clone();
    assert!(
        !accepted.is_empty(),
        "no execution was accepted between the kills"
    );

    // Every execution the server holds has finished: the accepted ones and
    // those whose reply a kill cut.
    let all = wait_all_ended(&client);
    // A start the server answered is taken or refused for a reason; none
    // has one here.
    let mut failures: Vec<String> = refusals
        .iter()
        .map(|error| format!("a start was refused: {error}"))
        .collect();
    let mut reruns = 0;
    for (id, status) in &all {
        if status != "completed" {
            failures.push(format!("{id} ended {status}"));
        }
    }
    for id in accepted.keys() {
        if !all.contains_key(id) {
            failures.push(format!("{id} was accepted and then lost"));
        }
    }
    for (id, shape) in &accepted {
        match check_execution(&client, id, shape) {
            Ok(again) => reruns += again,
            Err(error) => failures.push(format!("{id} ({}): {error}", shape.workflow())),
        }
    }
    let trust_after = run(&["--json", "trust", "list", "--database-url", url])
        .success()
        .json();
    if trust_after != trust_before {
        failures.push(format!(
            "the trust store changed: {trust_before} -> {trust_after}"
        ));
    }
    let registered = client.workflows().expect("the workflow list");
    let mut names: Vec<_> = registered
        .items
        .iter()
        .map(|workflow| workflow.workflow_name.as_str())
        .collect();
    names.sort_unstable();
    if names != ["chain10", "etl", "fan_out"] {
        failures.push(format!("the registry holds {names:?}"));
    }
    println!(
        "{database}: {kills} kills survived in {:.1} s; {} executions checked ({} accepted, {} more taken before a kill cut the reply, {unanswered} requests unanswered, {deferred} told to retry), {reruns} interrupted task runs ran again, CLOACINA_CRASH_SEED={seed}",
        began.elapsed().as_secs_f64(),
        all.len(),
        accepted.len(),
        all.len().saturating_sub(accepted.len()),
    );
    assert!(
        failures.is_empty(),
        "{} of {} executions went wrong (CLOACINA_CRASH_SEED={seed}):\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    server
        .terminate(Duration::from_secs(30))
        .expect("the server stops");
}

/// A shape of work and its input, at random.
fn pick(random: &mut Random) -> Shape {
    match random.below(3) {
        0 => Shape::Chain {
            tag: random.below(1 << 30),
        },
        1 => Shape::FanOut {
            base: random.below(1000) as i64 + 1,
        },
        _ => Shape::Etl {
            input: (0..random.below(6) + 1)
                .map(|_| random.below(100) as i64)
                .collect(),
        },
    }
}
