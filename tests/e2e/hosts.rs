//! Several `cloacinactl server start` processes on one fresh PostgreSQL
//! database, each with a home of its own, acting as one service: a
//! WebSocket ticket minted on one host opens a socket on another, once;
//! events pushed to both hosts fire the `graph` sample's when_all graph as
//! one host would; `kill -9` of a graph's owner hands the graph over to the
//! survivor within the lease TTL (+ 1 s) without losing or repeating an
//! acknowledged event; the hosts view lists every host.
//!
//! Skipped (with a message) when PostgreSQL is unreachable outside CI.
//! `CLOACINA_FAILOVER_TRIALS` sets how many owners the failover test kills
//! (default 3, to keep CI quick; the issue asks for 10:
//! `CLOACINA_FAILOVER_TRIALS=10 cargo test -p cloacina-tests --test e2e hosts::`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use cloacina_tests::{cloacinactl, drop_database, fresh_database, postgres_url, scratch};

use crate::graphs::address;
use crate::outage::{get, request};
use crate::serving::{Server, pack_signed};

/// The god-mode key every host of a cluster is started with (the first
/// host stores it; the others find keys and leave them be).
const GOD_KEY: &str = "clk_e2e_hosts_0123456789abcdef0123456789abcdef";

/// How long any one socket operation may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// The graphs of the `graph` sample.
const GRAPHS: [&str; 2] = ["climate", "counter"];

/// Host processes on one fresh database; dropped, they are killed and the
/// database is dropped.
struct Cluster {
    admin_url: String,
    database: String,
    /// The database every host is started on.
    url: String,
    /// Where each host's home and log live.
    dir: tempfile::TempDir,
    hosts: Vec<Server>,
    addrs: Vec<SocketAddr>,
    alive: Vec<bool>,
}

impl Cluster {
    /// A fresh database on the server at `admin_url`; with `package` (a
    /// directory from [`graph_package`]), its author is trusted and the
    /// package registered there before any host starts.
    fn new(admin_url: &str, package: Option<&Path>) -> Cluster {
        let (database, url) = fresh_database(admin_url, "hosts");
        let cluster = Cluster {
            admin_url: admin_url.to_owned(),
            database,
            url,
            dir: scratch(),
            hosts: Vec::new(),
            addrs: Vec::new(),
            alive: Vec::new(),
        };
        if let Some(package) = package {
            let url = cluster.url.as_str();
            cloacinactl(
                package,
                &["trust", "add", "keys/author.pub", "--database-url", url],
            )
            .success();
            cloacinactl(
                package,
                &["package", "upload", "graph.cloacina", "--database-url", url],
            )
            .success();
        }
        cluster
    }

    /// Starts one more host on the database (a home of its own, native
    /// libraries in process) and waits for the address it serves.
    fn start(&mut self, extra: &[&str]) -> SocketAddr {
        let dir = self.dir.path().join(format!("host-{}", self.hosts.len()));
        std::fs::create_dir_all(&dir).expect("host dir");
        let mut args = vec![
            "--database-url",
            self.url.as_str(),
            "--in-process",
            "--bootstrap-key",
            GOD_KEY,
        ];
        args.extend(extra);
        let mut server = Server::start_with(&dir, &args);
        let addr = address(&server.url());
        self.hosts.push(server);
        self.addrs.push(addr);
        self.alive.push(true);
        addr
    }

    /// SIGKILL for host `index`.
    fn kill(&mut self, index: usize) {
        self.hosts[index].kill();
        self.alive[index] = false;
    }

    /// SIGTERM for every host still running; each exits 0.
    fn stop(&mut self) {
        for (index, host) in self.hosts.iter_mut().enumerate() {
            if std::mem::take(&mut self.alive[index]) {
                let exit = host.terminate();
                assert!(exit.success(), "host {index}: {exit:?}");
            }
        }
    }

    /// `cloacinactl ARGS --server <host at addr> --api-key GOD_KEY`.
    fn remote(&self, addr: SocketAddr, args: &[&str]) -> cloacina_tests::Outcome {
        let server = format!("http://{addr}");
        let client = ["--server", server.as_str(), "--api-key", GOD_KEY];
        cloacinactl(self.dir.path(), &[args, &client[..]].concat())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Server's drop kills its process.
        self.hosts.clear();
        drop_database(&self.admin_url, &self.database);
    }
}

/// A directory with `graph.cloacina`, signed by `keys/author.key`.
fn graph_package() -> tempfile::TempDir {
    let dir = scratch();
    cloacinactl(dir.path(), &["key", "generate", "author", "--out", "keys"]).success();
    pack_signed(dir.path(), "graph");
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A POST with an empty body over a fresh connection: status and body.
fn post(addr: SocketAddr, path: &str, key: &str) -> (u16, String) {
    let (status, _, body) = request(addr, "POST", path, key);
    (status, body)
}

/// A GET answered 200 with JSON, as JSON.
fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, _, body) = get(addr, path, GOD_KEY);
    assert_eq!(status, 200, "GET {path} on {addr}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("GET {path}: {error}: {body}"))
}

/// `GET /v1/tenants/public/hosts` on the host at `addr`.
fn hosts_view(addr: SocketAddr) -> Value {
    get_json(addr, "/v1/tenants/public/hosts")
}

fn items(list: &Value) -> &Vec<Value> {
    list["items"].as_array().expect("items")
}

/// The ids of the hosts that own `graph`, in a hosts view.
fn owners(view: &Value, graph: &str) -> Vec<String> {
    items(view)
        .iter()
        .filter(|host| owns(host, graph))
        .map(|host| host["id"].as_str().expect("id").to_owned())
        .collect()
}

fn owns(host: &Value, graph: &str) -> bool {
    host["owned_graphs"]
        .as_array()
        .is_some_and(|graphs| graphs.iter().any(|g| g.as_str() == Some(graph)))
}

/// The host serving at `addr`, in a hosts view.
fn host_at(view: &Value, addr: SocketAddr) -> &Value {
    let addr = addr.to_string();
    items(view)
        .iter()
        .find(|host| host["address"].as_str() == Some(addr.as_str()))
        .unwrap_or_else(|| panic!("no host at {addr} in {view}"))
}

/// Waits until the host at `addr` has loaded both graphs of the sample
/// and each has exactly one owner.
fn wait_graphs(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let loaded = GRAPHS
            .iter()
            .all(|graph| get(addr, &format!("/v1/health/graphs/{graph}"), GOD_KEY).0 == 200);
        let view = hosts_view(addr);
        if loaded && GRAPHS.iter().all(|graph| owners(&view, graph).len() == 1) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the graphs never loaded on {addr} with one owner each: {view}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A graph's firing log as the host at `addr` reads it, newest first.
fn firings(addr: SocketAddr, graph: &str) -> Vec<Value> {
    items(&get_json(
        addr,
        &format!("/v1/health/reactors/{graph}/fires?limit=1000"),
    ))
    .clone()
}

/// Opens the WebSocket at `path` with the god key as a Bearer header.
async fn connect(
    addr: SocketAddr,
    path: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {GOD_KEY}").parse().expect("header"),
    );
    let (socket, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
        .await
        .expect("connected in time")
        .unwrap_or_else(|error| panic!("cannot open {path} on {addr}: {error}"));
    socket
}

/// The HTTP status of a WebSocket upgrade at `path` (no key: a ticket in
/// the query, if any): 101 when it opened.
async fn upgrade_status(addr: SocketAddr, path: &str) -> u16 {
    let url = format!("ws://{addr}{path}");
    match tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url.as_str()))
        .await
        .expect("answered in time")
    {
        Ok((mut socket, response)) => {
            let _ = socket.close(None).await;
            response.status().as_u16()
        }
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(error) => panic!("cannot connect to {url}: {error}"),
    }
}

/// Pushes one event to accumulator `name` on the host at `addr` in
/// acknowledged mode; returns once the host said it is durable.
async fn push_acked(addr: SocketAddr, name: &str, event: Value) {
    let mut socket = connect(addr, &format!("/v1/ws/accumulator/{name}?ack=1")).await;
    socket
        .send(Message::text(event.to_string()))
        .await
        .expect("sent");
    loop {
        match tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("acknowledged in time")
        {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
                assert_eq!(frame["type"], "ack", "{name} on {addr}: {frame}");
                if frame["seq"] == 1 {
                    break;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("{name} on {addr}: the socket ended before the ack: {other:?}"),
        }
    }
    let _ = socket.close(None).await;
}

#[test]
fn a_ticket_minted_on_one_host_opens_a_socket_on_another_once() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let mut cluster = Cluster::new(&admin_url, None);
    let a = cluster.start(&[]);
    let b = cluster.start(&[]);
    let runtime = runtime();
    let mint = |addr: SocketAddr| {
        let (status, body) = post(addr, "/v1/auth/ws-ticket", GOD_KEY);
        assert_eq!(status, 200, "{body}");
        let ticket: Value = serde_json::from_str(&body).expect("JSON");
        ticket["ticket"].as_str().expect("ticket").to_owned()
    };
    // The delivery socket upgrades before it looks the execution up, so
    // any recipient shows whether the ticket was taken.
    let path = |ticket: &str| {
        format!(
            "/v1/ws/delivery/exec_events:{}?token={ticket}",
            uuid::Uuid::new_v4()
        )
    };
    let open =
        |addr: SocketAddr, ticket: &str| runtime.block_on(upgrade_status(addr, &path(ticket)));

    let ticket = mint(a);
    assert_eq!(open(b, &ticket), 101, "a ticket minted on A opens on B");
    assert_eq!(open(a, &ticket), 401, "used on B, it is gone on A");
    assert_eq!(open(b, &ticket), 401, "and on B");

    let ticket = mint(b);
    assert_eq!(open(a, &ticket), 101, "a ticket minted on B opens on A");
    assert_eq!(open(b, &ticket), 401, "once");
    assert_eq!(open(a, "not-a-ticket"), 401);
    cluster.stop();
}

#[test]
fn events_pushed_to_two_hosts_fire_the_graph_as_one() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let package = graph_package();
    let mut cluster = Cluster::new(&admin_url, Some(package.path()));
    let a = cluster.start(&[]);
    wait_graphs(a);
    let b = cluster.start(&[]);
    wait_graphs(b);
    let runtime = runtime();

    // Each round: a temperature through one host, a humidity reading
    // through the other (alternating), then climate (when_all) fires once.
    const ROUNDS: u64 = 8;
    let celsius = |round: u64| 24 + 2 * round;
    let percent = |round: u64| 40 + round;
    for round in 0..ROUNDS {
        let (first, second) = if round % 2 == 0 { (a, b) } else { (b, a) };
        runtime.block_on(push_acked(
            first,
            "temperature",
            json!({"celsius": celsius(round)}),
        ));
        runtime.block_on(push_acked(
            second,
            "humidity",
            json!({"percent": percent(round)}),
        ));
        let deadline = Instant::now() + PATIENCE;
        loop {
            let fired = firings(second, "climate").len() as u64;
            assert!(fired <= round + 1, "round {round}: {fired} firings");
            if fired == round + 1 {
                break;
            }
            assert!(Instant::now() < deadline, "round {round} never fired");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Longer than the humidity batch's flush interval: nothing more fires.
    std::thread::sleep(Duration::from_secs(1));

    let on_a = firings(a, "climate");
    let on_b = firings(b, "climate");
    assert_eq!(on_a, on_b, "both hosts read one firing log");
    assert_eq!(
        on_a.len() as u64,
        ROUNDS,
        "one firing per round, as one host gives"
    );
    for (round, firing) in (0..ROUNDS).zip(on_a.iter().rev()) {
        assert_eq!(firing["ok"], true, "{firing}");
        assert_eq!(firing["manual"], false, "{firing}");
        assert_eq!(
            firing["inputs"]["temperature"],
            json!({"celsius": celsius(round)}),
            "round {round}: {firing}"
        );
        assert_eq!(
            firing["inputs"]["humidity"],
            json!([{"percent": percent(round)}]),
            "round {round}: {firing}"
        );
        let verdict = if celsius(round) >= 30 { "hot" } else { "mild" };
        assert!(
            firing["outputs"]["assess"].get(verdict).is_some(),
            "round {round} is {verdict}: {firing}"
        );
    }

    // The subscribed workflow started once per firing, whichever host ran
    // the reactor; both hosts count the same.
    let notified = |addr: SocketAddr| {
        cluster
            .remote(
                addr,
                &["--json", "execution", "list", "--workflow", "notify"],
            )
            .success()
            .json()["total"]
            .as_u64()
            .expect("total")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while notified(a) < ROUNDS {
        assert!(
            Instant::now() < deadline,
            "the subscribed workflow never started for every firing"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(notified(a), ROUNDS, "one start per successful firing");
    assert_eq!(notified(b), ROUNDS, "one start per successful firing");

    // One owner, and both hosts say which.
    let owner_seen_by_a = owners(&hosts_view(a), "climate");
    let owner_seen_by_b = owners(&hosts_view(b), "climate");
    assert_eq!(owner_seen_by_a.len(), 1, "{owner_seen_by_a:?}");
    assert_eq!(owner_seen_by_a, owner_seen_by_b);
    cluster.stop();
}

/// The lease TTL the failover test starts its hosts with.
const LEASE_TTL: Duration = Duration::from_secs(2);

/// Frames in flight before the producer waits for an ack.
const WINDOW: u64 = 32;

#[test]
fn kill_9_of_the_graph_owner_hands_the_graph_over_without_losing_events() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let trials: u64 = std::env::var("CLOACINA_FAILOVER_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let package = graph_package();
    let runtime = runtime();
    let ttl = LEASE_TTL.as_secs_f64().to_string();
    let flags = ["--graph-lease-ttl", ttl.as_str()];
    let mut takeovers = Vec::new();
    for trial in 1..=trials {
        let mut cluster = Cluster::new(&admin_url, Some(package.path()));
        let first = cluster.start(&flags);
        wait_graphs(first);
        let second = cluster.start(&flags);
        wait_graphs(second);
        let view = hosts_view(second);
        let owner_id = match owners(&view, "counter").as_slice() {
            [one] => one.clone(),
            other => panic!("counter has owners {other:?}: {view}"),
        };
        let owner = (0..2)
            .find(|&index| host_at(&view, cluster.addrs[index])["id"] == owner_id.as_str())
            .expect("the owner is one of the two hosts");
        let survivor = 1 - owner;
        let survivor_addr = cluster.addrs[survivor];

        // Ticks stream to the host that does not run the graph; the owner
        // is killed midway (later in each trial), and they keep coming.
        let (stop, stopped) = watch::channel(false);
        let (acked, acks) = watch::channel(0u64);
        let producer = runtime.spawn(stream_ticks(survivor_addr, stopped, acked));
        std::thread::sleep(Duration::from_millis(500 + 250 * ((trial - 1) % 4)));
        let acked_at_kill = *acks.borrow();
        let killed = Instant::now();
        cluster.kill(owner);
        let takeover = loop {
            let view = hosts_view(survivor_addr);
            if owns(host_at(&view, survivor_addr), "counter") {
                break killed.elapsed();
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "trial {trial}: the survivor never took counter over: {view}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let acked_at_takeover = *acks.borrow();
        eprintln!(
            "trial {trial}: the survivor owned the graph {:.0} ms after kill -9 of its owner (lease TTL {LEASE_TTL:?})",
            takeover.as_secs_f64() * 1000.0
        );
        // The aim is TTL + 1 s (printed above, and measured by the graphs
        // bench); the bound leaves room for a loaded CI machine: TTL, one
        // renewal period, and 2 s for the keeper's pass and the polling.
        assert!(
            takeover <= LEASE_TTL + LEASE_TTL / 3 + Duration::from_secs(2),
            "trial {trial}: the takeover took {takeover:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
        let _ = stop.send(true);
        let (sent, acked) = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(60), producer).await })
            .expect("the producer finished in time")
            .expect("the producer ran to its end");
        assert_eq!(acked, sent, "every event sent was acknowledged");
        assert!(
            acked_at_kill > 0 && acked > acked_at_takeover,
            "trial {trial}: events acknowledged before the kill ({acked_at_kill}) and after the takeover ({acked_at_takeover} then, {acked} in all)"
        );

        // Every acknowledged tick fired exactly once, in order, each
        // firing consuming one inbox event no other firing consumed.
        let fired = runtime.block_on(counter_firings(&cluster.url, acked));
        assert!(fired.iter().all(|f| f.ok), "trial {trial}: a firing failed");
        for firing in &fired {
            assert!(
                firing.first_seq.is_some() && firing.first_seq == firing.last_seq,
                "trial {trial}: one event per firing: {:?}..{:?}",
                firing.first_seq,
                firing.last_seq
            );
        }
        assert!(
            fired.windows(2).all(|w| w[0].first_seq < w[1].first_seq),
            "trial {trial}: an inbox event was consumed twice or out of order"
        );
        let mut times: BTreeMap<u64, usize> = BTreeMap::new();
        for firing in &fired {
            *times.entry(firing.n).or_default() += 1;
        }
        let missing: Vec<u64> = (1..=acked).filter(|n| !times.contains_key(n)).collect();
        let repeated: Vec<u64> = times
            .iter()
            .filter(|(_, count)| **count > 1)
            .map(|(n, _)| *n)
            .collect();
        assert!(
            missing.is_empty() && repeated.is_empty(),
            "trial {trial}: acknowledged events never processed: {missing:?}; processed more than once: {repeated:?}"
        );
        assert_eq!(
            fired.len() as u64,
            acked,
            "trial {trial}: nothing but the acknowledged events"
        );
        assert!(
            fired.windows(2).all(|w| w[0].n < w[1].n),
            "trial {trial}: processed in the order sent"
        );
        eprintln!(
            "trial {trial}: {acked} events acknowledged ({acked_at_kill} before the kill, {acked_at_takeover} by the takeover), each processed once"
        );
        takeovers.push(takeover);
        cluster.stop();
    }
    eprintln!("{trials} takeovers after kill -9: {takeovers:?}");
}

/// Streams `{"n": 1}`, `{"n": 2}`, ... to accumulator `ticks` on the host
/// at `addr` in acknowledged mode, one every 2 ms at most and `WINDOW` in
/// flight, until `stop` turns true; then waits for the last ack and closes.
/// Publishes each ack on `acked`; returns (sent, acknowledged).
async fn stream_ticks(
    addr: SocketAddr,
    mut stop: watch::Receiver<bool>,
    acked: watch::Sender<u64>,
) -> (u64, u64) {
    let socket = connect(addr, "/v1/ws/accumulator/ticks?ack=1").await;
    let (mut sink, mut stream) = socket.split();
    let mut pace = tokio::time::interval(Duration::from_millis(2));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut sent, mut confirmed) = (0u64, 0u64);
    let mut stopping = false;
    loop {
        if stopping && confirmed == sent {
            break;
        }
        tokio::select! {
            _ = pace.tick(), if !stopping && sent < confirmed + WINDOW => {
                sent += 1;
                sink.send(Message::text(json!({"n": sent}).to_string()))
                    .await
                    .expect("the surviving host takes the event");
            }
            frame = tokio::time::timeout(PATIENCE, stream.next()) => match frame {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
                    assert_eq!(frame["type"], "ack", "{frame}");
                    confirmed = frame["seq"].as_u64().expect("seq");
                    let _ = acked.send(confirmed);
                }
                Ok(Some(Ok(_))) => {}
                Ok(other) => panic!("the socket to the surviving host broke: {other:?}"),
                Err(_) => panic!("no ack from the surviving host in {PATIENCE:?} ({confirmed} of {sent})"),
            },
            changed = stop.changed(), if !stopping => {
                stopping = changed.is_err() || *stop.borrow_and_update();
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    (sent, confirmed)
}

/// One row of the counter's firing log.
struct Fired {
    first_seq: Option<i64>,
    last_seq: Option<i64>,
    ok: bool,
    /// The tick it fired for (`count.n`).
    n: u64,
}

/// A logged firing: first and last inbox numbers consumed, ok, outputs.
type FiringRow = (Option<i64>, Option<i64>, i64, Option<String>);

/// The counter's firing log, oldest first, once its inbox is empty and it
/// fired at least `at_least` times.
async fn counter_firings(url: &str, at_least: u64) -> Vec<Fired> {
    let pool = sqlx::PgPool::connect(url).await.expect("connects");
    let at_least = i64::try_from(at_least).expect("a count");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM graph_events WHERE graph = 'counter'")
                .fetch_one(&pool)
                .await
                .expect("inbox");
        let fired: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM graph_firings WHERE graph = 'counter'")
                .fetch_one(&pool)
                .await
                .expect("firings");
        if pending == 0 && fired >= at_least {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the counter never caught up: {pending} events pending, {fired} of {at_least} firings"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows: Vec<FiringRow> = sqlx::query_as(
        "SELECT first_seq, last_seq, ok, outputs FROM graph_firings WHERE graph = 'counter' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("firings");
    pool.close().await;
    rows.into_iter()
        .map(|(first_seq, last_seq, ok, outputs)| {
            let outputs: Value =
                serde_json::from_str(outputs.as_deref().unwrap_or("null")).expect("JSON");
            Fired {
                first_seq,
                last_seq,
                ok: ok != 0,
                n: outputs["count"]["n"].as_u64().unwrap_or(0),
            }
        })
        .collect()
}

#[test]
fn the_hosts_view_lists_every_host() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let mut cluster = Cluster::new(&admin_url, None);
    let a = cluster.start(&[]);
    let b = cluster.start(&[]);

    let over_http = hosts_view(a);
    let from_cli = cluster
        .remote(a, &["--json", "host", "list"])
        .success()
        .json();
    for view in [&over_http, &from_cli] {
        assert_eq!(view["total"], 2, "{view}");
        assert_eq!(view["tenant_id"], "public", "{view}");
        let listed = items(view);
        // Oldest first: A started before B.
        let addresses: Vec<&str> = listed
            .iter()
            .map(|host| host["address"].as_str().expect("an address"))
            .collect();
        assert_eq!(
            addresses,
            [a.to_string(), b.to_string()],
            "both hosts, oldest first: {view}"
        );
        assert_eq!(host_at(view, a)["this_host"], true, "{view}");
        assert_eq!(host_at(view, b)["this_host"], false, "{view}");
        for host in listed {
            assert!(
                host["id"].as_str().is_some_and(|id| !id.is_empty()),
                "{host}"
            );
            assert!(host["version"].is_string(), "{host}");
            assert!(
                host["heartbeat_age_ms"]
                    .as_i64()
                    .is_some_and(|age| age >= 0),
                "{host}"
            );
            assert_eq!(host["running_tasks"], 0, "{host}");
            assert_eq!(host["owned_graphs"], json!([]), "{host}");
        }
    }
    assert_ne!(host_at(&over_http, a)["id"], host_at(&over_http, b)["id"]);
    // Asked of B, B is this host.
    let from_b = hosts_view(b);
    assert_eq!(host_at(&from_b, a)["this_host"], false, "{from_b}");
    assert_eq!(host_at(&from_b, b)["this_host"], true, "{from_b}");
    // The table marks the host that answered.
    let table = cluster.remote(a, &["host", "list"]).success();
    let marked: Vec<&str> = table
        .stdout
        .lines()
        .filter(|line| line.starts_with("* "))
        .collect();
    assert_eq!(marked.len(), 1, "{table}");
    assert!(marked[0].contains(&a.to_string()), "{table}");
    assert!(table.stdout.contains(&b.to_string()), "{table}");
    cluster.stop();
}
