//! What a graph does with events: criteria, batches, windows, routing,
//! subscriptions, commands, backpressure.

use std::sync::Arc;
use std::time::Duration;

use cloacina_contract::manifest::{
    AccumulatorDeclaration, AccumulatorKind, InputStrategy, ReactionMode,
};
use cloacina_graphs::{CommandReply, GraphCommand, GraphConfig, GraphError};
use cloacina_runtime::FunctionPlugin;
use serde_json::{Value, json};

use crate::support::*;

on_both_databases! {
    when_all_waits_for_every_source_then_routes_feeds_and_starts_subscriptions => when_all_scenario;
    commands_take_effect_before_they_are_answered => commands_scenario;
    an_overloaded_sequential_graph_slows_its_producers_and_drops_nothing => overload_scenario;
}

/// `climate`-like: passthrough `t`, batch `h` (size 2), window `seen`
/// (capacity 2, fed by `assess`); `assess` routes to `hot` or `mild`; the
/// workflow `notify` is subscribed.
async fn when_all_scenario(db: TestDb) {
    let mut g = graph(
        "climate",
        ReactionMode::WhenAll,
        InputStrategy::Latest,
        vec![
            passthrough("t"),
            AccumulatorDeclaration {
                max_buffer_size: Some(2),
                ..AccumulatorDeclaration::new(id("h"), AccumulatorKind::Batch)
            },
            AccumulatorDeclaration {
                capacity: Some(2),
                feed: Some(id("assess")),
                ..AccumulatorDeclaration::new(id("seen"), AccumulatorKind::State)
            },
        ],
        vec![
            node("assess", &["t", "h", "seen"]),
            node("hot", &["assess.hot"]),
            node("mild", &["assess.mild"]),
        ],
    );
    subscribe(&mut g, "notify");
    let declaration = declaration(vec![g], &[], &["notify"]);
    let plugin = Arc::new(
        FunctionPlugin::new()
            .task("assess", |ctx, _| {
                let t = ctx["t"]["c"].as_f64().unwrap_or_default();
                let h = ctx["h"].as_array().map_or(0, Vec::len);
                let seen = ctx["seen"].as_array().map_or(0, Vec::len);
                let reading = json!({"c": t, "batch": h, "seen": seen});
                Ok(if t >= 30.0 {
                    json!({"hot": reading})
                } else {
                    json!({"mild": reading})
                })
            })
            .task("hot", |ctx, _| Ok(json!({"alert": ctx["assess.hot"]["c"]})))
            .task("mild", |ctx, _| {
                Ok(json!({"note": ctx["assess.mild"]["c"]}))
            })
            .task("notify_task", |ctx, _| {
                Ok(json!({"notified": ctx["hot"]["alert"], "firing": ctx["$firing"]["id"]}))
            }),
    );
    let runner = db.runner().await;
    let graphs = start(&runner, GraphConfig::default(), &declaration, plugin).await;

    graphs.push("t", json!({"c": 31})).await.expect("pushed");
    graphs.push("h", json!({"p": 40})).await.expect("pushed");
    // `h` has buffered one of two: no firing yet.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        graphs
            .firings("climate", 10)
            .await
            .expect("firings")
            .is_empty()
    );

    graphs.push("h", json!({"p": 50})).await.expect("pushed");
    let first = eventually("the first firing", async || {
        graphs.firings("climate", 10).await.expect("firings").pop()
    })
    .await;
    assert!(first.ok, "{first:?}");
    assert_eq!(first.inputs["h"], json!([{"p": 40}, {"p": 50}]));
    assert_eq!(first.outputs["hot"], json!({"alert": 31.0}));
    assert!(
        first.outputs.get("mild").is_none(),
        "routed away: {first:?}"
    );
    assert_eq!(first.outputs["assess"]["hot"]["seen"], 0);
    assert_eq!((first.first_seq, first.last_seq), (Some(1), Some(3)));

    // The next firing needs both again; the window holds the last output.
    graphs.push("t", json!({"c": 12})).await.expect("pushed");
    graphs.push("h", json!({"p": 1})).await.expect("pushed");
    graphs.push("h", json!({"p": 2})).await.expect("pushed");
    let second = eventually("the second firing", async || {
        let firings = graphs.firings("climate", 10).await.expect("firings");
        (firings.len() == 2).then(|| firings[0].clone())
    })
    .await;
    assert_eq!(second.outputs["mild"], json!({"note": 12.0}));
    assert_eq!(second.outputs["assess"]["mild"]["seen"], 1);
    let status = graphs.status("climate").expect("status");
    assert_eq!(status.fires, 2);
    assert_eq!(status.pending_events, 0);

    // One `notify` execution per successful firing, with the firing's
    // outputs in its context.
    let executions: Vec<(String, String)> = eventually("two notify executions", async || {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT status, final_context FROM executions WHERE origin = 'graph:climate' AND status = 'completed' ORDER BY created_at",
        )
        .fetch_all(runner.database().pool())
        .await
        .ok()?;
        (rows.len() == 2).then_some(rows)
    })
    .await;
    let context: Value = serde_json::from_str(&executions[0].1).expect("json");
    assert_eq!(context["notified"], 31.0);
    assert_eq!(context["firing"], first.id);
    graphs.shutdown().await;
    runner.shutdown().await;
}

async fn commands_scenario(db: TestDb) {
    let declaration = declaration(
        vec![graph(
            "echo",
            ReactionMode::WhenAny,
            InputStrategy::Latest,
            vec![passthrough("x")],
            vec![node("repeat", &["x"])],
        )],
        &[],
        &[],
    );
    let plugin =
        Arc::new(FunctionPlugin::new().task("repeat", |ctx, _| Ok(json!({"x": ctx["x"]}))));
    let runner = db.runner().await;
    let graphs = start(&runner, GraphConfig::default(), &declaration, plugin).await;

    let paused = graphs
        .command("echo", GraphCommand::Pause)
        .await
        .expect("pauses");
    assert_eq!(paused, CommandReply::Paused);
    assert!(graphs.status("echo").expect("status").paused);
    // Paused: events fold in, nothing fires, and a forced fire is refused.
    graphs.push("x", json!(1)).await.expect("pushed");
    let refused = graphs.command("echo", GraphCommand::ForceFire).await;
    assert!(matches!(refused, Err(GraphError::Paused(_))), "{refused:?}");
    let state = graphs
        .command("echo", GraphCommand::GetState)
        .await
        .expect("state");
    assert_eq!(
        state,
        CommandReply::State(json!({"x": 1}).as_object().cloned().expect("map"))
    );
    assert!(graphs.firings("echo", 5).await.expect("firings").is_empty());

    // Resume fires at once on what arrived while paused.
    graphs
        .command("echo", GraphCommand::Resume)
        .await
        .expect("resumes");
    let fired = eventually("the resumed firing", async || {
        graphs.firings("echo", 5).await.expect("firings").pop()
    })
    .await;
    assert_eq!(fired.outputs["repeat"], json!({"x": 1}));
    assert!(!fired.manual);

    let with = json!({"x": 7}).as_object().cloned().expect("map");
    let CommandReply::Fired(manual) = graphs
        .command("echo", GraphCommand::FireWith(with))
        .await
        .expect("fires")
    else {
        panic!("fire_with answers a firing");
    };
    assert!(manual.manual && manual.ok);
    assert_eq!(manual.outputs["repeat"], json!({"x": 7}));
    let unknown = json!({"y": 1}).as_object().cloned().expect("map");
    let refused = graphs
        .command("echo", GraphCommand::FireWith(unknown))
        .await;
    assert!(
        matches!(refused, Err(GraphError::InvalidInput(_))),
        "{refused:?}"
    );
    let nowhere = graphs.push("nope", json!(1)).await;
    assert!(
        matches!(nowhere, Err(GraphError::UnknownAccumulator(_))),
        "{nowhere:?}"
    );
    let missing = graphs.command("nope", GraphCommand::ForceFire).await;
    assert!(
        matches!(missing, Err(GraphError::UnknownGraph(_))),
        "{missing:?}"
    );
    graphs.shutdown().await;
    runner.shutdown().await;
}

/// 20 in-flight producers against a graph that holds at most 50 pending
/// events and takes ~1 ms per event: every event fires once, in order.
async fn overload_scenario(db: TestDb) {
    let declaration = declaration(
        vec![graph(
            "counter",
            ReactionMode::WhenAny,
            InputStrategy::Sequential,
            vec![passthrough("ticks")],
            vec![node("count", &["ticks"])],
        )],
        &[],
        &[],
    );
    let plugin = Arc::new(FunctionPlugin::new().task("count", |ctx, _| {
        std::thread::sleep(Duration::from_micros(500));
        Ok(json!({"n": ctx["ticks"]["n"]}))
    }));
    let runner = db.runner().await;
    let config = GraphConfig {
        max_pending: 50,
        ..GraphConfig::default()
    };
    let graphs = start(&runner, config, &declaration, plugin).await;
    const EVENTS: u64 = 600;
    let mut acks = Vec::new();
    for n in 1..=EVENTS {
        // Waits whenever 50 are pending: the producer is slowed, not refused.
        let accepted = graphs
            .accept("ticks", json!({"n": n}))
            .await
            .expect("accepted");
        acks.push(accepted);
        assert!(graphs.status("counter").expect("status").pending_events <= 50 + 20);
    }
    for ack in acks {
        ack.durable().await.expect("durable");
    }
    let firings = eventually("every event fired", async || {
        let firings = graphs.firings("counter", 1_000).await.expect("firings");
        (firings.len() as u64 == EVENTS).then_some(firings)
    })
    .await;
    let order: Vec<u64> = firings
        .iter()
        .rev()
        .map(|f| f.outputs["count"]["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(order, (1..=EVENTS).collect::<Vec<_>>());
    assert!(graphs.backpressure("counter").expect("graph") > Duration::ZERO);
    graphs.shutdown().await;
    runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_show_each_graph() {
    let db = TestDb::sqlite();
    let declaration = declaration(
        vec![graph(
            "echo",
            ReactionMode::WhenAny,
            InputStrategy::Latest,
            vec![passthrough("x")],
            vec![node("repeat", &["x"])],
        )],
        &[],
        &[],
    );
    let plugin =
        Arc::new(FunctionPlugin::new().task("repeat", |ctx, _| Ok(json!({"x": ctx["x"]}))));
    let runner = db.runner().await;
    let config = GraphConfig::default();
    let metrics = config.metrics.clone();
    let graphs = start(&runner, config, &declaration, plugin).await;
    eventually("live", async || {
        graphs
            .status("echo")
            .filter(|s| s.health == cloacina_graphs::ReactorHealth::Live)
    })
    .await;
    graphs.push("x", json!(1)).await.expect("pushed");
    eventually("a firing", async || {
        graphs.status("echo").filter(|s| s.fires == 1)
    })
    .await;
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
    assert!(
        text.contains(r#"cloacina_reactor_fires_total{tenant="public",graph="echo",reactor="echo",strategy="when_any"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("cloacina_graph_event_to_fire_seconds_count 1"),
        "{text}"
    );
    graphs.shutdown().await;
    runner.shutdown().await;
}

on_both_databases! {
    a_polling_accumulator_fires_with_what_its_task_answers => polling_scenario;
}

async fn polling_scenario(db: TestDb) {
    let g = graph(
        "rates",
        ReactionMode::WhenAny,
        InputStrategy::Sequential,
        vec![AccumulatorDeclaration {
            poll_interval_ms: Some(20),
            ..AccumulatorDeclaration::new(id("fx"), AccumulatorKind::Polling)
        }],
        vec![node("convert", &["fx"])],
    );
    let declaration = declaration(vec![g], &["fx"], &[]);
    let polls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = polls.clone();
    let plugin = Arc::new(
        FunctionPlugin::new()
            // Every other poll has news; the others answer null (nothing).
            .task("fx", move |_, _| {
                let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(if n.is_multiple_of(2) {
                    json!({"eur": n})
                } else {
                    Value::Null
                })
            })
            .task("convert", |ctx, _| Ok(json!({"seen": ctx["fx"]["eur"]}))),
    );
    let runner = db.runner().await;
    let graphs = start(&runner, GraphConfig::default(), &declaration, plugin).await;
    let firings = eventually("three polled values fired", async || {
        let firings = graphs.firings("rates", 10).await.expect("firings");
        (firings.len() >= 3).then_some(firings)
    })
    .await;
    let seen: Vec<u64> = firings
        .iter()
        .rev()
        .take(3)
        .map(|f| f.outputs["convert"]["seen"].as_u64().expect("a value"))
        .collect();
    assert_eq!(
        seen,
        [0, 2, 4],
        "only answers with news are events, in order"
    );
    let status = graphs.status("rates").expect("status");
    assert_eq!(
        status.accumulators[0].status,
        cloacina_graphs::AccumulatorHealth::Live
    );
    graphs.shutdown().await;
    runner.shutdown().await;
}
