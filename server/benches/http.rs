//! The server under load, on loopback, SQLite and PostgreSQL side by side:
//!
//! - authenticated `GET` of an execution, and `POST execute` of a no-op
//!   workflow: requests/s, p50, p99 (keep-alive connections, a bounded run);
//! - a 10-task no-op chain: execute → `Completed` seen by polling `GET`
//!   (p50, p99), and tasks/s with many chains at once;
//! - `POST execute` → the first event pushed on the delivery socket.
//!
//!   cargo bench -p cloacina-server --bench http
//!
//! The load generator is a few keep-alive HTTP/1.1 connections written by
//! hand (no client library), in the same process, on the same two cores as
//! the server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloacina_bench_record::record;
use cloacina_contract::Identifier;
use cloacina_contract::manifest::{RetryPolicy, TaskDeclaration};
use cloacina_runtime::{FunctionPlugin, PackageRef, TenantId, Workflow};
use cloacina_server::{RunningServer, ServerConfig};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "clk_benchbenchbenchbenchbenchbench";
const CONNECTIONS: usize = 32;
const RUN: Duration = Duration::from_secs(5);
/// This bench's name in `docs/performance/records.jsonl`.
const BENCH: &str = "http";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    runtime.block_on(async {
        let home = tempfile::tempdir().expect("home");
        let sqlite = format!("sqlite://{}", home.path().join("cloacina.db").display());
        let only_postgres = std::env::var("CLOACINA_BENCH_DB").is_ok_and(|v| v == "postgres");
        if !only_postgres {
            bench("SQLite", &sqlite, home.path()).await;
        }
        match cloacina_tests::postgres_url() {
            Some(base) => {
                let database = cloacina_tests::unique_schema("bench");
                let admin = sqlx::PgPool::connect(&base).await.expect("connects");
                sqlx::query(&format!("CREATE DATABASE {database}"))
                    .execute(&admin)
                    .await
                    .expect("creates a database");
                let url = format!("{}/{database}", base.rsplit_once('/').expect("url").0);
                let home = tempfile::tempdir().expect("home");
                bench("PostgreSQL", &url, home.path()).await;
                let _ = sqlx::query(&format!("DROP DATABASE {database} WITH (FORCE)"))
                    .execute(&admin)
                    .await;
            }
            None => println!("PostgreSQL: skipped (unreachable)"),
        }
    });
}

async fn bench(label: &str, url: &str, home: &std::path::Path) {
    let mut host = cloacina_host::HostConfig::new(url, home.join("cache"));
    // What `server start` runs with by default.
    host.runner.max_concurrent_tasks = 256;
    if let Some(limit) = std::env::var("CLOACINA_BENCH_MAX_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        host.runner.max_concurrent_tasks = limit;
    }
    let server = cloacina_server::start(ServerConfig {
        host,
        bind: "127.0.0.1:0".parse().expect("addr"),
        home: home.to_owned(),
        bootstrap_key: Some(KEY.to_owned()),
        metrics_need_auth: false,
        limits: cloacina_server::Limits::default(),
        ready_ignores_graphs: false,
        console: true,
        tls: None,
    })
    .await
    .expect("server starts");
    register(&server).await;
    let addr = server.addr();
    // The figures' prefix in the records.
    let db = if label == "SQLite" {
        "sqlite"
    } else {
        "postgres"
    };
    println!("\n== {label} ==");

    let only_chains = std::env::var("CLOACINA_BENCH_ONLY").is_ok_and(|v| v == "chains");
    if !only_chains {
        // A running execution is read from the database each time; an
        // ended one is answered from memory.
        let running = post(addr, "/v1/tenants/public/workflows/wait/execute", "{}").await;
        let running = running["execution_id"].as_str().expect("id").to_owned();
        let gets = load(
            addr,
            Request::Get(format!("/v1/tenants/public/executions/{running}")),
        )
        .await;
        gets.print(
            "GET execution (running: read from the database)",
            &format!("{db}.get_running"),
        );
        let one = post(addr, "/v1/tenants/public/workflows/noop/execute", "{}").await;
        let id = one["execution_id"].as_str().expect("id").to_owned();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let gets = load(
            addr,
            Request::Get(format!("/v1/tenants/public/executions/{id}")),
        )
        .await;
        gets.print(
            "GET execution (ended: from memory)",
            &format!("{db}.get_ended"),
        );
        let runner = server
            .host()
            .tenant(&TenantId::public())
            .await
            .expect("tenant")
            .runner()
            .clone();
        runner
            .cancel(running.parse().expect("id"))
            .await
            .expect("cancels");
        let executes = load(
            addr,
            Request::Post(
                "/v1/tenants/public/workflows/noop/execute".into(),
                "{}".into(),
            ),
        )
        .await;
        executes.print("POST execute (no-op)", &format!("{db}.post_execute"));
    }

    // 10-task chain, one at a time: execute -> Completed, polled.
    let mut latencies = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let run = post(addr, "/v1/tenants/public/workflows/chain/execute", "{}").await;
        let path = format!(
            "/v1/tenants/public/executions/{}",
            run["execution_id"].as_str().expect("id")
        );
        loop {
            let status = get(addr, &path).await;
            if status["status"] == "Completed" {
                break;
            }
            assert_ne!(status["status"], "Failed", "{status}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let (p50, p99) = (
        ms(latencies[latencies.len() / 2]),
        ms(latencies[latencies.len() * 99 / 100]),
    );
    record(BENCH, &format!("{db}.chain10_p50_ms"), p50, "ms");
    record(BENCH, &format!("{db}.chain10_p99_ms"), p99, "ms");
    println!("10-task chain, execute -> Completed (polled): p50 {p50:.1} ms, p99 {p99:.1} ms");

    // Many chains at once, started over keep-alive connections: tasks/s.
    let chains = 1000;
    let started = Instant::now();
    let mut posters = Vec::new();
    for _ in 0..CONNECTIONS {
        posters.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connects");
            stream.set_nodelay(true).expect("nodelay");
            let mut stream = BufReader::new(stream);
            let request = Request::Post(
                "/v1/tenants/public/workflows/chain/execute".into(),
                "{}".into(),
            )
            .bytes();
            let mut ids = Vec::new();
            for _ in 0..chains / CONNECTIONS {
                stream.get_mut().write_all(&request).await.expect("writes");
                let (status, body) = read_response(&mut stream).await;
                assert_eq!(status, 202);
                let body: Value = serde_json::from_slice(&body).expect("json");
                ids.push(body["execution_id"].as_str().expect("id").to_owned());
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for poster in posters {
        ids.extend(poster.await.expect("poster"));
    }
    let chains = ids.len();
    let runner = server
        .host()
        .tenant(&TenantId::public())
        .await
        .expect("tenant")
        .runner()
        .clone();
    for id in &ids {
        let result = runner.wait(id.parse().expect("id")).await.expect("ends");
        assert_eq!(result.status, cloacina_runtime::ExecutionStatus::Completed);
    }
    let took = started.elapsed();
    let tasks_per_s = (chains * 10) as f64 / took.as_secs_f64();
    record(
        BENCH,
        &format!("{db}.chains_tasks_per_s"),
        tasks_per_s,
        "tasks/s",
    );
    println!(
        "{chains} chains of 10 tasks started over HTTP: {tasks_per_s:.0} tasks/s ({:.2} s)",
        took.as_secs_f64()
    );

    // POST execute -> first push on the delivery socket.
    let mut first_push = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let run = post(addr, "/v1/tenants/public/workflows/noop/execute", "{}").await;
        let id = run["execution_id"].as_str().expect("id");
        let socket_url = format!(
            "ws://{addr}/v1/ws/delivery/exec_events:{id}?token={}",
            ticket(addr).await
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(socket_url)
            .await
            .expect("connects");
        socket
            .send(Message::text(
                json!({"type": "hello", "protocol_version": 1, "since_id": null}).to_string(),
            ))
            .await
            .expect("hello");
        loop {
            let Some(Ok(Message::Text(frame))) = socket.next().await else {
                panic!("the socket closed before a push");
            };
            let frame: Value = serde_json::from_str(frame.as_str()).expect("json");
            if frame["type"] == "push" {
                break;
            }
        }
        first_push.push(started.elapsed());
    }
    first_push.sort();
    let (p50, p99) = (
        ms(first_push[first_push.len() / 2]),
        ms(first_push[first_push.len() - 1]),
    );
    record(BENCH, &format!("{db}.first_push_p50_ms"), p50, "ms");
    record(BENCH, &format!("{db}.first_push_p99_ms"), p99, "ms");
    println!(
        "POST execute -> first event pushed on the socket (new connection each): p50 {p50:.1} ms, p99 {p99:.1} ms"
    );
    server.stop().await.expect("stops");
}

async fn register(server: &RunningServer) {
    let tenant = server
        .host()
        .tenant(&TenantId::public())
        .await
        .expect("tenant");
    let task = |id: &str, dependencies: &[String]| TaskDeclaration {
        id: Identifier::new(id).expect("id"),
        description: String::new(),
        dependencies: dependencies
            .iter()
            .map(|d| Identifier::new(d.as_str()).expect("id"))
            .collect(),
        retry: RetryPolicy::default(),
        timeout_ms: None,
        invokes: None,
    };
    let package = PackageRef {
        name: "bench".into(),
        version: semver::Version::new(1, 0, 0),
    };
    let mut plugin = FunctionPlugin::new();
    let mut chain = Vec::new();
    for i in 0..10 {
        let name = format!("t{i}");
        plugin = plugin.task(&name, |_, _| Ok(json!({})));
        let dependencies = if i == 0 {
            vec![]
        } else {
            vec![format!("t{}", i - 1)]
        };
        chain.push(task(&name, &dependencies));
    }
    let plugin = Arc::new(
        plugin
            .task("noop", |_, _| Ok(json!({})))
            // Runs until cancelled (at most a minute): an execution that is
            // still running, so reading it goes to the database.
            .task("wait", |_, control| {
                for _ in 0..6000 {
                    if control.should_stop() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(json!({}))
            }),
    );
    let runner = tenant.runner();
    runner
        .register_workflow(
            Workflow::new(
                "noop",
                package.clone(),
                vec![task("noop", &[])],
                plugin.clone(),
            )
            .expect("noop"),
        )
        .expect("registers");
    runner
        .register_workflow(
            Workflow::new(
                "wait",
                package.clone(),
                vec![task("wait", &[])],
                plugin.clone(),
            )
            .expect("wait"),
        )
        .expect("registers");
    runner
        .register_workflow(Workflow::new("chain", package, chain, plugin).expect("chain"))
        .expect("registers");
}

#[derive(Clone)]
enum Request {
    Get(String),
    Post(String, String),
}

impl Request {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Request::Get(path) => format!(
                "GET {path} HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {KEY}\r\n\r\n"
            )
            .into_bytes(),
            Request::Post(path, body) => format!(
                "POST {path} HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        }
    }
}

struct Figures {
    requests: usize,
    took: Duration,
    latencies: Vec<Duration>,
    errors: usize,
}

impl Figures {
    /// Prints the figures as `what`, and records them as `figure.*`.
    fn print(mut self, what: &str, figure: &str) {
        self.latencies.sort();
        let at = |q: usize| {
            self.latencies[(self.latencies.len() * q / 100).min(self.latencies.len() - 1)]
        };
        let per_s = self.requests as f64 / self.took.as_secs_f64();
        let (p50, p99) = (ms(at(50)), ms(at(99)));
        record(
            BENCH,
            &format!("{figure}.requests_per_s"),
            per_s,
            "requests/s",
        );
        record(BENCH, &format!("{figure}.p50_ms"), p50, "ms");
        record(BENCH, &format!("{figure}.p99_ms"), p99, "ms");
        println!(
            "{what}: {per_s:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms ({} requests, {} non-2xx, {CONNECTIONS} connections)",
            self.requests, self.errors
        );
    }
}

/// `CONNECTIONS` keep-alive connections sending `request` for `RUN`.
async fn load(addr: std::net::SocketAddr, request: Request) -> Figures {
    let started = Instant::now();
    let deadline = started + RUN;
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let request = request.bytes();
        workers.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connects");
            stream.set_nodelay(true).expect("nodelay");
            let mut stream = BufReader::new(stream);
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let sent = Instant::now();
                stream.get_mut().write_all(&request).await.expect("writes");
                let (status, _) = read_response(&mut stream).await;
                if !(200..300).contains(&status) {
                    errors += 1;
                }
                latencies.push(sent.elapsed());
            }
            (latencies, errors)
        }));
    }
    let mut figures = Figures {
        requests: 0,
        took: Duration::ZERO,
        latencies: Vec::new(),
        errors: 0,
    };
    for worker in workers {
        let (latencies, errors) = worker.await.expect("worker");
        figures.requests += latencies.len();
        figures.latencies.extend(latencies);
        figures.errors += errors;
    }
    figures.took = started.elapsed();
    figures
}

async fn read_response(stream: &mut BufReader<TcpStream>) -> (u16, Vec<u8>) {
    let mut line = String::new();
    stream.read_line(&mut line).await.expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut length = 0usize;
    loop {
        line.clear();
        stream.read_line(&mut line).await.expect("header");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().expect("length");
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.expect("body");
    (status, body)
}

async fn one(addr: std::net::SocketAddr, request: Request) -> Value {
    let stream = TcpStream::connect(addr).await.expect("connects");
    let mut stream = BufReader::new(stream);
    stream
        .get_mut()
        .write_all(&request.bytes())
        .await
        .expect("writes");
    let (status, body) = read_response(&mut stream).await;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert!((200..300).contains(&status), "{status}: {body}");
    body
}

async fn get(addr: std::net::SocketAddr, path: &str) -> Value {
    one(addr, Request::Get(path.to_owned())).await
}

async fn post(addr: std::net::SocketAddr, path: &str, body: &str) -> Value {
    one(addr, Request::Post(path.to_owned(), body.to_owned())).await
}

async fn ticket(addr: std::net::SocketAddr) -> String {
    post(addr, "/v1/auth/ws-ticket", "")
        .await
        .get("ticket")
        .and_then(Value::as_str)
        .expect("ticket")
        .to_owned()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
