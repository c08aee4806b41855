//! The soak: one real `cloacinactl server start` (its defaults: native
//! plugins in `cloacina-plugin-worker` processes; `--require-signatures`,
//! the samples signed) under mixed traffic at a fixed rate, as a busy but
//! not overloaded installation sees it, on SQLite and on PostgreSQL:
//!
//! | route           | per second | what                                                   |
//! |-----------------|-----------:|--------------------------------------------------------|
//! | `POST execute`  |         20 | `chain10` and `fan_out` in turn                        |
//! | `GET executions`|         10 | a page of 20; every other one only the running ones    |
//! | `GET execution` |         10 | one of the 200 newest started here                     |
//! | `GET events`    |         10 | the events of any one started here                    |
//! | `GET workflows` |         10 | the list                                               |
//! | `graph event`   |         10 | `POST .../accumulators/ticks/inject`: the `graph` sample's `counter` fires once per tick |
//! | `WS delivery`   |          1 | a ticket, the delivery socket on an execution started a second or more before, its events until its end, close |
//! | `POST upload`   |        0.1 | the same signed archives again, in turn                |
//!
//! A pacer hands each operation, at its time, to a few client threads. The
//! pace is never adjusted: when the clients fall behind (a slow server, a
//! busy machine) the queue wait and the achieved rates show it.
//!
//! Every answer is classified: a success; an answer the API documents for
//! the request (the only one here: the same bytes uploaded again are
//! answered `201` with `created: false`, the registry keeps one copy, so it
//! does not grow); or an unexpected error, noted with its route and
//! message. Once the traffic stops:
//!
//! - there was no unexpected error;
//! - every execution started here completes (none lost, none failed);
//! - the server's resident memory and open file descriptors, sampled every
//!   second, are flat after the warm-up (the first quarter of the run, at
//!   least 10 s): the mean RSS of the last quarter is within 20% + 32 MiB
//!   of the second quarter's, the most fds seen in the last quarter within
//!   16 of the most in the second.
//!
//! Latencies (count, p50, p99, max per route), the achieved rates, the
//! queue wait, the plugin workers' memory and the counter's firings are
//! printed, never asserted: a loaded 2-core CI machine makes them noisy.
//! The last line is one to quote: `soak SQLite: 60 s, N requests, 0
//! unexpected errors, p99 execute X ms, RSS a -> b MiB, fds c -> d`, RSS
//! and fds from the end of the warm-up to the end.
//!
//! `CLOACINA_SOAK_SECONDS` sets the length of the traffic, at least 20 s.
//! Unset, the CI mode: 60 s on SQLite, 30 s on PostgreSQL;
//! `scripts/reliability` runs 600 on both.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cloacina_client::{Client, ClientError, ExecutionQuery};
use cloacina_tests::{
    FreshDatabase, ServerProcess, cloacinactl, postgres_url, scratch, sqlite_url, status_kib,
};
use cloacina_wire::executions::ExecuteRequest;
use serde_json::json;

use crate::serving::pack_signed;
use crate::workload::{start_server, wait_loaded};

const KEY: &str = "clk_soaksoaksoaksoaksoaksoaksoak";
const TENANT: &str = "public";
/// The samples packed, signed, uploaded, and uploaded again in turn.
const SAMPLES: [&str; 3] = ["chain", "fan-out", "graph"];
/// The `graph` sample's accumulator that feeds its `counter` graph.
const TICKS: &str = "ticks";
/// Client threads the pacer hands operations to, each with connections of
/// its own.
const CLIENTS: usize = 4;
/// How long each `fan_out` task works.
const FAN_OUT_WORK_MS: u64 = 10;
/// A delivery socket follows an execution started at least this long ago.
const FOLLOW_AGE: Duration = Duration::from_secs(1);
/// A delivery socket is closed after this many events even before the
/// execution's end (a `chain10` has about 32).
const FOLLOW_AT_MOST: usize = 64;
/// The longest wait for every execution to end once the traffic stopped.
const SETTLE: Duration = Duration::from_secs(180);
/// The shortest warm-up.
const MIN_WARM_UP: Duration = Duration::from_secs(10);
/// The mean RSS of the last quarter may exceed the second quarter's by
/// this fraction and `RSS_SLACK_MIB` more.
const RSS_GROWTH: f64 = 0.20;
const RSS_SLACK_MIB: f64 = 32.0;
/// The most fds of the last quarter may exceed the second quarter's by
/// this many.
const FD_SLACK: usize = 16;
/// Unexpected errors shown in a failure.
const SHOWN_ERRORS: usize = 20;

#[test]
fn sqlite_server_under_mixed_traffic_stays_flat_and_loses_nothing() {
    let dir = scratch();
    let url = sqlite_url(&dir.path().join("host"));
    soak(&dir, &url, "SQLite", length(60));
}

#[test]
fn postgresql_server_under_mixed_traffic_stays_flat_and_loses_nothing() {
    let Some(admin) = postgres_url() else { return };
    let database = FreshDatabase::create(&admin, "soak");
    soak(&scratch(), &database.url, "PostgreSQL", length(30));
}

/// The length of the traffic: `CLOACINA_SOAK_SECONDS`, else `default_secs`.
fn length(default_secs: u64) -> Duration {
    let secs = match std::env::var("CLOACINA_SOAK_SECONDS") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            panic!("CLOACINA_SOAK_SECONDS={text}: not a whole number of seconds")
        }),
        Err(_) => default_secs,
    };
    assert!(
        secs >= 20,
        "CLOACINA_SOAK_SECONDS={secs}: at least 20 (a 10 s warm-up, then two quarters to compare)"
    );
    Duration::from_secs(secs)
}

/// What the soak sends, each kind at a fixed period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Route {
    Execute,
    Executions,
    Execution,
    Events,
    Workflows,
    GraphEvent,
    Delivery,
    Upload,
}

impl Route {
    const ALL: [Route; 8] = [
        Route::Execute,
        Route::Executions,
        Route::Execution,
        Route::Events,
        Route::Workflows,
        Route::GraphEvent,
        Route::Delivery,
        Route::Upload,
    ];

    fn label(self) -> &'static str {
        match self {
            Route::Execute => "POST execute",
            Route::Executions => "GET executions",
            Route::Execution => "GET execution",
            Route::Events => "GET events",
            Route::Workflows => "GET workflows",
            Route::GraphEvent => "graph event",
            Route::Delivery => "WS delivery",
            Route::Upload => "POST upload",
        }
    }

    /// The time between two operations of this kind.
    fn period(self) -> Duration {
        match self {
            Route::Execute => Duration::from_millis(50),
            Route::Executions
            | Route::Execution
            | Route::Events
            | Route::Workflows
            | Route::GraphEvent => Duration::from_millis(100),
            Route::Delivery => Duration::from_secs(1),
            Route::Upload => Duration::from_secs(10),
        }
    }

    fn per_second(self) -> f64 {
        1.0 / self.period().as_secs_f64()
    }
}

/// One operation: the `n`th of its route, due at `due`.
#[derive(Debug)]
struct Job {
    route: Route,
    n: u64,
    due: Instant,
}

/// How an operation that did not fail was answered.
#[derive(Debug)]
enum Answer {
    Done,
    /// An answer the API documents for this request: which.
    Expected(&'static str),
    /// Nothing to act on yet (no execution to read or follow).
    Skipped,
}

/// The executions started here, oldest first, and those a delivery
/// socket has followed (a second socket on one would get no pushes: its
/// events were acknowledged).
#[derive(Debug, Default)]
struct Started {
    executions: Mutex<Vec<(String, Instant)>>,
    followed: Mutex<HashSet<String>>,
}

impl Started {
    fn add(&self, id: String) {
        lock(&self.executions).push((id, Instant::now()));
    }

    /// One of the 200 newest, varied by `n`.
    fn recent(&self, n: u64) -> Option<String> {
        let executions = lock(&self.executions);
        let window = executions.len().min(200);
        if window == 0 {
            return None;
        }
        let back = (n as usize).wrapping_mul(7919) % window;
        Some(executions[executions.len() - 1 - back].0.clone())
    }

    /// Any one, varied by `n`.
    fn any(&self, n: u64) -> Option<String> {
        let executions = lock(&self.executions);
        if executions.is_empty() {
            return None;
        }
        let index = (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16) as usize % executions.len();
        Some(executions[index].0.clone())
    }

    /// The newest one started at least [`FOLLOW_AGE`] ago that no socket
    /// followed yet, now marked followed.
    fn to_follow(&self) -> Option<String> {
        let executions = lock(&self.executions);
        let mut followed = lock(&self.followed);
        let ripe = Instant::now().checked_sub(FOLLOW_AGE)?;
        let id = executions
            .iter()
            .rev()
            .filter(|(_, at)| *at <= ripe)
            .map(|(id, _)| id)
            .find(|id| !followed.contains(*id))?
            .clone();
        followed.insert(id.clone());
        Some(id)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An answer that is neither a success nor documented for the request.
#[derive(Debug)]
struct Unexpected {
    route: Route,
    /// Since the traffic began.
    at: Duration,
    message: String,
}

/// What the client threads saw.
#[derive(Debug, Default)]
struct Tally {
    /// Time to the answer, of every operation answered (expected answers
    /// and errors too).
    latencies: BTreeMap<Route, Vec<Duration>>,
    /// Operations started before the traffic's end: the achieved rate.
    on_time: BTreeMap<Route, u64>,
    done: BTreeMap<Route, u64>,
    expected: BTreeMap<(Route, &'static str), u64>,
    skipped: BTreeMap<Route, u64>,
    unexpected: Vec<Unexpected>,
    /// From each operation's due time to its start.
    waits: Vec<Duration>,
}

impl Tally {
    fn merge(mut self, other: Tally) -> Tally {
        for (route, latencies) in other.latencies {
            self.latencies.entry(route).or_default().extend(latencies);
        }
        for (route, n) in other.on_time {
            *self.on_time.entry(route).or_default() += n;
        }
        for (route, n) in other.done {
            *self.done.entry(route).or_default() += n;
        }
        for (key, n) in other.expected {
            *self.expected.entry(key).or_default() += n;
        }
        for (route, n) in other.skipped {
            *self.skipped.entry(route).or_default() += n;
        }
        self.unexpected.extend(other.unexpected);
        self.waits.extend(other.waits);
        self
    }

    fn requests(&self) -> usize {
        self.latencies.values().map(Vec::len).sum()
    }

    /// The sorted latencies of `route`.
    fn sorted(&self, route: Route) -> Vec<Duration> {
        let mut latencies = self.latencies.get(&route).cloned().unwrap_or_default();
        latencies.sort_unstable();
        latencies
    }
}

/// One second's look at the server.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Since the traffic began.
    at: Duration,
    rss_mib: u64,
    fds: usize,
    /// The server's child processes (its plugin workers) and their RSS.
    workers: usize,
    workers_rss_mib: u64,
}

fn soak(dir: &tempfile::TempDir, url: &str, database: &str, length: Duration) {
    let run = |args: &[&str]| cloacinactl(dir.path(), args);
    run(&["key", "generate", "author", "--out", "keys"]).success();
    for sample in SAMPLES {
        pack_signed(dir.path(), sample);
    }
    run(&["trust", "add", "keys/author.pub", "--database-url", url]).success();
    let home = dir.path().join("host");
    std::fs::create_dir_all(&home).expect("host dir");
    let mut server = start_server(&home, url, KEY, &["--require-signatures"]);
    let base = format!("http://{}", server.addr);
    let client = Client::new(&base, KEY, TENANT);
    let packages: Vec<PathBuf> = SAMPLES
        .iter()
        .map(|sample| dir.path().join(format!("{sample}.cloacina")))
        .collect();
    for package in &packages {
        let uploaded = client
            .upload_package(package)
            .unwrap_or_else(|error| panic!("uploading {}: {}", package.display(), describe(error)));
        assert!(
            uploaded.created,
            "{} was registered before",
            package.display()
        );
    }
    wait_loaded(&client, &["chain10", "fan_out", "notify"]);
    wait_live(&client, "counter");
    println!(
        "{database}: {} s of traffic from {CLIENTS} client threads to the server at {base} (pid {})",
        length.as_secs(),
        server.pid()
    );

    let started = Started::default();
    let (sender, receiver) = std::sync::mpsc::channel();
    let jobs = Mutex::new(receiver);
    let began = Instant::now();
    let (tally, samples) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| sample_every_second(&server, began, length));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let client = Client::new(&base, KEY, TENANT);
                let (jobs, started, packages) = (&jobs, &started, &packages);
                scope.spawn(move || serve(&client, jobs, started, packages, began, length))
            })
            .collect();
        pace(sender, began, length);
        let tally = clients
            .into_iter()
            .map(|thread| thread.join().expect("a client thread"))
            .fold(Tally::default(), Tally::merge);
        (tally, sampler.join().expect("the sampler"))
    });
    let drained = began.elapsed();

    // Everything started here ends, and completes. (A fresh client: the
    // first one's connection idled through the traffic.)
    let client = Client::new(&base, KEY, TENANT);
    wait_none_running(&client);
    let statuses = statuses(&client);
    let executions = started
        .executions
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let mut lost = Vec::new();
    for (id, _) in &executions {
        match statuses.get(id) {
            Some(status) if status.eq_ignore_ascii_case("completed") => {}
            Some(status) => lost.push(format!("{id} ended {status}")),
            None => lost.push(format!("{id} was accepted and is not listed")),
        }
    }
    let (fires, pending) = counter_fires(&client);

    print_table(database, &tally, length, drained);
    println!(
        "{database}: {} executions started, {} of them not completed; {} graph events accepted, counter fired {fires} times ({} pending)",
        executions.len(),
        lost.len(),
        tally.done.get(&Route::GraphEvent).copied().unwrap_or(0),
        pending.map_or("?".to_owned(), |n| n.to_string()),
    );

    // Flat after the warm-up: the second quarter against the last.
    let quarter = length / 4;
    let warm_up = quarter.max(MIN_WARM_UP);
    let second: Vec<&Sample> = samples
        .iter()
        .filter(|sample| sample.at >= warm_up && sample.at < warm_up + quarter)
        .collect();
    let last: Vec<&Sample> = samples
        .iter()
        .filter(|sample| sample.at >= length - quarter)
        .collect();
    assert!(
        !second.is_empty() && !last.is_empty(),
        "too few samples to compare: {samples:?}"
    );
    let first = samples.first().expect("a sample");
    let warm = samples
        .iter()
        .find(|sample| sample.at >= warm_up)
        .unwrap_or(first);
    let end = samples.last().expect("a sample");
    let mean_rss = |window: &[&Sample]| {
        window
            .iter()
            .map(|sample| sample.rss_mib as f64)
            .sum::<f64>()
            / window.len() as f64
    };
    let most_fds = |window: &[&Sample]| window.iter().map(|sample| sample.fds).max().unwrap_or(0);
    let (rss_second, rss_last) = (mean_rss(second.as_slice()), mean_rss(last.as_slice()));
    let rss_bound = rss_second * (1.0 + RSS_GROWTH) + RSS_SLACK_MIB;
    let (fds_second, fds_last) = (most_fds(second.as_slice()), most_fds(last.as_slice()));
    let fds_bound = fds_second + FD_SLACK;
    println!(
        "{database}: {} samples; warm-up {} s; server RSS {} MiB at the start, {} at the end of the warm-up, {} at the end; mean {rss_second:.1} MiB in the second quarter, {rss_last:.1} in the last (at most {rss_bound:.1})",
        samples.len(),
        warm_up.as_secs(),
        first.rss_mib,
        warm.rss_mib,
        end.rss_mib,
    );
    println!(
        "{database}: open fds {} at the start, {} at the end of the warm-up, {} at the end; at most {fds_second} in the second quarter, {fds_last} in the last (at most {fds_bound})",
        first.fds, warm.fds, end.fds,
    );
    println!(
        "{database}: plugin workers {} / {} / {} processes, RSS {} / {} / {} MiB (start / end of warm-up / end)",
        first.workers,
        warm.workers,
        end.workers,
        first.workers_rss_mib,
        warm.workers_rss_mib,
        end.workers_rss_mib,
    );
    println!(
        "soak {database}: {} s, {} requests, {} unexpected errors, p99 execute {:.1} ms, RSS {} -> {} MiB, fds {} -> {}",
        length.as_secs(),
        tally.requests(),
        tally.unexpected.len(),
        percentile(&tally.sorted(Route::Execute), 99.0),
        warm.rss_mib,
        end.rss_mib,
        warm.fds,
        end.fds,
    );

    server
        .terminate(Duration::from_secs(30))
        .expect("the server stops");
    let shown: Vec<String> = tally
        .unexpected
        .iter()
        .take(SHOWN_ERRORS)
        .map(|error| {
            format!(
                "{:>7.1} s  {}: {}",
                error.at.as_secs_f64(),
                error.route.label(),
                error.message
            )
        })
        .collect();
    assert!(
        tally.unexpected.is_empty(),
        "{database}: {} unexpected errors (the first {}):\n{}",
        tally.unexpected.len(),
        shown.len(),
        shown.join("\n")
    );
    assert!(
        lost.is_empty(),
        "{database}: {} of {} executions did not complete:\n{}",
        lost.len(),
        executions.len(),
        lost.join("\n")
    );
    assert!(
        rss_last <= rss_bound,
        "{database}: the server's RSS grew after the warm-up: a mean of {rss_second:.1} MiB in the second quarter, {rss_last:.1} in the last (at most {rss_bound:.1})"
    );
    assert!(
        fds_last <= fds_bound,
        "{database}: the server's open fds grew after the warm-up: at most {fds_second} in the second quarter, {fds_last} in the last (at most {fds_bound})"
    );
}

/// Hands every route's operations to the client threads at the route's
/// period, from `began` for `length`; returns (closing the queue) when the
/// last is handed over.
fn pace(jobs: Sender<Job>, began: Instant, length: Duration) {
    let routes = Route::ALL.len() as u32;
    // First times staggered, so that routes of one period do not coincide.
    let mut plan: Vec<(Route, Duration, u64)> = Route::ALL
        .iter()
        .zip(1u32..)
        .map(|(&route, k)| (route, route.period() * k / (routes + 1), 0))
        .collect();
    loop {
        let Some(next) = plan.iter_mut().min_by_key(|(_, offset, _)| *offset) else {
            return;
        };
        let (route, offset, n) = *next;
        if offset >= length {
            return;
        }
        let due = began + offset;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        if jobs.send(Job { route, n, due }).is_err() {
            // Every client thread is gone (one panicked): joining says why.
            return;
        }
        *next = (route, offset + route.period(), n + 1);
    }
}

/// One client thread: takes operations off the queue until it closes.
fn serve(
    client: &Client,
    jobs: &Mutex<Receiver<Job>>,
    started: &Started,
    packages: &[PathBuf],
    began: Instant,
    length: Duration,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        let next = lock(jobs).recv();
        let Ok(job) = next else { return tally };
        let start = Instant::now();
        let answer = perform(client, &job, started, packages);
        let took = start.elapsed();
        tally.waits.push(start.saturating_duration_since(job.due));
        match answer {
            Ok(Answer::Skipped) => {
                *tally.skipped.entry(job.route).or_default() += 1;
                continue;
            }
            Ok(Answer::Done) => *tally.done.entry(job.route).or_default() += 1,
            Ok(Answer::Expected(what)) => {
                *tally.expected.entry((job.route, what)).or_default() += 1
            }
            Err(message) => tally.unexpected.push(Unexpected {
                route: job.route,
                at: start.saturating_duration_since(began),
                message,
            }),
        }
        if start < began + length {
            *tally.on_time.entry(job.route).or_default() += 1;
        }
        tally.latencies.entry(job.route).or_default().push(took);
    }
}

/// Does one operation; an unexpected answer as its message.
fn perform(
    client: &Client,
    job: &Job,
    started: &Started,
    packages: &[PathBuf],
) -> Result<Answer, String> {
    match job.route {
        Route::Execute => {
            let (workflow, context) = if job.n.is_multiple_of(2) {
                ("chain10", json!({ "tag": job.n }))
            } else {
                (
                    "fan_out",
                    json!({ "base": job.n + 1, "work_ms": FAN_OUT_WORK_MS }),
                )
            };
            let request = ExecuteRequest {
                context: Some(context),
                version: None,
            };
            let reply = client.execute(workflow, &request).map_err(describe)?;
            started.add(reply.execution_id);
            Ok(Answer::Done)
        }
        Route::Executions => {
            let query = ExecutionQuery {
                status: (job.n % 2 == 1).then(|| "running".to_owned()),
                workflow: None,
                limit: 20,
                offset: 0,
            };
            client.executions(&query).map_err(describe)?;
            Ok(Answer::Done)
        }
        Route::Execution => {
            let Some(id) = started.recent(job.n) else {
                return Ok(Answer::Skipped);
            };
            client.execution(&id).map_err(describe)?;
            Ok(Answer::Done)
        }
        Route::Events => {
            let Some(id) = started.any(job.n) else {
                return Ok(Answer::Skipped);
            };
            client.events(&id).map_err(describe)?;
            Ok(Answer::Done)
        }
        Route::Workflows => {
            client.workflows().map_err(describe)?;
            Ok(Answer::Done)
        }
        Route::GraphEvent => {
            let reply = client
                .inject(TICKS, json!({ "n": job.n }))
                .map_err(describe)?;
            if reply.delivered == 0 {
                return Err(format!("tick {} was committed for no graph", job.n));
            }
            Ok(Answer::Done)
        }
        Route::Delivery => {
            let Some(id) = started.to_follow() else {
                return Ok(Answer::Skipped);
            };
            follow(client, &id)?;
            Ok(Answer::Done)
        }
        Route::Upload => {
            let file = &packages[job.n as usize % packages.len()];
            let reply = client.upload_package(file).map_err(describe)?;
            if reply.created {
                return Err(format!(
                    "{} {} was registered anew from the same bytes",
                    reply.package_name, reply.version
                ));
            }
            Ok(Answer::Expected(
                "201 created: false (the same bytes again)",
            ))
        }
    }
}

/// Follows execution `id` on the delivery socket until its end (or
/// [`FOLLOW_AT_MOST`] events), checking the pushes come in order; closes.
fn follow(client: &Client, id: &str) -> Result<(), String> {
    let mut stream = client.follow(id).map_err(describe)?;
    let mut last: Option<i64> = None;
    let mut read = 0;
    let outcome = loop {
        match stream.next_event() {
            Ok(Some(event)) => {
                if let Some(previous) = last
                    && event.sequence_num <= previous
                {
                    break Err(format!(
                        "execution {id}: event {} pushed after {previous}",
                        event.sequence_num
                    ));
                }
                last = Some(event.sequence_num);
                read += 1;
                let ended = matches!(
                    event.event_type.as_str(),
                    "workflow_completed" | "workflow_failed" | "workflow_cancelled"
                );
                if ended || read >= FOLLOW_AT_MOST {
                    break Ok(());
                }
            }
            Ok(None) => {
                break Err(format!(
                    "execution {id}: the server closed the socket after {read} events, before the execution's end"
                ));
            }
            Err(error) => {
                break Err(format!(
                    "execution {id}, after {read} events: {}",
                    describe(error)
                ));
            }
        }
    };
    stream.close();
    outcome
}

/// Samples the server (and its child processes) every second from
/// `began` to `began + length`.
fn sample_every_second(server: &ServerProcess, began: Instant, length: Duration) -> Vec<Sample> {
    let mut samples = Vec::new();
    for second in 0..=length.as_secs() {
        std::thread::sleep(
            (began + Duration::from_secs(second)).saturating_duration_since(Instant::now()),
        );
        let (workers, workers_rss_mib) = children_rss_mib(server.pid());
        samples.push(Sample {
            at: began.elapsed(),
            rss_mib: server.memory_mib("VmRSS"),
            fds: server.open_fds(),
            workers,
            workers_rss_mib,
        });
    }
    samples
}

/// The running children of process `parent` (a server's plugin workers)
/// and their resident memory together, MiB.
fn children_rss_mib(parent: u32) -> (usize, u64) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    let (mut count, mut kib) = (0, 0);
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the name (in parentheses, which may hold spaces and
        // parentheses): the state, then the parent's id.
        let parent_of = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if parent_of != Some(parent) {
            continue;
        }
        let Some(rss) = status_kib(pid, "VmRSS") else {
            continue;
        };
        count += 1;
        kib += rss;
    }
    (count, kib / 1024)
}

fn print_table(database: &str, tally: &Tally, length: Duration, drained: Duration) {
    println!(
        "\n{database}: {:<15} {:>8} {:>10} {:>7} {:>8} {:>10} {:>8} {:>8} {:>8}",
        "route",
        "target/s",
        "achieved/s",
        "count",
        "expected",
        "unexpected",
        "p50 ms",
        "p99 ms",
        "max ms"
    );
    for route in Route::ALL {
        let latencies = tally.sorted(route);
        let expected: u64 = tally
            .expected
            .iter()
            .filter(|((of, _), _)| *of == route)
            .map(|(_, n)| n)
            .sum();
        let unexpected = tally
            .unexpected
            .iter()
            .filter(|error| error.route == route)
            .count();
        let achieved =
            tally.on_time.get(&route).copied().unwrap_or(0) as f64 / length.as_secs_f64();
        println!(
            "{database}: {:<15} {:>8.1} {:>10.1} {:>7} {:>8} {:>10} {:>8.1} {:>8.1} {:>8.1}",
            route.label(),
            route.per_second(),
            achieved,
            latencies.len(),
            expected,
            unexpected,
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies.last().map_or(f64::NAN, |max| ms(*max)),
        );
    }
    for ((route, what), n) in &tally.expected {
        println!(
            "{database}: expected answers, {}: {what} x {n}",
            route.label()
        );
    }
    for (route, n) in &tally.skipped {
        println!(
            "{database}: skipped, {}: {n} (nothing started yet to act on)",
            route.label()
        );
    }
    let mut waits = tally.waits.clone();
    waits.sort_unstable();
    println!(
        "{database}: queue wait (due -> started) p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; the last operation ended {:.1} s after the traffic's {} s",
        percentile(&waits, 50.0),
        percentile(&waits, 99.0),
        waits.last().map_or(f64::NAN, |max| ms(*max)),
        drained.saturating_sub(length).as_secs_f64(),
        length.as_secs(),
    );
}

/// The `q`th percentile (nearest rank) of `sorted`, in milliseconds; NaN
/// when empty.
fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q / 100.0 * sorted.len() as f64).ceil() as usize;
    ms(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// An error and its causes, on one line.
fn describe(error: impl std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Waits until graph `name` is live.
fn wait_live(client: &Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.graph(name) {
            Ok(graph) if graph.health["state"] == "live" => return,
            Ok(_) | Err(ClientError::Refused { status: 404, .. }) => {}
            Err(error) => panic!("reading graph {name}: {}", describe(error)),
        }
        assert!(Instant::now() < deadline, "graph {name} never went live");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until no execution is running.
fn wait_none_running(client: &Client) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let running = client
            .executions(&ExecutionQuery {
                status: Some("running".to_owned()),
                workflow: None,
                limit: 1,
                offset: 0,
            })
            .unwrap_or_else(|error| panic!("counting the running executions: {}", describe(error)))
            .total;
        if running == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{running} executions still running {SETTLE:?} after the traffic stopped"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every execution's status, by id.
fn statuses(client: &Client) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    let mut offset = 0;
    loop {
        let page = client
            .executions(&ExecutionQuery {
                status: None,
                workflow: None,
                limit: 500,
                offset,
            })
            .unwrap_or_else(|error| panic!("listing the executions: {}", describe(error)));
        let got = page.items.len();
        for item in page.items {
            all.insert(item.id, item.status);
        }
        offset += got as u32;
        if got == 0 || all.len() as u64 >= page.total {
            return all;
        }
    }
}

/// Waits (a minute at most) until the `counter` graph has taken every
/// event; its firings, and the events still pending (None: not said).
fn counter_fires(client: &Client) -> (i64, Option<u64>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let graph = client
            .graph("counter")
            .unwrap_or_else(|error| panic!("reading graph counter: {}", describe(error)));
        if graph.pending_events.is_none_or(|pending| pending == 0) || Instant::now() >= deadline {
            return (graph.fires, graph.pending_events);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
