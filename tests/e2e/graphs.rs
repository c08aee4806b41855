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

fn address(url: &str) -> SocketAddr {
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
