//! Computation graphs, on loopback, SQLite and PostgreSQL side by side:
//!
//! - frame -> durable ack on the accumulator socket (ack mode, one
//!   producer, ~100-byte events, one frame in flight): p50, p99;
//! - acked events/s on one accumulator and one connection (pipelined, 1,024
//!   frames in flight);
//! - frame -> first node call (`when_any`, `latest`): p50, p99;
//! - sequential firings/s of the sample's 3-node `counter` graph, native
//!   and WebAssembly (the graph runtime, events pushed pipelined);
//! - a reactor panic -> live again: p50, max;
//! - two hosts on one PostgreSQL schema: event pushed to the host that
//!   does not own the graph -> node call on the owner (p50, p99), graceful
//!   handover, failover after the owner dies without releasing (lease TTL
//!   2 s, renewed every third).
//!
//!   cargo bench -p cloacina-server --bench graphs
//!
//! Client and server share the process and its two cores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloacina_bench_record::record;
use cloacina_contract::Identifier;
use cloacina_contract::manifest::{
    AccumulatorDeclaration, AccumulatorKind, ComputationGraphDeclaration, Declaration,
    GraphNodeDeclaration, InputStrategy, ReactionMode, ReactorDeclaration, RetryPolicy,
    TaskDeclaration,
};
use cloacina_graphs::{GraphConfig, GraphRuntime, ReactorHealth};
use cloacina_loader::Plugin;
use cloacina_runtime::{FunctionPlugin, PackageRef, Runner, RunnerConfig, TenantId};
use cloacina_server::{RunningServer, ServerConfig};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const KEY: &str = "clk_benchbenchbenchbenchbenchbench";
/// This bench's name in `docs/performance/records.jsonl`.
const BENCH: &str = "graphs";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    runtime.block_on(async {
        let home = tempfile::tempdir().expect("home");
        let sqlite = format!("sqlite://{}", home.path().join("cloacina.db").display());
        bench("SQLite", &sqlite, home.path()).await;
        match cloacina_tests::postgres_url() {
            Some(base) => {
                let (database, url) = cloacina_tests::fresh_database(&base, "gbench");
                let home = tempfile::tempdir().expect("home");
                bench("PostgreSQL", &url, home.path()).await;
                two_hosts(&url).await;
                cloacina_tests::drop_database(&base, &database);
            }
            None => println!("PostgreSQL: skipped (unreachable)"),
        }
    });
}

fn id(text: &str) -> Identifier {
    Identifier::new(text).expect("identifier")
}

/// Graph `probe`: passthrough `x`, `when_any`, `latest`, one node that
/// reports when it is called.
fn probe(calls: tokio::sync::mpsc::UnboundedSender<Instant>) -> (Declaration, Arc<FunctionPlugin>) {
    let declaration = Declaration {
        tasks: vec![TaskDeclaration {
            id: id("seen"),
            description: String::new(),
            dependencies: Vec::new(),
            retry: RetryPolicy::default(),
            timeout_ms: None,
            invokes: None,
        }],
        computation_graphs: vec![ComputationGraphDeclaration {
            name: id("probe"),
            description: String::new(),
            accumulators: vec![AccumulatorDeclaration::new(
                id("x"),
                AccumulatorKind::Passthrough,
            )],
            reactor: ReactorDeclaration {
                reaction_mode: ReactionMode::WhenAny,
                input_strategy: InputStrategy::Latest,
                sources: Vec::new(),
            },
            nodes: vec![GraphNodeDeclaration {
                id: id("seen"),
                inputs: vec![id("x")],
            }],
            subscriptions: Vec::new(),
        }],
        ..Declaration::default()
    };
    let plugin = FunctionPlugin::new().task("seen", move |_, _| {
        let _ = calls.send(Instant::now());
        Ok(Value::Null)
    });
    (declaration, Arc::new(plugin))
}

fn package(name: &str) -> PackageRef {
    PackageRef {
        name: name.into(),
        version: semver::Version::new(1, 0, 0),
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Records `d` in milliseconds as `figure`.
fn record_ms(figure: &str, d: Duration) {
    record(BENCH, figure, d.as_secs_f64() * 1e3, "ms");
}

/// The figures' prefix in the records for a bench label.
fn database(label: &str) -> &'static str {
    if label == "SQLite" {
        "sqlite"
    } else {
        "postgres"
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn producer(server: &RunningServer, accumulator: &str, ack: bool) -> Socket {
    let url = format!(
        "ws://{}/v1/ws/accumulator/{accumulator}{}",
        server.addr(),
        if ack { "?ack=1" } else { "" }
    );
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {KEY}").parse().expect("header"),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("connects")
        .0
}

/// An event of about 100 bytes.
fn event(n: u64) -> String {
    json!({"n": n, "sensor": "north-east-07", "reading": 21.5, "unit": "celsius", "pad": "xxxxxxxxxx"})
        .to_string()
}

async fn next_ack(socket: &mut Socket) -> u64 {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
                if frame["type"] == "ack" {
                    return frame["seq"].as_u64().expect("seq");
                }
            }
            Some(Ok(_)) => {}
            other => panic!("the socket ended: {other:?}"),
        }
    }
}

async fn bench(label: &str, url: &str, home: &std::path::Path) {
    println!("\n== {label} ==");
    let server = cloacina_server::start(ServerConfig {
        host: cloacina_host::HostConfig::new(url, home.join("cache")),
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
    let tenant = server
        .host()
        .tenant(&TenantId::public())
        .await
        .expect("tenant");
    let (calls, mut called) = tokio::sync::mpsc::unbounded_channel();
    let (declaration, plugin) = probe(calls);
    tenant
        .graphs()
        .register(&package("probe"), &declaration, plugin)
        .await
        .expect("registered");
    while tenant
        .graphs()
        .status("probe")
        .is_none_or(|s| s.health != ReactorHealth::Live)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Frame -> durable ack, one frame in flight.
    let mut socket = producer(&server, "x", true).await;
    let mut samples = Vec::new();
    for n in 1..=2_000u64 {
        let sent = Instant::now();
        socket.send(Message::text(event(n))).await.expect("sent");
        while next_ack(&mut socket).await < n {}
        samples.push(sent.elapsed());
    }
    let (p50, p99) = percentiles(samples);
    let db = database(label);
    record_ms(&format!("{db}.ack_p50_ms"), p50);
    record_ms(&format!("{db}.ack_p99_ms"), p99);
    println!(
        "frame -> durable ack (one in flight): p50 {}, p99 {}",
        ms(p50),
        ms(p99)
    );
    while called.try_recv().is_ok() {}

    // Acked events/s, pipelined.
    const EVENTS: u64 = 50_000;
    const WINDOW: u64 = 1_024;
    let started = Instant::now();
    let (mut sent, mut acked) = (0u64, 0u64);
    let (mut sink, mut stream) = socket.split();
    while acked < EVENTS {
        while sent < EVENTS && sent < acked + WINDOW {
            sent += 1;
            sink.send(Message::text(event(sent))).await.expect("sent");
        }
        if let Some(Ok(Message::Text(text))) = stream.next().await {
            let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
            if frame["type"] == "ack" {
                acked = frame["seq"].as_u64().expect("seq") - 2_000;
            }
        }
    }
    let took = started.elapsed();
    let acked_per_s = EVENTS as f64 / took.as_secs_f64();
    record(
        BENCH,
        &format!("{db}.acked_events_per_s"),
        acked_per_s,
        "events/s",
    );
    println!(
        "acked events/s, one connection, {WINDOW} in flight: {acked_per_s:.0} ({EVENTS} in {:.2} s)",
        took.as_secs_f64()
    );
    drop((sink, stream));
    tokio::time::sleep(Duration::from_millis(300)).await;
    while called.try_recv().is_ok() {}

    // Frame -> first node call.
    let mut socket = producer(&server, "x", false).await;
    let mut samples = Vec::new();
    for n in 0..1_000u64 {
        let sent = Instant::now();
        socket.send(Message::text(event(n))).await.expect("sent");
        let call = called.recv().await.expect("called");
        samples.push(call.saturating_duration_since(sent));
    }
    let (p50, p99) = percentiles(samples);
    record_ms(&format!("{db}.fire_p50_ms"), p50);
    record_ms(&format!("{db}.fire_p99_ms"), p99);
    println!(
        "frame -> first node call (when_any, latest): p50 {}, p99 {}",
        ms(p50),
        ms(p99)
    );
    server.stop().await.expect("stops");

    firings(
        label,
        url,
        "native",
        Arc::new(
            cloacina_loader::native::NativePlugin::load(cloacina_tests::sample_library("graph"))
                .expect("native sample"),
        ),
    )
    .await;
    let wasm = cloacina_loader::wasm::WasmRuntime::new(Default::default()).expect("engine");
    let component = wasm
        .load(&cloacina_tests::sample_component("graph"), None)
        .expect("wasm sample");
    firings(label, url, "WebAssembly", Arc::new(component)).await;
}

/// Sequential firings/s of the sample's `counter` (3 nodes), and panic ->
/// live, on the graph runtime without a server.
async fn firings(label: &str, url: &str, kind: &str, plugin: Arc<dyn Plugin>) {
    let tenant = TenantId::new(cloacina_tests::unique_schema("f")).expect("tenant");
    let runner = Runner::with_config(
        url,
        RunnerConfig {
            tenant: if url.starts_with("sqlite") {
                TenantId::public()
            } else {
                tenant.clone()
            },
            ..RunnerConfig::default()
        },
    )
    .await
    .expect("runner");
    let declaration = plugin.declaration().clone();
    let version = PackageRef {
        name: "graph".into(),
        version: semver::Version::new(0, 1, kind.len() as u64),
    };
    runner
        .register_package(version.clone(), &declaration, plugin.clone())
        .await
        .expect("workflows");
    // Every injected panic counts as a first failure (the last run was up
    // longer than the window), so this measures the immediate restart, not
    // the backoff that repeated crashes earn.
    let config = GraphConfig {
        supervision: cloacina_graphs::Supervision {
            window: Duration::ZERO,
            ..cloacina_graphs::Supervision::default()
        },
        ..GraphConfig::default()
    };
    let graphs = GraphRuntime::start(&runner, config).await.expect("graphs");
    graphs
        .register(&version, &declaration, plugin)
        .await
        .expect("graphs registered");
    while graphs
        .status("counter")
        .is_none_or(|s| s.health != ReactorHealth::Live)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = graphs.status("counter").expect("status").fires;
    const EVENTS: u64 = 5_000;
    let started = Instant::now();
    let mut accepted = Vec::with_capacity(EVENTS as usize);
    for n in 1..=EVENTS {
        accepted.push(
            graphs
                .accept("ticks", json!({"n": n}))
                .await
                .expect("accepted"),
        );
    }
    for one in accepted {
        one.durable().await.expect("durable");
    }
    while graphs.status("counter").expect("status").fires < before + EVENTS {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    let db = database(label);
    let firings_per_s = EVENTS as f64 / took.as_secs_f64();
    let kind_id = if kind == "native" { "native" } else { "wasm" };
    record(
        BENCH,
        &format!("{db}.{kind_id}.firings_per_s"),
        firings_per_s,
        "firings/s",
    );
    println!(
        "{label} sequential firings/s, 3-node graph, {kind}: {firings_per_s:.0} ({EVENTS} in {:.2} s)",
        took.as_secs_f64()
    );

    if kind == "native" {
        let mut samples = Vec::new();
        for _ in 0..30 {
            let restarts = graphs.status("counter").expect("status").restarts;
            let panicked = Instant::now();
            // The reactor may still be attaching after the last restart.
            while graphs.inject_panic("counter").is_err() {
                tokio::task::yield_now().await;
            }
            while graphs
                .status("counter")
                .is_none_or(|s| s.restarts == restarts || s.health != ReactorHealth::Live)
            {
                tokio::task::yield_now().await;
            }
            samples.push(panicked.elapsed());
        }
        let max = *samples.iter().max().expect("samples");
        let (p50, _) = percentiles(samples);
        record_ms(&format!("{db}.panic_live_p50_ms"), p50);
        record_ms(&format!("{db}.panic_live_max_ms"), max);
        println!(
            "{label} reactor panic -> live: p50 {}, max {}",
            ms(p50),
            ms(max)
        );
    }
    graphs.shutdown().await;
    runner.shutdown().await;
}

/// Two graph runtimes (two hosts) on one PostgreSQL schema.
async fn two_hosts(url: &str) {
    println!("\n== two hosts on one PostgreSQL ==");
    const TTL: Duration = Duration::from_secs(2);
    let tenant = TenantId::new(cloacina_tests::unique_schema("h")).expect("tenant");
    let (calls, mut called) = tokio::sync::mpsc::unbounded_channel();
    let (declaration, plugin) = probe(calls);
    let host = async || {
        let runner = Runner::with_config(
            url,
            RunnerConfig {
                tenant: tenant.clone(),
                ..RunnerConfig::default()
            },
        )
        .await
        .expect("runner");
        let graphs = GraphRuntime::start(
            &runner,
            GraphConfig {
                lease_ttl: TTL,
                ..GraphConfig::default()
            },
        )
        .await
        .expect("graphs");
        graphs
            .register(&package("probe"), &declaration, plugin.clone())
            .await
            .expect("registered");
        (runner, graphs)
    };
    let runs = |graphs: &GraphRuntime| graphs.owned_here().iter().any(|g| g == "probe");
    let (mut first, mut second) = (host().await, host().await);
    if !runs(&first.1) {
        std::mem::swap(&mut first, &mut second);
    }
    assert!(runs(&first.1), "one host runs the graph");

    let mut samples = Vec::new();
    for n in 0..500u64 {
        let sent = Instant::now();
        second.1.push("x", json!({"n": n})).await.expect("pushed");
        let call = called.recv().await.expect("called");
        samples.push(call.saturating_duration_since(sent));
    }
    let (p50, p99) = percentiles(samples);
    record_ms("two_hosts.remote_fire_p50_ms", p50);
    record_ms("two_hosts.remote_fire_p99_ms", p99);
    println!(
        "event at the non-owner -> node call on the owner: p50 {}, p99 {}",
        ms(p50),
        ms(p99)
    );

    let mut handovers = Vec::new();
    for _ in 0..5 {
        let stopping = Instant::now();
        first.1.shutdown().await;
        while !runs(&second.1) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        handovers.push(stopping.elapsed());
        first.0.shutdown().await;
        first = std::mem::replace(&mut second, host().await);
    }
    handovers.sort();
    record_ms("two_hosts.handover_p50_ms", handovers[handovers.len() / 2]);
    record_ms(
        "two_hosts.handover_max_ms",
        *handovers.last().expect("samples"),
    );
    println!(
        "graceful handover: p50 {}, max {}",
        ms(handovers[handovers.len() / 2]),
        ms(*handovers.last().expect("samples"))
    );

    let mut failovers = Vec::new();
    for _ in 0..3 {
        let died = Instant::now();
        first.1.abandon();
        while !runs(&second.1) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        failovers.push(died.elapsed());
        first.0.shutdown().await;
        first = std::mem::replace(&mut second, host().await);
    }
    failovers.sort();
    record_ms("two_hosts.failover_p50_ms", failovers[failovers.len() / 2]);
    record_ms(
        "two_hosts.failover_max_ms",
        *failovers.last().expect("samples"),
    );
    println!(
        "failover after the owner died (TTL {} s): p50 {}, max {}",
        TTL.as_secs(),
        ms(failovers[failovers.len() / 2]),
        ms(*failovers.last().expect("samples"))
    );
    for (runner, graphs) in [first, second] {
        graphs.shutdown().await;
        runner.shutdown().await;
    }
}
