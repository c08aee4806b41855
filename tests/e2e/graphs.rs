//! A host killed with SIGKILL while a producer streams events to a graph
//! in acknowledged mode, again and again: after the last restart every
//! acknowledged event has fired, in order, and no event is in two firing
//! records. The producer does what a client of the ack protocol does:
//! after a disconnection it resends everything after its last ack.
//!
//! `CLOACINA_GRAPH_KILL_TRIALS` sets the number of kills (default 20).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::outage::get;
use crate::serving::{Server, bootstrap_key, signed_and_trusted};
use cloacina_tests::cloacinactl;

/// Frames in flight before the producer waits for an ack.
const WINDOW: u64 = 128;

pub(crate) fn address(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().expect("address")
}

/// Waits until graph `counter` is live on the server at `addr`.
fn wait_live(addr: SocketAddr, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) = get(addr, "/v1/health/graphs/counter", key);
        if status == 200 && body.contains(r#""health":{"state":"live"}"#) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "counter never went live: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Streams `{"n": from..}` until the connection breaks; the highest `n`
/// acknowledged.
async fn produce(addr: SocketAddr, key: String, from: u64, acked: tokio::sync::watch::Sender<u64>) {
    let url = format!("ws://{addr}/v1/ws/accumulator/ticks?ack=1");
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("header"),
    );
    let Ok((socket, _)) = tokio_tungstenite::connect_async(request).await else {
        return;
    };
    let (mut sink, mut stream) = socket.split();
    let mut sent = 0u64;
    let mut confirmed = 0u64;
    loop {
        while sent < confirmed + WINDOW {
            sent += 1;
            let event = json!({"n": from + sent - 1}).to_string();
            if sink.send(Message::text(event)).await.is_err() {
                return;
            }
        }
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
                assert_eq!(frame["type"], "ack", "{frame}");
                confirmed = frame["seq"].as_u64().expect("seq");
                let _ = acked.send(from + confirmed - 1);
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return,
        }
    }
}

#[test]
fn acknowledged_events_survive_repeated_kill_9_in_order_and_once_each() {
    let trials: u64 = std::env::var("CLOACINA_GRAPH_KILL_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let dir = signed_and_trusted("graph");
    cloacinactl(
        dir.path(),
        &["package", "upload", "graph.cloacina", "--home", "host"],
    )
    .success();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut last_acked = 0u64;
    for trial in 0..trials {
        let mut server = Server::start_with(dir.path(), &["--in-process"]);
        let addr = address(&server.url());
        let key = bootstrap_key(dir.path());
        wait_live(addr, &key);
        let (acked, watch) = tokio::sync::watch::channel(last_acked);
        let producer = runtime.spawn(produce(addr, key, last_acked + 1, acked));
        // Kill at a different point of the stream each time.
        std::thread::sleep(Duration::from_millis(60 + (trial * 37) % 240));
        server.kill();
        runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), producer).await })
            .expect("the producer sees the kill")
            .expect("the producer ends");
        let now = *watch.borrow();
        assert!(now >= last_acked);
        last_acked = now;
    }
    assert!(
        last_acked > trials,
        "too few events were acknowledged: {last_acked}"
    );

    // A last start drains the inbox.
    let mut server = Server::start_with(dir.path(), &["--in-process"]);
    let addr = address(&server.url());
    let key = bootstrap_key(dir.path());
    wait_live(addr, &key);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, _, body) = get(addr, "/v1/health/graphs/counter", &key);
        let status: Value = serde_json::from_str(&body).expect("JSON");
        if status["pending_events"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the inbox never drained: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.terminate();

    let firings = runtime.block_on(firing_log(&dir.path().join("host/cloacina.db")));
    assert!(firings.iter().all(|f| f.ok), "a firing failed");
    // No inbox event is consumed by two firings.
    for pair in firings.windows(2) {
        assert!(
            pair[0].seq < pair[1].seq,
            "event {} fired twice or out of order",
            pair[1].seq
        );
    }
    // Every acknowledged event fired, and first occurrences are in order
    // (a resent event that had been committed fires again, after itself).
    let mut first_seen = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for firing in &firings {
        if seen.insert(firing.n) {
            first_seen.push(firing.n);
        }
    }
    assert!(
        first_seen.windows(2).all(|w| w[0] < w[1]),
        "events fired out of order"
    );
    eprintln!(
        "{trials} kills: {last_acked} events acknowledged, {} firings ({} of resent events)",
        firings.len(),
        firings.len() - first_seen.len()
    );
    let missing: Vec<u64> = (1..=last_acked).filter(|n| !seen.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged events never fired: {missing:?}"
    );
}

struct Fired {
    seq: i64,
    n: u64,
    ok: bool,
}

async fn firing_log(database: &std::path::Path) -> Vec<Fired> {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", database.display());
    let mut connection = sqlx::AnyConnection::connect(&url).await.expect("database");
    let rows: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT first_seq, ok, outputs FROM graph_firings WHERE graph = 'counter' ORDER BY id",
    )
    .fetch_all(&mut connection)
    .await
    .expect("firings");
    rows.into_iter()
        .map(|(seq, ok, outputs)| {
            let outputs: Value =
                serde_json::from_str(outputs.as_deref().unwrap_or("null")).expect("JSON");
            Fired {
                seq,
                n: outputs["count"]["n"].as_u64().unwrap_or(0),
                ok: ok != 0,
            }
        })
        .collect()
}

/// `graph list --json`, by graph name.
fn graphs_by_name(
    remote: &dyn Fn(&[&str]) -> cloacina_tests::Outcome,
) -> serde_json::Map<String, Value> {
    let listed = remote(&["--json", "graph", "list"]).success().json();
    listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|graph| {
            let name = graph["name"].as_str().expect("name").to_owned();
            (name, graph.clone())
        })
        .collect()
}

/// Polls `graph list --json` until `done` holds for graph `name`; its
/// status then.
fn wait_graph(
    remote: &dyn Fn(&[&str]) -> cloacina_tests::Outcome,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let graph = graphs_by_name(remote).remove(name).unwrap_or(Value::Null);
        if done(&graph) {
            return graph;
        }
        assert!(Instant::now() < deadline, "{name} never {what}: {graph}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `graph` commands against a real server: list, push (acked, over
/// the accumulator socket), firings, fire (force and with inputs),
/// pause/resume and show; exit codes follow the server's answers.
#[test]
fn the_graph_commands_drive_a_server() {
    let dir = signed_and_trusted("graph");
    cloacinactl(
        dir.path(),
        &["package", "upload", "graph.cloacina", "--home", "host"],
    )
    .success();
    let mut server = Server::start_with(dir.path(), &["--in-process"]);
    let url = server.url();
    let key = bootstrap_key(dir.path());
    let remote = |args: &[&str]| {
        cloacinactl(
            dir.path(),
            &[args, &["--server", &url, "--api-key", &key]].concat(),
        )
    };
    let started = Instant::now();

    // 1. Both graphs of the package go live.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let graphs = graphs_by_name(&remote);
        let live = |name: &str| {
            graphs
                .get(name)
                .is_some_and(|g| g["health"]["state"] == "live")
        };
        if live("climate") && live("counter") {
            assert_eq!(graphs["climate"]["reaction_mode"], "when_all");
            assert_eq!(graphs["counter"]["input_strategy"], "sequential");
            assert_eq!(graphs["climate"]["source_package"], "graph");
            assert_eq!(graphs["counter"]["fires"], 0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the graphs never went live: {graphs:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let listed = remote(&["graph", "list"]).success();
    assert!(
        listed.stdout.contains("climate") && listed.stdout.contains("graph@0.1.0"),
        "{listed}"
    );

    // 2. 2000 ticks, pushed twice: every one acknowledged, none rejected.
    let ticks: String = (1..=2000).map(|n| format!("{{\"n\": {n}}}\n")).collect();
    std::fs::write(dir.path().join("ticks.jsonl"), ticks).expect("write");
    let pushed = remote(&["graph", "push", "ticks", "ticks.jsonl"]).success();
    assert_eq!(pushed.stdout.trim(), "acked 2000 events", "{pushed}");
    let pushed = remote(&["--json", "graph", "push", "ticks", "ticks.jsonl"])
        .success()
        .json();
    assert_eq!(pushed["sent"], 2000, "{pushed}");
    assert_eq!(pushed["acked"], 2000, "{pushed}");
    assert_eq!(pushed["rejected"], json!([]), "{pushed}");

    // 3. The counter fires once per tick, in order: the newest 1000
    // firings are the second push's last 1000 ticks, newest first.
    let counter = wait_graph(&remote, "counter", "fired 4000 times", |g| {
        g["pending_events"] == 0 && g["fires"].as_u64().unwrap_or(0) >= 4000
    });
    assert_eq!(counter["fires"], 4000, "{counter}");
    let firings = remote(&["graph", "firings", "counter", "--limit", "1000", "--json"])
        .success()
        .json();
    let items = firings["items"].as_array().expect("items");
    assert_eq!(items.len(), 1000);
    assert!(
        items
            .iter()
            .all(|f| f["ok"] == true && f["manual"] == false)
    );
    let counts: Vec<u64> = items
        .iter()
        .map(|f| f["outputs"]["count"]["n"].as_u64().expect("count.n"))
        .collect();
    assert_eq!(counts[0], 2000, "the newest firing is the last tick");
    for pair in counts.windows(2) {
        assert_eq!(pair[0], pair[1] + 1, "a gap or disorder in {counts:?}");
    }
    let ids: Vec<u64> = items
        .iter()
        .map(|f| f["id"].as_u64().expect("id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let table = remote(&["graph", "firings", "counter", "--limit", "2"]).success();
    assert!(
        table.stdout.contains(r#"{"count":{"n":2000}"#)
            && table.stdout.contains(r#"{"count":{"n":1999}"#),
        "{table}"
    );

    // 4. An unknown accumulator is not found (11); a line that is not
    // JSON is refused before anything is sent (2).
    remote(&["graph", "push", "nope", "ticks.jsonl"])
        .failure(11, "accumulator 'nope' not registered");
    std::fs::write(
        dir.path().join("bad.jsonl"),
        "{\"n\": 1}\n{\"n\": 2}\n{\"n\": 3\n{\"n\": 4}\n",
    )
    .expect("write");
    remote(&["graph", "push", "ticks", "bad.jsonl"])
        .failure(2, "line 3, column 7: not a JSON document");
    let refused = remote(&["--json", "graph", "push", "ticks", "bad.jsonl"]);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert_eq!(refused.json()["code"], "usage", "{refused}");
    assert!(
        refused.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("line 3")),
        "{refused}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let counter = &graphs_by_name(&remote)["counter"];
    assert_eq!(counter["fires"], 4000, "nothing was sent: {counter}");
    assert_eq!(counter["pending_events"], 0, "nothing was sent: {counter}");

    // 5. A temperature but no humidity yet: climate waits (when_all), and
    // fired by hand its `assess` fails (7). Fired with both, it is hot.
    let pushed = remote(&["graph", "push", "temperature", "temperature.jsonl"]);
    assert_eq!(pushed.code, Some(2), "no such file: {pushed}");
    std::fs::write(dir.path().join("temperature.jsonl"), "{\"celsius\": 20}\n").expect("write");
    let pushed = remote(&["graph", "push", "temperature", "temperature.jsonl"]).success();
    assert_eq!(pushed.stdout.trim(), "acked 1 event", "{pushed}");
    let climate = wait_graph(&remote, "climate", "took the temperature", |g| {
        g["pending_events"] == 0
    });
    assert_eq!(
        climate["fires"], 0,
        "when_all waits for humidity: {climate}"
    );
    let failed = remote(&["graph", "fire", "climate"]).failure(7, "of climate failed");
    assert!(
        failed.stdout.contains("fired climate (force_fire): failed")
            && failed.stdout.contains("no `humidity` value"),
        "{failed}"
    );
    let fired = remote(&[
        "graph",
        "fire",
        "climate",
        "--with",
        r#"{"temperature":{"celsius":35},"humidity":[{"percent":40}]}"#,
    ])
    .success();
    assert!(
        fired
            .stdout
            .contains("fired climate (fire_with humidity, temperature): ok")
            && fired
                .stdout
                .contains(r#"raise_alert: {"alert":"too hot: 35 C at 40% humidity"}"#)
            && !fired.stdout.contains("note_mild"),
        "{fired}"
    );
    let last = remote(&["--json", "graph", "firings", "climate", "--limit", "1"])
        .success()
        .json();
    assert_eq!(last["items"][0]["manual"], true, "{last}");
    assert_eq!(
        last["items"][0]["outputs"]["raise_alert"]["alert"], "too hot: 35 C at 40% humidity",
        "{last}"
    );

    // 6. A paused graph does not fire (9) until resumed.
    let paused = remote(&["graph", "pause", "climate"]).success();
    assert!(paused.stdout.contains("paused climate"), "{paused}");
    assert_eq!(graphs_by_name(&remote)["climate"]["paused"], true);
    remote(&["graph", "fire", "climate"]).failure(9, "reactor 'climate' is paused");
    let resumed = remote(&["--json", "graph", "resume", "climate"])
        .success()
        .json();
    assert_eq!(resumed, json!({"reactor": "climate", "paused": false}));
    assert_eq!(graphs_by_name(&remote)["climate"]["paused"], false);
    remote(&["graph", "fire", "climate"]).success();

    // 7. `graph show`: accumulators with their kinds, nodes with inputs.
    let shown = remote(&["graph", "show", "climate"]).success();
    for line in [
        "reactor climate: when_all, latest",
        "starts per firing: notify",
        "temperature              passthrough",
        "humidity                 batch",
        "history                  state",
        "assess <- temperature, humidity, history",
        "raise_alert <- assess.hot",
    ] {
        assert!(shown.stdout.contains(line), "no `{line}`:\n{shown}");
    }
    let shown = remote(&["--json", "graph", "show", "climate"])
        .success()
        .json();
    let kinds: Vec<(&str, &str)> = shown["accumulator_statuses"]
        .as_array()
        .expect("accumulator_statuses")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or_default(),
                a["kind"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("temperature", "passthrough"),
            ("humidity", "batch"),
            ("history", "state")
        ],
        "{shown}"
    );
    let assess = shown["topology"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["id"] == "assess"))
        .expect("node assess");
    assert_eq!(
        assess["inputs"],
        json!(["temperature", "humidity", "history"]),
        "{shown}"
    );
    remote(&["graph", "show", "nope"]).failure(11, "graph 'nope' not found");

    eprintln!("the graph commands took {:?}", started.elapsed());
    assert!(server.terminate().success());
}
