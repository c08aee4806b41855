//! An external load generator: the real `cloacinactl server start`, a
//! process of its own, driven over HTTP from this one, so that the server's
//! figures do not share a process (or an async runtime) with the client's.
//! Four configurations: SQLite and PostgreSQL (a fresh database), each with
//! the server's defaults (native plugins in `cloacina-plugin-worker`
//! processes) and with `--in-process`. Each runs `chain10` (the `chain`
//! sample: ten no-op tasks in a line), uploaded unsigned over HTTP:
//!
//! - latency: sequential executions, execute -> `Completed` seen by polling
//!   `GET` the execution every millisecond: p50, p95, p99;
//! - throughput: executions submitted as fast as the client connections go
//!   (accepted/s while submitting), then the wait until the count of
//!   completed executions reaches them: tasks/s from the first submission
//!   to the last completion (seen by polling the count every 20 ms);
//! - mixed: writers submitting executions back to back while readers list
//!   executions and read one each time, for a fixed time: writes/s,
//!   reads/s, read p50 and p99, and executions completed/s meanwhile.
//! - CPU per task during the throughput part (Linux, from `/proc`): user +
//!   system time of the server and its worker processes, and of the
//!   PostgreSQL server's processes, divided by the tasks run; the load
//!   generator's own CPU is shown beside it (it shares the machine).
//!
//! It prints a table (one row per configuration and figure) and, with
//! `--json PATH` (or `CLOACINA_LOAD_JSON`), writes the figures as JSON. A
//! relative PATH is relative to `tests/`, where cargo runs benchmarks.
//!
//!   cargo bench -p cloacina-tests --bench load
//!   cargo bench -p cloacina-tests --bench load -- --json /tmp/load.json
//!
//! The environment sets the load (defaults in brackets; 0 skips a part):
//!
//! - `CLOACINA_LOAD_LATENCY` [200]: sequential executions for the latency;
//! - `CLOACINA_LOAD_EXECUTIONS` [3000]: executions for the throughput;
//! - `CLOACINA_LOAD_CLIENTS` [32]: client threads submitting them, each on
//!   a keep-alive connection of its own;
//! - `CLOACINA_LOAD_MIXED_SECS` [10], `CLOACINA_LOAD_WRITERS` [16],
//!   `CLOACINA_LOAD_READERS` [16]: the mixed part;
//! - `CLOACINA_LOAD_CONFIGS` [all]: some of `sqlite`, `sqlite-in-process`,
//!   `postgres`, `postgres-in-process`, comma-separated;
//! - `CLOACINACTL`: a `cloacinactl` already built, with
//!   `cloacina-plugin-worker` beside it. Without it both are built first
//!   (`cargo build -p cloacinactl -p cloacina-loader`, in this bench's
//!   profile);
//! - `CLOACINA_TEST_POSTGRES_URL`: the PostgreSQL server (else the local
//!   one); unreachable, its configurations are skipped with the reason.
//!
//! With the defaults a run takes a few minutes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cloacina_bench_record::record;
use cloacina_client::{Client, ClientError, ExecutionQuery};
use cloacina_tests::{ServerProcess, cloacinactl, cloacinactl_path, repo_root, sample_crate};
use cloacina_wire::executions::ExecuteRequest;
use serde_json::{Value, json};

const KEY: &str = "clk_benchbenchbenchbenchbenchbench";
/// This bench's name in `docs/performance/records.jsonl`.
const BENCH: &str = "load";
const TENANT: &str = "public";
const WORKFLOW: &str = "chain10";
const TASKS_PER_EXECUTION: usize = 10;
/// Executions run (and not counted) before the latency is measured: the
/// first calls start the worker process and warm the caches.
const WARM_UP: usize = 5;
/// How often the latency part reads an execution, waiting for its end.
const LATENCY_POLL: Duration = Duration::from_millis(1);
/// How often the throughput part counts the completed executions.
const COUNT_POLL: Duration = Duration::from_millis(20);
/// The throughput part gives up when no execution completed for this long.
const STALL: Duration = Duration::from_secs(60);

fn main() {
    let settings = Settings::read();
    let chosen: Vec<Configuration> = CONFIGURATIONS
        .into_iter()
        .filter(|configuration| settings.runs(configuration))
        .collect();
    assert!(
        !chosen.is_empty(),
        "CLOACINA_LOAD_CONFIGS names none of {}",
        CONFIGURATIONS.map(|c| c.name).join(", ")
    );
    let cloacinactl = binaries();
    let worker = cloacinactl.with_file_name(format!(
        "cloacina-plugin-worker{}",
        std::env::consts::EXE_SUFFIX
    ));
    let (packed, package) = pack_chain();
    let postgres = if chosen.iter().any(|c| c.database == Database::Postgres) {
        cloacina_tests::postgres_url()
    } else {
        None
    };
    println!(
        "\nload: {} sequential executions; {} executions from {} clients; mixed {} writers + {} readers for {} s; workflow {WORKFLOW} ({TASKS_PER_EXECUTION} no-op tasks)",
        settings.latency_runs,
        settings.executions,
        settings.clients,
        settings.writers,
        settings.readers,
        settings.mixed.as_secs()
    );

    let mut reports = Vec::new();
    for configuration in chosen {
        println!("\n== {} ==", configuration.label());
        let mut report = Report {
            configuration,
            figures: Vec::new(),
            skipped: None,
            failed: None,
        };
        let measured = if !configuration.in_process && !worker.is_file() {
            report.skipped = Some(format!(
                "{} is missing (build it: cargo build -p cloacina-loader)",
                worker.display()
            ));
            Ok(())
        } else {
            match (configuration.database, &postgres) {
                (Database::Sqlite, _) => measure(
                    &settings,
                    &cloacinactl,
                    &package,
                    configuration,
                    None,
                    &mut report.figures,
                ),
                (Database::Postgres, None) => {
                    report.skipped = Some("PostgreSQL is unreachable".to_owned());
                    Ok(())
                }
                (Database::Postgres, Some(base)) => {
                    let database = FreshDatabase::new(base);
                    measure(
                        &settings,
                        &cloacinactl,
                        &package,
                        configuration,
                        Some(database.url.as_str()),
                        &mut report.figures,
                    )
                }
            }
        };
        if let Some(reason) = &report.skipped {
            println!("  skipped: {reason}");
        }
        if let Err(error) = measured {
            println!("  FAILED: {error:#}");
            report.failed = Some(format!("{error:#}"));
        }
        // Every figure, those measured before a failure too, as
        // `<configuration>.<key>` (`postgres_in_process.latency_p50_ms`).
        let prefix = configuration.name.replace('-', "_");
        for figure in &report.figures {
            record(
                BENCH,
                &format!("{prefix}.{}", figure.key),
                figure.value,
                figure.unit,
            );
        }
        reports.push(report);
    }

    print_table(&reports);
    if let Some(path) = &settings.json {
        let document = serde_json::to_string_pretty(&to_json(&settings, &reports))
            .expect("the figures serialize");
        std::fs::write(path, document + "\n")
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
        println!("\nfigures written to {}", path.display());
    }
    drop(packed);
    if reports.iter().any(|report| report.failed.is_some()) {
        std::process::exit(1);
    }
}

/// How much load, and where the figures go.
#[derive(Debug)]
struct Settings {
    latency_runs: usize,
    executions: usize,
    clients: usize,
    mixed: Duration,
    writers: usize,
    readers: usize,
    configurations: Option<Vec<String>>,
    json: Option<PathBuf>,
}

impl Settings {
    fn read() -> Settings {
        let configurations = std::env::var("CLOACINA_LOAD_CONFIGS").ok().map(|list| {
            list.split(',')
                .map(|name| name.trim().to_lowercase())
                .filter(|name| !name.is_empty())
                .collect()
        });
        Settings {
            latency_runs: number("CLOACINA_LOAD_LATENCY", 200),
            executions: number("CLOACINA_LOAD_EXECUTIONS", 3000),
            clients: number("CLOACINA_LOAD_CLIENTS", 32).max(1),
            mixed: Duration::from_secs(number("CLOACINA_LOAD_MIXED_SECS", 10) as u64),
            writers: number("CLOACINA_LOAD_WRITERS", 16).max(1),
            readers: number("CLOACINA_LOAD_READERS", 16).max(1),
            configurations,
            json: json_path(),
        }
    }

    fn runs(&self, configuration: &Configuration) -> bool {
        self.configurations
            .as_ref()
            .is_none_or(|names| names.iter().any(|name| name == configuration.name))
    }
}

/// A whole number from the environment, or `default` when unset.
fn number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")),
        Err(_) => default,
    }
}

/// `--json PATH` or `--json=PATH` (cargo adds `--bench`, which is ignored
/// like any other argument), else `CLOACINA_LOAD_JSON`.
fn json_path() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg.to_str() == Some("--json") {
            return Some(PathBuf::from(args.next().expect("--json takes a path")));
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--json=")) {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("CLOACINA_LOAD_JSON")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Database {
    Sqlite,
    Postgres,
}

/// A database and where native libraries run.
#[derive(Debug, Clone, Copy)]
struct Configuration {
    name: &'static str,
    database: Database,
    in_process: bool,
}

const CONFIGURATIONS: [Configuration; 4] = [
    Configuration {
        name: "sqlite",
        database: Database::Sqlite,
        in_process: false,
    },
    Configuration {
        name: "sqlite-in-process",
        database: Database::Sqlite,
        in_process: true,
    },
    Configuration {
        name: "postgres",
        database: Database::Postgres,
        in_process: false,
    },
    Configuration {
        name: "postgres-in-process",
        database: Database::Postgres,
        in_process: true,
    },
];

impl Configuration {
    fn database_name(&self) -> &'static str {
        match self.database {
            Database::Sqlite => "SQLite",
            Database::Postgres => "PostgreSQL",
        }
    }

    fn plugins(&self) -> &'static str {
        if self.in_process {
            "in process"
        } else {
            "worker processes"
        }
    }

    fn label(&self) -> String {
        format!("{}, {}", self.database_name(), self.plugins())
    }
}

/// One measured figure.
#[derive(Debug, Clone)]
struct Figure {
    /// Its key in the JSON, with its unit.
    key: &'static str,
    /// Its name in the table.
    label: &'static str,
    value: f64,
    unit: &'static str,
}

impl Figure {
    fn new(key: &'static str, label: &'static str, value: f64, unit: &'static str) -> Figure {
        Figure {
            key,
            label,
            value,
            unit,
        }
    }
}

/// What one configuration gave: its figures (those measured before a
/// failure too), or why it was skipped or failed.
#[derive(Debug)]
struct Report {
    configuration: Configuration,
    figures: Vec<Figure>,
    skipped: Option<String>,
    failed: Option<String>,
}

/// A database of its own on the PostgreSQL server, dropped afterwards.
#[derive(Debug)]
struct FreshDatabase {
    base: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    fn new(base: &str) -> FreshDatabase {
        let (name, url) = cloacina_tests::fresh_database(base, "load");
        FreshDatabase {
            base: base.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        cloacina_tests::drop_database(&self.base, &self.name);
    }
}

/// `cloacinactl`, with `cloacina-plugin-worker` beside it: `CLOACINACTL`'s,
/// or both built now in this bench's profile, where [`cloacinactl_path`]
/// looks (`target/<profile>/`, next to `deps/` that holds this program).
fn binaries() -> PathBuf {
    if std::env::var_os("CLOACINACTL").is_none() {
        let profile = std::env::current_exe()
            .ok()
            .and_then(|exe| {
                let profile_dir = exe.parent()?.parent()?;
                Some(profile_dir.file_name()?.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "release".to_owned());
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(repo_root()).args([
            "build",
            "-p",
            "cloacinactl",
            "-p",
            "cloacina-loader",
        ]);
        match profile.as_str() {
            "debug" => {}
            "release" => {
                build.arg("--release");
            }
            other => {
                build.args(["--profile", other]);
            }
        }
        println!("building cloacinactl and cloacina-plugin-worker ({profile})");
        let status = build.status().expect("cannot run cargo");
        assert!(
            status.success(),
            "building cloacinactl and cloacina-plugin-worker failed ({status})"
        );
    }
    cloacinactl_path()
}

/// The `chain` sample packed (native, unsigned: the server takes unsigned
/// packages unless it runs with --require-signatures), in a scratch
/// directory kept as long as the first value lives.
fn pack_chain() -> (tempfile::TempDir, PathBuf) {
    let dir = cloacina_tests::scratch();
    let crate_dir = sample_crate("chain");
    let crate_dir = crate_dir.to_str().expect("the repository's path is UTF-8");
    println!("packing sample-packages/chain");
    cloacinactl(dir.path(), &["pack", crate_dir, "-o", "chain.cloacina"]).success();
    let package = dir.path().join("chain.cloacina");
    (dir, package)
}

/// Starts a server in `configuration` (on `database_url`, else SQLite in
/// its home), loads the package, measures, and stops it with SIGTERM.
fn measure(
    settings: &Settings,
    cloacinactl: &Path,
    package: &Path,
    configuration: Configuration,
    database_url: Option<&str>,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let home = tempfile::tempdir().context("cannot create the server's home")?;
    let mut args = vec!["server", "start"];
    if let Some(url) = database_url {
        args.extend(["--database-url", url]);
    }
    let mut server = ServerProcess::start_with(
        cloacinactl,
        &args,
        home.path(),
        KEY,
        configuration.in_process,
    );
    let url = format!("http://{}", server.addr);
    let meter = CpuMeter::new(server.pid(), configuration.database == Database::Postgres);
    let measured = measure_server(settings, &url, package, &meter, figures);
    if measured.is_ok() && Path::new("/proc/self/status").is_file() {
        let peak = server.memory_mib("VmHWM") as f64;
        let note = if configuration.in_process {
            ""
        } else {
            " (its worker processes not counted)"
        };
        println!("  server peak RSS {peak:.0} MiB{note}");
        figures.push(Figure::new(
            "server_peak_rss_mib",
            "server peak RSS",
            peak,
            "MiB",
        ));
    }
    match server.terminate(Duration::from_secs(60)) {
        Ok(status) if status.success() => {}
        Ok(status) => println!("  the server exited {status} after SIGTERM"),
        Err(error) => println!("  stopping the server: {error}"),
    }
    measured
}

fn measure_server(
    settings: &Settings,
    url: &str,
    package: &Path,
    meter: &CpuMeter,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let client = Client::new(url, KEY, TENANT);
    client
        .upload_package(package)
        .context("uploading the chain package")?;
    let loading = Instant::now();
    wait_loaded(&client)?;
    println!(
        "  uploaded; {WORKFLOW} loaded after {:.0} ms",
        ms(loading.elapsed())
    );
    for _ in 0..WARM_UP {
        run_one(&client).context("warming up")?;
    }
    if settings.latency_runs > 0 {
        latency(settings, &client, figures)?;
    }
    if settings.executions > 0 {
        throughput(settings, url, &client, meter, figures)?;
    }
    if !settings.mixed.is_zero() {
        mixed(settings, url, &client, figures)?;
    }
    Ok(())
}

/// Waits until the workflow's package is loaded.
fn wait_loaded(client: &Client) -> anyhow::Result<()> {
    let patience = Duration::from_secs(120);
    let deadline = Instant::now() + patience;
    loop {
        match client.workflow(WORKFLOW) {
            Ok(detail) if detail.build_status == "loaded" => return Ok(()),
            Ok(detail) if detail.build_status == "failed" => bail!(
                "{WORKFLOW} failed to load: {}",
                detail.build_error.unwrap_or_default()
            ),
            Ok(_) | Err(ClientError::Refused { status: 404, .. }) => {}
            Err(error) => return Err(error).context(format!("reading workflow {WORKFLOW}")),
        }
        if Instant::now() >= deadline {
            bail!("{WORKFLOW} was not loaded within {patience:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts one execution of the workflow with an empty context.
fn execute(client: &Client) -> anyhow::Result<String> {
    let request = ExecuteRequest {
        context: Some(json!({})),
        version: None,
    };
    let started = client
        .execute(WORKFLOW, &request)
        .with_context(|| format!("executing {WORKFLOW}"))?;
    Ok(started.execution_id)
}

/// One execution, from the request to `Completed` seen by polling.
fn run_one(client: &Client) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let id = execute(client)?;
    let deadline = started + Duration::from_secs(60);
    loop {
        let detail = client
            .execution(&id)
            .with_context(|| format!("reading execution {id}"))?;
        match detail.status.as_str() {
            "Completed" => return Ok(started.elapsed()),
            "Running" => {}
            other => bail!(
                "execution {id} ended {other}: {}",
                detail.error.unwrap_or_default()
            ),
        }
        if Instant::now() >= deadline {
            bail!("execution {id} still running after 60 s");
        }
        std::thread::sleep(LATENCY_POLL);
    }
}

/// How many executions have `status`: the `total` of one list page.
fn count(client: &Client, status: &str) -> anyhow::Result<u64> {
    let query = ExecutionQuery {
        status: Some(status.to_owned()),
        limit: 1,
        ..ExecutionQuery::default()
    };
    let page = client
        .executions(&query)
        .with_context(|| format!("counting the {status} executions"))?;
    Ok(page.total)
}

fn latency(settings: &Settings, client: &Client, figures: &mut Vec<Figure>) -> anyhow::Result<()> {
    let mut latencies = Vec::with_capacity(settings.latency_runs);
    for _ in 0..settings.latency_runs {
        latencies.push(run_one(client)?);
    }
    latencies.sort();
    let (p50, p95, p99) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 95.0),
        percentile(&latencies, 99.0),
    );
    println!(
        "  latency, {} sequential executions: p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms",
        latencies.len()
    );
    figures.extend([
        Figure::new("latency_p50_ms", "latency p50", p50, "ms"),
        Figure::new("latency_p95_ms", "latency p95", p95, "ms"),
        Figure::new("latency_p99_ms", "latency p99", p99, "ms"),
    ]);
    Ok(())
}

/// What one submitting or writing thread did.
#[derive(Debug, Default)]
struct Submitted {
    accepted: usize,
    refused: usize,
    first_error: Option<String>,
}

impl Submitted {
    fn record(&mut self, outcome: anyhow::Result<String>) {
        match outcome {
            Ok(_) => self.accepted += 1,
            Err(error) => {
                self.refused += 1;
                self.first_error.get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }

    fn merge(mut self, other: Submitted) -> Submitted {
        self.accepted += other.accepted;
        self.refused += other.refused;
        self.first_error = self.first_error.or(other.first_error);
        self
    }
}

fn throughput(
    settings: &Settings,
    url: &str,
    client: &Client,
    meter: &CpuMeter,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let completed_before = count(client, "completed")?;
    let failed_before = count(client, "failed")?;
    let next = &AtomicUsize::new(0);
    let cpu_before = meter.sample();
    let started = Instant::now();
    let submitted = std::thread::scope(|scope| {
        let submitters: Vec<_> = (0..settings.clients)
            .map(|_| {
                scope.spawn(move || {
                    let client = Client::new(url, KEY, TENANT);
                    let mut submitted = Submitted::default();
                    while next.fetch_add(1, Ordering::Relaxed) < settings.executions {
                        submitted.record(execute(&client));
                    }
                    submitted
                })
            })
            .collect();
        submitters
            .into_iter()
            .map(|submitter| submitter.join().expect("a submitting thread panicked"))
            .fold(Submitted::default(), Submitted::merge)
    });
    let submitting = started.elapsed();
    if submitted.accepted == 0 {
        bail!(
            "no execution was accepted: {}",
            submitted.first_error.unwrap_or_default()
        );
    }
    let accepted = submitted.accepted;
    let target = completed_before + accepted as u64;
    let mut progress = (completed_before, Instant::now());
    let finished = loop {
        let asked = Instant::now();
        let completed = count(client, "completed")?;
        if completed >= target {
            // The last completion happened before the count saw it: at
            // most one poll interval (and one request) before `asked`.
            break asked.duration_since(started);
        }
        let failed = count(client, "failed")?.saturating_sub(failed_before);
        if failed > 0 {
            bail!(
                "{failed} of the {accepted} executions failed ({} completed)",
                completed.saturating_sub(completed_before)
            );
        }
        if completed > progress.0 {
            progress = (completed, Instant::now());
        } else if progress.1.elapsed() >= STALL {
            bail!(
                "no execution completed for {STALL:?}: {} of {accepted} completed",
                completed.saturating_sub(completed_before)
            );
        }
        std::thread::sleep(COUNT_POLL);
    };
    let cpu = meter.sample().and_then(|after| after.since(&cpu_before));
    let accepted_per_s = accepted as f64 / submitting.as_secs_f64();
    let tasks_per_s = (accepted * TASKS_PER_EXECUTION) as f64 / finished.as_secs_f64();
    println!(
        "  throughput, {accepted} executions from {} clients: {accepted_per_s:.0} accepted/s ({:.2} s), {tasks_per_s:.0} tasks/s to the last completion ({:.2} s)",
        settings.clients,
        submitting.as_secs_f64(),
        finished.as_secs_f64()
    );
    figures.extend([
        Figure::new(
            "throughput_accepted_per_s",
            "throughput: accepted",
            accepted_per_s,
            "executions/s",
        ),
        Figure::new(
            "throughput_tasks_per_s",
            "throughput: tasks",
            tasks_per_s,
            "tasks/s",
        ),
    ]);
    if let Some(cpu) = cpu {
        let tasks = (accepted * TASKS_PER_EXECUTION) as f64;
        let per_task = |time: Duration| time.as_secs_f64() * 1e3 / tasks;
        let host = per_task(cpu.host);
        let database = cpu.database.map(per_task);
        let total = host + database.unwrap_or(0.0);
        let database_part = match database {
            Some(database) => format!(", database {database:.3} ms"),
            None if meter.postgres => ", no local PostgreSQL process seen".to_owned(),
            None => String::new(),
        };
        println!(
            "  CPU per task: {total:.3} ms (server and workers {host:.3} ms{database_part}; the load generator {:.3} ms)",
            per_task(cpu.client)
        );
        figures.push(Figure::new(
            "cpu_host_per_task_ms",
            "CPU per task: host",
            host,
            "ms",
        ));
        // With PostgreSQL, the total means something only with its share.
        if !meter.postgres || database.is_some() {
            figures.push(Figure::new(
                "cpu_per_task_ms",
                "CPU per task (host + database)",
                total,
                "ms",
            ));
        }
        if let Some(database) = database {
            figures.push(Figure::new(
                "cpu_database_per_task_ms",
                "CPU per task: database",
                database,
                "ms",
            ));
        }
    }
    if submitted.refused > 0 {
        println!(
            "  {} submissions refused, the first: {}",
            submitted.refused,
            submitted.first_error.unwrap_or_default()
        );
        figures.push(Figure::new(
            "throughput_refused",
            "throughput: refused",
            submitted.refused as f64,
            "requests",
        ));
    }
    Ok(())
}

/// What one reading thread saw.
#[derive(Debug, Default)]
struct Read {
    latencies: Vec<Duration>,
    failed: usize,
    first_error: Option<String>,
}

impl Read {
    fn record(&mut self, sent: Instant, outcome: Result<(), ClientError>) {
        match outcome {
            Ok(()) => self.latencies.push(sent.elapsed()),
            Err(error) => {
                self.failed += 1;
                self.first_error.get_or_insert_with(|| error.to_string());
            }
        }
    }

    fn merge(mut self, other: Read) -> Read {
        self.latencies.extend(other.latencies);
        self.failed += other.failed;
        self.first_error = self.first_error.or(other.first_error);
        self
    }
}

/// Readers list the newest executions and read one of them (a different
/// one each turn), while writers submit executions back to back.
fn reader(url: &str, first_turn: usize, deadline: Instant) -> Read {
    let client = Client::new(url, KEY, TENANT);
    let query = ExecutionQuery {
        limit: 20,
        ..ExecutionQuery::default()
    };
    let mut read = Read::default();
    let mut turn = first_turn;
    while Instant::now() < deadline {
        let sent = Instant::now();
        let page = client.executions(&query);
        let chosen = page
            .as_ref()
            .ok()
            .and_then(|page| page.items.get(turn % page.items.len().max(1)))
            .map(|item| item.id.clone());
        read.record(sent, page.map(|_| ()));
        if let Some(id) = chosen {
            let sent = Instant::now();
            read.record(sent, client.execution(&id).map(|_| ()));
        }
        turn += 1;
    }
    read
}

fn mixed(
    settings: &Settings,
    url: &str,
    client: &Client,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let completed_before = count(client, "completed")?;
    let started = Instant::now();
    let deadline = started + settings.mixed;
    let (written, read) = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..settings.writers)
            .map(|_| {
                scope.spawn(move || {
                    let client = Client::new(url, KEY, TENANT);
                    let mut submitted = Submitted::default();
                    while Instant::now() < deadline {
                        submitted.record(execute(&client));
                    }
                    submitted
                })
            })
            .collect();
        let readers: Vec<_> = (0..settings.readers)
            .map(|turn| scope.spawn(move || reader(url, turn, deadline)))
            .collect();
        let written = writers
            .into_iter()
            .map(|writer| writer.join().expect("a writing thread panicked"))
            .fold(Submitted::default(), Submitted::merge);
        let read = readers
            .into_iter()
            .map(|reader| reader.join().expect("a reading thread panicked"))
            .fold(Read::default(), Read::merge);
        (written, read)
    });
    let took = started.elapsed().as_secs_f64();
    let completed = count(client, "completed")?.saturating_sub(completed_before);
    let mut latencies = read.latencies;
    latencies.sort();
    let writes_per_s = written.accepted as f64 / took;
    let reads_per_s = latencies.len() as f64 / took;
    let completed_per_s = completed as f64 / took;
    println!(
        "  mixed, {} writers + {} readers for {took:.1} s: {writes_per_s:.0} writes/s, {reads_per_s:.0} reads/s, {completed_per_s:.0} executions completed/s",
        settings.writers, settings.readers
    );
    figures.extend([
        Figure::new(
            "mixed_writes_per_s",
            "mixed: writes",
            writes_per_s,
            "executions/s",
        ),
        Figure::new(
            "mixed_reads_per_s",
            "mixed: reads",
            reads_per_s,
            "requests/s",
        ),
        Figure::new(
            "mixed_completed_per_s",
            "mixed: completed meanwhile",
            completed_per_s,
            "executions/s",
        ),
    ]);
    if !latencies.is_empty() {
        let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
        println!("  mixed reads: p50 {p50:.2} ms, p99 {p99:.2} ms");
        figures.extend([
            Figure::new("mixed_read_p50_ms", "mixed: read p50", p50, "ms"),
            Figure::new("mixed_read_p99_ms", "mixed: read p99", p99, "ms"),
        ]);
    }
    let errors = written.refused + read.failed;
    if errors > 0 {
        println!(
            "  mixed: {} writes and {} reads failed, the first: {}",
            written.refused,
            read.failed,
            written.first_error.or(read.first_error).unwrap_or_default()
        );
        figures.push(Figure::new(
            "mixed_errors",
            "mixed: failed requests",
            errors as f64,
            "requests",
        ));
    }
    Ok(())
}

/// The `q`th percentile (nearest rank) of `sorted`, which is not empty, in
/// milliseconds.
fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let rank = (q / 100.0 * sorted.len() as f64).ceil() as usize;
    ms(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn print_table(reports: &[Report]) {
    let (configuration, figure, value, rule) = ("configuration", "figure", "value", "");
    println!("\n{configuration:<30} {figure:<28} {value:>12}  unit");
    println!("{rule:-<30} {rule:-<28} {rule:->12}  {rule:-<12}");
    for report in reports {
        let label = report.configuration.label();
        for figure in &report.figures {
            let value = if figure.unit == "ms" {
                format!("{:.2}", figure.value)
            } else {
                format!("{:.0}", figure.value)
            };
            println!(
                "{label:<30} {:<28} {value:>12}  {}",
                figure.label, figure.unit
            );
        }
        if let Some(reason) = &report.skipped {
            println!("{label:<30} skipped: {reason}");
        }
        if let Some(error) = &report.failed {
            println!("{label:<30} FAILED: {error}");
        }
    }
}

fn to_json(settings: &Settings, reports: &[Report]) -> Value {
    let configurations: Vec<Value> = reports
        .iter()
        .map(|report| {
            let figures: serde_json::Map<String, Value> = report
                .figures
                .iter()
                .map(|figure| (figure.key.to_owned(), json!(figure.value)))
                .collect();
            let mut entry = json!({
                "name": report.configuration.name,
                "database": report.configuration.database_name(),
                "native_plugins": report.configuration.plugins(),
                "figures": figures,
            });
            if let Some(reason) = &report.skipped {
                entry["skipped"] = json!(reason);
            }
            if let Some(error) = &report.failed {
                entry["failed"] = json!(error);
            }
            entry
        })
        .collect();
    json!({
        "workflow": WORKFLOW,
        "tasks_per_execution": TASKS_PER_EXECUTION,
        "settings": {
            "latency_executions": settings.latency_runs,
            "throughput_executions": settings.executions,
            "clients": settings.clients,
            "mixed_seconds": settings.mixed.as_secs(),
            "mixed_writers": settings.writers,
            "mixed_readers": settings.readers,
        },
        "configurations": configurations,
    })
}

/// CPU time read from `/proc`: the server's process tree (its worker
/// processes, and those it reaped), the PostgreSQL server's processes when
/// the configuration uses it, and this process. Nothing off Linux.
struct CpuMeter {
    server: u32,
    postgres: bool,
    ticks_per_second: f64,
}

/// CPU time used so far, or in a window.
#[derive(Debug, Clone, Copy, Default)]
struct CpuTimes {
    host: Duration,
    /// None when no local PostgreSQL process was seen (or none is used).
    database: Option<Duration>,
    client: Duration,
}

/// One process's line of `/proc/PID/stat`, the fields used here.
struct ProcessStat {
    pid: u32,
    parent: u32,
    name: String,
    /// utime + stime + cutime + cstime, in clock ticks.
    ticks: u64,
}

impl CpuMeter {
    fn new(server: u32, postgres: bool) -> CpuMeter {
        // The kernel's USER_HZ; 100 on every Linux this runs on.
        let ticks_per_second = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0);
        CpuMeter {
            server,
            postgres,
            ticks_per_second,
        }
    }

    fn sample(&self) -> Option<CpuTimes> {
        let processes: Vec<ProcessStat> = std::fs::read_dir("/proc")
            .ok()?
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(process_stat)
            .collect();
        let parents: std::collections::HashMap<u32, u32> =
            processes.iter().map(|p| (p.pid, p.parent)).collect();
        let in_server_tree = |mut pid: u32| {
            while pid > 1 {
                if pid == self.server {
                    return true;
                }
                pid = parents.get(&pid).copied().unwrap_or(0);
            }
            false
        };
        let mut host = 0;
        let mut database = None;
        for process in &processes {
            if in_server_tree(process.pid) {
                host += process.ticks;
            } else if self.postgres && process.name == "postgres" {
                *database.get_or_insert(0) += process.ticks;
            }
        }
        let client = process_stat(std::process::id())?.ticks;
        let time = |ticks: u64| Duration::from_secs_f64(ticks as f64 / self.ticks_per_second);
        Some(CpuTimes {
            host: time(host),
            database: database.map(time),
            client: time(client),
        })
    }
}

impl CpuTimes {
    /// The time used since `before` (None when either was not read).
    fn since(self, before: &Option<CpuTimes>) -> Option<CpuTimes> {
        let before = before.as_ref()?;
        Some(CpuTimes {
            host: self.host.saturating_sub(before.host),
            database: self
                .database
                .zip(before.database)
                .map(|(after, before)| after.saturating_sub(before)),
            client: self.client.saturating_sub(before.client),
        })
    }
}

/// Reads `/proc/PID/stat` (None once the process is gone).
fn process_stat(pid: u32) -> Option<ProcessStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may hold spaces: split around them.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // After the name: state (0), ppid (1), ... utime (11), stime (12),
    // cutime (13), cstime (14).
    let number = |index: usize| fields.get(index)?.parse::<u64>().ok();
    Some(ProcessStat {
        pid,
        parent: u32::try_from(number(1)?).ok()?,
        name,
        ticks: number(11)? + number(12)? + number(13)? + number(14)?,
    })
}
