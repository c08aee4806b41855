//! Several hosts on one PostgreSQL schema: one owner per graph, events and
//! commands accepted by any host, fencing, handover. (SQLite is one host
//! per file: these run on PostgreSQL only.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloacina_contract::manifest::{InputStrategy, ReactionMode};
use cloacina_graphs::{
    CommandReply, GraphCommand, GraphConfig, GraphError, GraphRuntime, ReactorHealth,
};
use cloacina_runtime::{FunctionPlugin, Runner};
use serde_json::json;

use crate::support::*;

/// Short leases, so handovers are quick to see.
fn config() -> GraphConfig {
    GraphConfig {
        lease_ttl: Duration::from_secs(1),
        ..GraphConfig::default()
    }
}

fn pair() -> (cloacina_contract::Declaration, Arc<FunctionPlugin>) {
    let mut pair = graph(
        "pair",
        ReactionMode::WhenAll,
        InputStrategy::Latest,
        vec![passthrough("left"), passthrough("right")],
        vec![node("join", &["left", "right"])],
    );
    subscribe(&mut pair, "on_pair");
    let declaration = declaration(vec![pair], &[], &["on_pair"]);
    let plugin = Arc::new(
        FunctionPlugin::new()
            .task("join", |ctx, _| {
                Ok(json!({"left": ctx["left"]["n"], "right": ctx["right"]["n"]}))
            })
            .task("on_pair_task", |_, _| Ok(json!({}))),
    );
    (declaration, plugin)
}

struct Host {
    runner: Runner,
    graphs: GraphRuntime,
}

impl Host {
    async fn start(db: &TestDb, config: GraphConfig) -> Host {
        let (declaration, plugin) = pair();
        let runner = db.runner().await;
        let graphs = start(&runner, config, &declaration, plugin).await;
        Host { runner, graphs }
    }

    async fn stop(self) {
        self.graphs.shutdown().await;
        self.runner.shutdown().await;
    }

    fn runs(&self, graph: &str) -> bool {
        self.graphs.owned_here().iter().any(|g| g == graph)
    }
}

fn postgres() -> Option<TestDb> {
    TestDb::postgres()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_pushed_to_two_hosts_fire_a_when_all_graph_as_one() {
    let Some(db) = postgres() else { return };
    let a = Host::start(&db, config()).await;
    let b = Host::start(&db, config()).await;
    assert!(
        a.runs("pair") ^ b.runs("pair"),
        "exactly one host runs the graph"
    );
    for round in 0..10i64 {
        let (first, second) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        first
            .graphs
            .push("left", json!({"n": round}))
            .await
            .expect("left");
        second
            .graphs
            .push("right", json!({"n": round}))
            .await
            .expect("right");
        eventually("the round's firing", async || {
            let firings = a.graphs.firings("pair", 100).await.expect("firings");
            (firings.len() == usize::try_from(round + 1).expect("small")).then_some(())
        })
        .await;
    }
    let on_a = a.graphs.firings("pair", 100).await.expect("firings");
    let on_b = b.graphs.firings("pair", 100).await.expect("firings");
    assert_eq!(on_a, on_b, "both hosts read one firing log");
    for (round, firing) in on_a.iter().rev().enumerate() {
        assert!(firing.ok, "{firing:?}");
        let round = i64::try_from(round).expect("small");
        assert_eq!(
            firing.outputs["join"],
            json!({"left": round, "right": round})
        );
    }
    let started = eventually("every subscribed start", async || {
        let count = a
            .runner
            .count_executions(Some("on_pair"), None)
            .await
            .expect("count");
        (count >= 10).then_some(count)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        a.runner
            .count_executions(Some("on_pair"), None)
            .await
            .expect("count"),
        started
    );
    assert_eq!(started, 10, "one subscribed start per firing");
    let owners = a.graphs.owners().await.expect("owners");
    assert_eq!(owners.len(), 1, "{owners:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_whose_lease_was_taken_cannot_commit_and_stops_its_reactor() {
    let Some(db) = postgres() else { return };
    let config = config();
    // The firing stalls in its node (a pause) while another host takes the
    // lease; the firing's commit comes after, and is fenced, however soon
    // the keeper notices.
    let (entered, in_node) = std::sync::mpsc::channel::<()>();
    let (resume, go_on) = std::sync::mpsc::channel::<()>();
    let go_on = std::sync::Mutex::new(go_on);
    let (declaration, _) = pair();
    let plugin = Arc::new(
        FunctionPlugin::new()
            .task("join", move |_, _| {
                let _ = entered.send(());
                let _ = go_on
                    .lock()
                    .expect("lock")
                    .recv_timeout(Duration::from_secs(20));
                Ok(json!({}))
            })
            .task("on_pair_task", |_, _| Ok(json!({}))),
    );
    let runner = db.runner().await;
    let graphs = start(&runner, config.clone(), &declaration, plugin).await;
    let a = Host { runner, graphs };
    assert!(a.runs("pair"));
    assert_eq!(config.metrics.lease_counts(), (0, 0));
    a.graphs
        .push("left", json!({"n": 1}))
        .await
        .expect("accepted");
    a.graphs
        .push("right", json!({"n": 1}))
        .await
        .expect("accepted");
    tokio::task::spawn_blocking(move || in_node.recv_timeout(Duration::from_secs(10)))
        .await
        .expect("joined")
        .expect("the firing reached its node");
    // Another host takes the lease while this one stalls: the epoch moves
    // on.
    sqlx::query(
        "UPDATE graph_state SET owner = 'another-host', lease_until = $1, epoch = epoch + 1 WHERE graph = 'pair'",
    )
    .bind(cloacina_database::clock::now_ms() + 60_000)
    .execute(a.runner.database().pool())
    .await
    .expect("lease taken");
    resume.send(()).expect("node waiting");
    eventually("the reactor stopped", async || {
        a.graphs
            .status("pair")
            .filter(|s| matches!(s.health, ReactorHealth::Remote { .. }) && !a.runs("pair"))
    })
    .await;
    assert_eq!(config.metrics.lease_counts(), (0, 1), "one commit fenced");
    let firings: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM graph_firings")
        .fetch_one(a.runner.database().pool())
        .await
        .expect("count");
    assert_eq!(firings, 0, "the fenced firing was not written");
    let inbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM graph_events WHERE graph = 'pair'")
        .fetch_one(a.runner.database().pool())
        .await
        .expect("count");
    assert_eq!(inbox, 2, "the acknowledged events wait for the owner");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_work_from_any_host_and_a_graceful_stop_hands_over_at_once() {
    let Some(db) = postgres() else { return };
    let a = Host::start(&db, config()).await;
    let b = Host::start(&db, config()).await;
    let (owner, other) = if a.runs("pair") { (a, b) } else { (b, a) };
    assert_eq!(
        other
            .graphs
            .command("pair", GraphCommand::Pause)
            .await
            .expect("paused"),
        CommandReply::Paused
    );
    assert!(owner.graphs.status("pair").expect("status").paused);
    let refused = other.graphs.command("pair", GraphCommand::ForceFire).await;
    assert!(matches!(refused, Err(GraphError::Paused(_))), "{refused:?}");
    other
        .graphs
        .command("pair", GraphCommand::Resume)
        .await
        .expect("resumed");
    other
        .graphs
        .push("left", json!({"n": 7}))
        .await
        .expect("left");
    let state = eventually("the owner folded the event", async || {
        match other.graphs.command("pair", GraphCommand::GetState).await {
            Ok(CommandReply::State(values)) if values.contains_key("left") => Some(values),
            _ => None,
        }
    })
    .await;
    assert_eq!(state["left"], json!({"n": 7}));
    let fired = other
        .graphs
        .command("pair", GraphCommand::ForceFire)
        .await
        .expect("fired");
    assert!(
        matches!(fired, CommandReply::Fired(ref f) if f.manual),
        "{fired:?}"
    );

    let stopping = Instant::now();
    owner.stop().await;
    eventually("the other host runs the graph", async || {
        other.runs("pair").then_some(())
    })
    .await;
    let handover = stopping.elapsed();
    println!("graceful handover: {handover:?}");
    assert!(handover < Duration::from_secs(3), "{handover:?}");
    assert!(
        !other.graphs.status("pair").expect("status").paused,
        "state carried over"
    );
    other.stop().await;
}

/// Four graphs, one per accumulator.
fn four() -> (cloacina_contract::Declaration, Arc<FunctionPlugin>) {
    let graphs = (1..=4)
        .map(|i| {
            graph(
                &format!("g{i}"),
                ReactionMode::WhenAny,
                InputStrategy::Sequential,
                vec![passthrough(&format!("in{i}"))],
                vec![node(&format!("n{i}"), &[&format!("in{i}")])],
            )
        })
        .collect();
    let plugin = (1..=4).fold(FunctionPlugin::new(), |plugin, i| {
        plugin.task(&format!("n{i}"), |_, _| Ok(json!({})))
    });
    (declaration(graphs, &[], &[]), Arc::new(plugin))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graphs_spread_over_the_hosts_when_one_joins() {
    let Some(db) = postgres() else { return };
    let (declaration, plugin) = four();
    let first_runner = db.runner().await;
    let first = start(&first_runner, config(), &declaration, plugin.clone()).await;
    assert_eq!(
        first.owned_here().len(),
        4,
        "alone, a host runs every graph"
    );
    let second_runner = db.runner().await;
    let second = start(&second_runner, config(), &declaration, plugin).await;
    eventually("two graphs each", async || {
        (first.owned_here().len() == 2 && second.owned_here().len() == 2).then_some(())
    })
    .await;
    // And they stay spread (no graph bounces back and forth).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        (first.owned_here().len(), second.owned_here().len()),
        (2, 2)
    );
    // Every graph still fires, wherever it runs.
    for i in 1..=4 {
        second
            .push(&format!("in{i}"), json!({"n": i}))
            .await
            .expect("pushed");
    }
    for i in 1..=4 {
        let graph = format!("g{i}");
        eventually("the graph fired", async || {
            (!first.firings(&graph, 5).await.expect("firings").is_empty()).then_some(())
        })
        .await;
    }
    first.shutdown().await;
    second.shutdown().await;
    first_runner.shutdown().await;
    second_runner.shutdown().await;
}
