//! Computation graphs through a real server: the health routes in the 0.8
//! shapes, the accumulator socket (ack mode, flush on close, refusals),
//! the reactor socket's commands and replies, the REST commands, roles and
//! tenants, and `/ready` while a graph crash-loops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloacina_contract::Identifier;
use cloacina_contract::manifest::{
    AccumulatorDeclaration, AccumulatorKind, ComputationGraphDeclaration, Declaration,
    GraphNodeDeclaration, InputStrategy, ReactionMode, ReactorDeclaration, RetryPolicy,
    TaskDeclaration,
};
use cloacina_runtime::{FunctionPlugin, PackageRef, TenantId};
use cloacina_server::Limits;
use futures_util::SinkExt as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{GOD_KEY, Next, Socket, TestServer, connect, next};

fn id(text: &str) -> Identifier {
    Identifier::new(text).expect("identifier")
}

/// `climate`: passthrough `temperature`, batch `humidity` (flushed at 2),
/// `when_all`; node `assess` routes to `hot` or `mild`.
fn climate() -> (Declaration, Arc<FunctionPlugin>) {
    let task = |name: &str| TaskDeclaration {
        id: id(name),
        description: String::new(),
        dependencies: Vec::new(),
        retry: RetryPolicy::default(),
        timeout_ms: None,
        invokes: None,
    };
    let node = |name: &str, inputs: &[&str]| GraphNodeDeclaration {
        id: id(name),
        inputs: inputs.iter().map(|i| id(i)).collect(),
    };
    let graph = ComputationGraphDeclaration {
        name: id("climate"),
        description: String::new(),
        accumulators: vec![
            AccumulatorDeclaration::new(id("temperature"), AccumulatorKind::Passthrough),
            AccumulatorDeclaration {
                max_buffer_size: Some(2),
                ..AccumulatorDeclaration::new(id("humidity"), AccumulatorKind::Batch)
            },
        ],
        reactor: ReactorDeclaration {
            reaction_mode: ReactionMode::WhenAll,
            input_strategy: InputStrategy::Latest,
            sources: Vec::new(),
        },
        nodes: vec![
            node("assess", &["temperature", "humidity"]),
            node("hot", &["assess.hot"]),
            node("mild", &["assess.mild"]),
        ],
        subscriptions: Vec::new(),
    };
    let declaration = Declaration {
        tasks: vec![task("assess"), task("hot"), task("mild")],
        computation_graphs: vec![graph],
        ..Declaration::default()
    };
    declaration.validate().expect("valid");
    let plugin = Arc::new(
        FunctionPlugin::new()
            .task("assess", |ctx, _| {
                let c = ctx["temperature"]["c"].as_f64().unwrap_or_default();
                Ok(if c >= 30.0 {
                    json!({"hot": {"c": c}})
                } else {
                    json!({"mild": {"c": c}})
                })
            })
            .task("hot", |ctx, _| Ok(json!({"alert": ctx["assess.hot"]["c"]})))
            .task("mild", |ctx, _| {
                Ok(json!({"note": ctx["assess.mild"]["c"]}))
            }),
    );
    (declaration, plugin)
}

async fn register_climate(server: &TestServer, tenant: &str) {
    let host = server
        .server()
        .host()
        .tenant(&TenantId::new(tenant).expect("tenant"))
        .await
        .expect("tenant host");
    let (declaration, plugin) = climate();
    let package = PackageRef {
        name: "climate".into(),
        version: semver::Version::new(1, 0, 0),
    };
    host.graphs()
        .register(&package, &declaration, plugin)
        .await
        .expect("registered");
}

async fn frame(socket: &mut Socket) -> Value {
    match next(socket).await {
        Next::Frame(frame) => frame,
        Next::Closed(code) => panic!("closed ({code:?}) where a frame was expected"),
    }
}

async fn closed(socket: &mut Socket) -> Option<u16> {
    loop {
        match next(socket).await {
            Next::Closed(code) => return code,
            Next::Frame(_) => {}
        }
    }
}

async fn send(socket: &mut Socket, text: &str) {
    socket
        .send(Message::text(text.to_owned()))
        .await
        .expect("sent");
}

/// Reads frames until an ack of at least `seq`; the rejections seen.
async fn acked(socket: &mut Socket, seq: u64) -> Vec<Value> {
    let mut rejected = Vec::new();
    loop {
        let frame = frame(socket).await;
        match frame["type"].as_str() {
            Some("ack") if frame["seq"].as_u64() >= Some(seq) => return rejected,
            Some("ack") => {}
            Some("rejected") => rejected.push(frame),
            _ => panic!("unexpected frame {frame}"),
        }
    }
}

async fn command(socket: &mut Socket, command: Value) -> Value {
    send(socket, &command.to_string()).await;
    frame(socket).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_over_the_socket_fire_the_graph_and_the_routes_show_it() {
    let server = TestServer::start(Limits::default()).await;
    register_climate(&server, "public").await;
    let (writer, _) = server.key("write", None).await;

    let mut producer = connect(&server, "/v1/ws/accumulator/temperature?ack=1", &writer)
        .await
        .expect("upgrade");
    send(&mut producer, r#"{"c": 31}"#).await;
    assert!(acked(&mut producer, 1).await.is_empty());
    let mut humidity = connect(&server, "/v1/ws/accumulator/humidity?ack=1", &writer)
        .await
        .expect("upgrade");
    // Binary frames are events too; a bad frame is rejected by number and
    // the socket goes on.
    humidity
        .send(Message::binary(br#"{"p": 40}"#.to_vec()))
        .await
        .expect("sent");
    send(&mut humidity, "{not json").await;
    send(&mut humidity, r#"{"p": 50}"#).await;
    let rejected = acked(&mut humidity, 3).await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["seq"], 2);
    assert_eq!(rejected[0]["code"], "invalid_json");

    // The firing is in the log, routed to `hot`.
    let firing = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = server
                .call("GET", "/v1/health/reactors/climate/fires", &writer, None)
                .await;
            assert_eq!(status, 200, "{body}");
            if body["total"] == 1 {
                break body["items"][0].clone();
            }
            assert!(Instant::now() < deadline, "no firing: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert_eq!(firing["ok"], true);
    assert_eq!(firing["outputs"]["hot"], json!({"alert": 31.0}));
    assert_eq!(firing["inputs"]["humidity"], json!([{"p": 40}, {"p": 50}]));

    // The 0.8 shapes.
    let (status, graphs) = server.call("GET", "/v1/health/graphs", &writer, None).await;
    assert_eq!(status, 200);
    assert_eq!(graphs["total"], 1);
    let graph = &graphs["items"][0];
    assert_eq!(graph["name"], "climate");
    assert_eq!(graph["health"], json!({"state": "live"}));
    assert_eq!(graph["accumulators"], json!(["temperature", "humidity"]));
    assert_eq!(graph["paused"], false);
    assert_eq!(graph["fires"], 1);
    assert_eq!(graph["reaction_mode"], "when_all");
    assert_eq!(graph["input_strategy"], "latest");
    assert!(
        graph["last_fired_at"]
            .as_str()
            .is_some_and(|t| t.contains('T'))
    );
    let edges = graph["topology"]["edges"].as_array().expect("edges");
    assert!(
        edges.contains(&json!({"from": "assess", "to": "hot", "label": "hot"})),
        "{edges:?}"
    );
    let (_, one) = server
        .call("GET", "/v1/health/graphs/climate", &writer, None)
        .await;
    assert_eq!(one["name"], "climate");
    let (status, missing) = server
        .call("GET", "/v1/health/graphs/nope", &writer, None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(missing["code"], "graph_not_found");
    let (_, accumulators) = server
        .call("GET", "/v1/health/accumulators", &writer, None)
        .await;
    assert_eq!(
        accumulators["items"][0],
        json!({"name": "temperature", "status": "socket_only", "graph": "climate", "kind": "passthrough", "tenant_id": "public"})
    );
    let (_, reactors) = server
        .call("GET", "/v1/health/reactors", &writer, None)
        .await;
    assert_eq!(reactors["items"][0]["bound_graphs"], json!(["climate"]));
    assert_eq!(
        reactors["items"][0]["accumulators"],
        json!(["temperature", "humidity"])
    );

    // The reactor socket: the 0.8 commands and replies.
    let mut reactor = connect(&server, "/v1/ws/reactor/climate", &writer)
        .await
        .expect("upgrade");
    let state = command(&mut reactor, json!({"command": "get_state"})).await;
    assert_eq!(state["type"], "state");
    assert_eq!(state["cache"]["temperature"], r#"{"c":31}"#);
    assert_eq!(
        command(&mut reactor, json!({"command": "pause"})).await,
        json!({"type": "paused"})
    );
    let refused = command(&mut reactor, json!({"command": "force_fire"})).await;
    assert_eq!(refused["type"], "error");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("paused")),
        "{refused}"
    );
    let (status, body) = server
        .call(
            "POST",
            "/v1/health/reactors/climate/fire",
            &writer,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("reactor_paused"))
    );
    assert_eq!(
        command(&mut reactor, json!({"command": "resume"})).await,
        json!({"type": "resumed"})
    );
    let bytes: Vec<u8> = br#"{"c": 12}"#.to_vec();
    let fired = command(
        &mut reactor,
        json!({"command": "fire_with", "cache": {"temperature": bytes, "humidity": [[]]}}),
    )
    .await;
    assert_eq!(fired, json!({"type": "fired"}));
    let invalid = command(&mut reactor, json!({"command": "explode"})).await;
    assert!(
        invalid["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("invalid command"))
    );
    reactor
        .send(Message::binary(b"{}".to_vec()))
        .await
        .expect("sent");
    assert_eq!(
        frame(&mut reactor).await,
        json!({"type": "error", "message": "commands are JSON text frames"})
    );
    let (_, log) = server
        .call(
            "GET",
            "/v1/health/reactors/climate/fires?limit=1",
            &writer,
            None,
        )
        .await;
    assert_eq!(log["items"][0]["outputs"]["mild"], json!({"note": 12.0}));
    assert_eq!(log["items"][0]["manual"], true);

    // REST: inject is durable before it answers; force_fire fires.
    let (status, injected) = server
        .call(
            "POST",
            "/v1/health/accumulators/temperature/inject",
            &writer,
            Some(json!({"event": {"c": 35}})),
        )
        .await;
    assert_eq!(
        (status, injected["delivered"].as_u64()),
        (200, Some(1)),
        "{injected}"
    );
    let (status, fired) = server
        .call(
            "POST",
            "/v1/health/reactors/climate/fire",
            &writer,
            Some(json!({"mode": "force_fire"})),
        )
        .await;
    assert_eq!(status, 200, "{fired}");
    assert_eq!(fired["firing"]["outputs"]["hot"], json!({"alert": 35.0}));

    // A client close flushes: events read before it are all committed.
    let mut quiet = connect(&server, "/v1/ws/accumulator/temperature", &writer)
        .await
        .expect("upgrade");
    for c in 0..50 {
        send(&mut quiet, &json!({"c": c}).to_string()).await;
    }
    quiet.close(None).await.expect("closed");
    assert_eq!(closed(&mut quiet).await, None);
    let state = command(&mut reactor, json!({"command": "get_state"})).await;
    assert_eq!(state["cache"]["temperature"], r#"{"c":49}"#, "{state}");

    // The graph metrics, in the reference's names and ours.
    let metrics = crate::support::raw(
        server.addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&metrics.body);
    for line in [
        r#"cloacina_reactor_fires_total{tenant="public",graph="climate",reactor="climate",strategy="when_all"} 3"#,
        r#"cloacina_accumulator_events_total{tenant="public",graph="climate",accumulator="temperature",kind="passthrough"} 52"#,
        r#"cloacina_accumulator_events_rejected_total{reason="invalid_json"} 1"#,
        r#"cloacina_component_health{tenant="public",graph="climate",reactor="climate",component="reactor"} 1"#,
    ] {
        assert!(text.contains(line), "no `{line}` in\n{text}");
    }
    for family in [
        "cloacina_accumulator_ack_seconds_count",
        "cloacina_graph_event_to_fire_seconds_count",
        "cloacina_graph_pending_events",
        "cloacina_graph_backpressure_seconds_total",
    ] {
        assert!(text.contains(family), "no {family} in\n{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_roles_and_other_tenants_are_refused_and_nothing_is_stored() {
    let server = TestServer::start(Limits::default()).await;
    server.create_tenant("alpha").await;
    register_climate(&server, "public").await;
    let (reader, _) = server.key("read", None).await;
    let (writer, _) = server.key("write", None).await;
    let (alpha, _) = server.key("admin", Some("alpha")).await;

    // A read key may look, not push or steer.
    assert_eq!(
        connect(&server, "/v1/ws/accumulator/temperature", &reader)
            .await
            .err(),
        Some(403)
    );
    let (status, body) = server
        .call("POST", "/v1/health/reactors/climate/pause", &reader, None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("insufficient_permissions"))
    );
    let mut reactor = connect(&server, "/v1/ws/reactor/climate", &reader)
        .await
        .expect("a read key may connect");
    let denied = command(&mut reactor, json!({"command": "pause"})).await;
    assert!(
        denied["message"]
            .as_str()
            .is_some_and(|m| m.contains("not permitted")),
        "{denied}"
    );
    let state = command(&mut reactor, json!({"command": "get_state"})).await;
    assert_eq!(state["type"], "state", "the socket stays usable");

    // Unknown names.
    let mut unknown = connect(&server, "/v1/ws/accumulator/nope", &writer)
        .await
        .expect("upgrade");
    assert_eq!(closed(&mut unknown).await, Some(4404));
    let mut unknown = connect(&server, "/v1/ws/reactor/nope", &writer)
        .await
        .expect("upgrade");
    assert_eq!(closed(&mut unknown).await, Some(4404));
    let (status, body) = server
        .call(
            "POST",
            "/v1/health/accumulators/nope/inject",
            &writer,
            Some(json!({"event": 1})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("accumulator_not_found"))
    );

    // Another tenant's key sees nothing of public's graph.
    let (_, graphs) = server.call("GET", "/v1/health/graphs", &alpha, None).await;
    assert_eq!(graphs["total"], 0);
    let (status, _) = server
        .call("GET", "/v1/health/graphs/climate", &alpha, None)
        .await;
    assert_eq!(status, 404);
    let mut foreign = connect(&server, "/v1/ws/accumulator/temperature", &alpha)
        .await
        .expect("upgrade");
    assert_eq!(closed(&mut foreign).await, Some(4404));
    assert_eq!(
        connect(
            &server,
            "/v1/ws/accumulator/temperature?tenant=public",
            &alpha
        )
        .await
        .err(),
        Some(403)
    );

    // A frame over 1 MiB closes with 1009; what came before it is kept.
    let mut producer = connect(&server, "/v1/ws/accumulator/temperature?ack=1", &writer)
        .await
        .expect("upgrade");
    send(&mut producer, r#"{"c": 1}"#).await;
    acked(&mut producer, 1).await;
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(1 << 20));
    let _ = producer.send(Message::text(huge)).await;
    assert_eq!(closed(&mut producer).await, Some(1009));
    let (_, state) = server
        .call("GET", "/v1/health/graphs/climate", GOD_KEY, None)
        .await;
    let (status, log) = server
        .call("GET", "/v1/health/reactors/climate/fires", GOD_KEY, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        log["total"], 0,
        "nothing fired: humidity never came ({state})"
    );
    let reactor_state = command(&mut reactor, json!({"command": "get_state"})).await;
    assert_eq!(reactor_state["cache"]["temperature"], r#"{"c":1}"#);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_graph_fails_ready_and_health_stays_fast() {
    let server = TestServer::start(Limits::default()).await;
    register_climate(&server, "public").await;
    let home = server.stop_keeping_home().await;
    // The graph's checkpoint is damaged: every start of its reactor fails.
    let db = home.path().join("cloacina.db");
    let url = format!("sqlite://{}?mode=rw", db.display());
    sqlx::any::install_default_drivers();
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("database");
    sqlx::query("UPDATE graph_state SET cache = '{' WHERE graph = 'climate'")
        .execute(&mut connection)
        .await
        .expect("damaged");
    drop(connection);

    let mut host = cloacina_host::HostConfig::new(
        format!("sqlite://{}", db.display()),
        home.path().join("cache"),
    );
    host.graphs.supervision = cloacina_graphs::Supervision {
        budget: 2,
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(10),
        ..cloacina_graphs::Supervision::default()
    };
    let server = TestServer::start_with(home, Limits::default(), host, false).await;
    register_climate(&server, "public").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = server.call("GET", "/ready", GOD_KEY, None).await;
        if status == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "never unready: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        body,
        json!({"status": "not ready", "reason": "crashed computation graphs", "crashed_graphs": ["climate"]})
    );
    let (_, graph) = server
        .call("GET", "/v1/health/graphs/climate", GOD_KEY, None)
        .await;
    assert_eq!(graph["health"]["state"], "crashed");
    assert!(
        graph["health"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cache")),
        "{graph}"
    );
    let asked = Instant::now();
    for _ in 0..20 {
        let (status, _) = server.call("GET", "/v1/health/graphs", GOD_KEY, None).await;
        assert_eq!(status, 200);
    }
    let per_call = asked.elapsed() / 20;
    assert!(per_call < Duration::from_millis(250), "{per_call:?}");
    let home = server.stop_keeping_home().await;

    // Left out of readiness on request.
    let host = cloacina_host::HostConfig::new(
        format!("sqlite://{}", db.display()),
        home.path().join("cache"),
    );
    let server = TestServer::start_with(home, Limits::default(), host, true).await;
    let (status, body) = server.call("GET", "/ready", GOD_KEY, None).await;
    assert_eq!((status, body), (200, json!({"status": "ready"})));
    server.stop().await;
}
