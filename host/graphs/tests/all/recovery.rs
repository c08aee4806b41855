//! Restarts: a new process, a reactor panic, a graph that cannot start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloacina_contract::manifest::{InputStrategy, ReactionMode};
use cloacina_graphs::{GraphCommand, GraphConfig, ReactorHealth};
use cloacina_runtime::FunctionPlugin;
use serde_json::json;

use crate::support::*;

on_both_databases! {
    a_new_process_resumes_paused_state_and_pending_events => restart_scenario;
    a_panicking_reactor_is_live_again_at_once => panic_scenario;
    a_graph_that_cannot_start_is_crashed_past_its_budget => crash_loop_scenario;
}

fn counter() -> (cloacina_contract::Declaration, Arc<FunctionPlugin>) {
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
    let plugin =
        Arc::new(FunctionPlugin::new().task("count", |ctx, _| Ok(json!({"n": ctx["ticks"]["n"]}))));
    (declaration, plugin)
}

async fn restart_scenario(db: TestDb) {
    let (declaration, plugin) = counter();
    let runner = db.runner().await;
    let graphs = start(
        &runner,
        GraphConfig::default(),
        &declaration,
        plugin.clone(),
    )
    .await;
    graphs.push("ticks", json!({"n": 1})).await.expect("pushed");
    eventually("the first firing", async || {
        graphs.firings("counter", 5).await.expect("firings").pop()
    })
    .await;
    graphs
        .command("counter", GraphCommand::Pause)
        .await
        .expect("paused");
    for n in 2..=4 {
        graphs.push("ticks", json!({"n": n})).await.expect("pushed");
    }
    graphs.shutdown().await;
    runner.shutdown().await;

    let runner = db.runner().await;
    let graphs = start(&runner, GraphConfig::default(), &declaration, plugin).await;
    let status = eventually("the graph live again", async || {
        graphs
            .status("counter")
            .filter(|s| s.health == ReactorHealth::Live)
    })
    .await;
    assert!(status.paused, "pause survives a restart");
    assert_eq!(status.fires, 1, "counters survive a restart");
    assert_eq!(status.pending_events, 3);
    graphs
        .command("counter", GraphCommand::Resume)
        .await
        .expect("resumed");
    let firings = eventually("the pending events fired", async || {
        let firings = graphs.firings("counter", 10).await.expect("firings");
        (firings.len() == 4).then_some(firings)
    })
    .await;
    let order: Vec<i64> = firings.iter().rev().map(|f| f.id).collect();
    assert_eq!(order, [1, 2, 3, 4]);
    let seqs: Vec<Option<i64>> = firings.iter().rev().map(|f| f.first_seq).collect();
    assert_eq!(seqs, [Some(1), Some(2), Some(3), Some(4)]);
    graphs.shutdown().await;
    runner.shutdown().await;
}

async fn panic_scenario(db: TestDb) {
    let (declaration, plugin) = counter();
    let runner = db.runner().await;
    let graphs = start(&runner, GraphConfig::default(), &declaration, plugin).await;
    graphs.push("ticks", json!({"n": 1})).await.expect("pushed");
    eventually("live", async || {
        graphs
            .status("counter")
            .filter(|s| s.health == ReactorHealth::Live && s.fires == 1)
    })
    .await;
    let panicked = Instant::now();
    graphs.inject_panic("counter").expect("injected");
    let status = eventually("restarted", async || {
        graphs
            .status("counter")
            .filter(|s| s.restarts == 1 && s.health == ReactorHealth::Live)
    })
    .await;
    assert!(
        panicked.elapsed() < Duration::from_secs(2),
        "{:?}",
        panicked.elapsed()
    );
    assert_eq!(status.fires, 1);
    // It works on: the next event fires.
    graphs.push("ticks", json!({"n": 2})).await.expect("pushed");
    eventually("the next firing", async || {
        graphs.status("counter").filter(|s| s.fires == 2)
    })
    .await;
    graphs.shutdown().await;
    runner.shutdown().await;
}

async fn crash_loop_scenario(db: TestDb) {
    let (declaration, plugin) = counter();
    let runner = db.runner().await;
    let config = GraphConfig {
        supervision: quick_supervision(),
        ..GraphConfig::default()
    };
    let graphs = start(&runner, config.clone(), &declaration, plugin.clone()).await;
    eventually("live", async || {
        graphs
            .status("counter")
            .filter(|s| s.health == ReactorHealth::Live)
    })
    .await;
    graphs.shutdown().await;
    // A checkpoint that cannot be read: every start fails.
    sqlx::query("UPDATE graph_state SET cache = 'not json' WHERE graph = 'counter'")
        .execute(runner.database().pool())
        .await
        .expect("corrupted");
    let graphs = start(&runner, config, &declaration, plugin).await;
    let crashed = eventually("crashed", async || {
        let crashed = graphs.crashed();
        (!crashed.is_empty()).then_some(crashed)
    })
    .await;
    assert_eq!(crashed, ["counter"]);
    let status = graphs.status("counter").expect("status");
    let ReactorHealth::Crashed { error, restarts } = status.health else {
        panic!("crashed: {status:?}");
    };
    assert!(error.contains("cache"), "{error}");
    assert!(restarts > 3);
    // Status reads never wait on the crash loop.
    let asked = Instant::now();
    for _ in 0..100 {
        let _ = graphs.statuses();
    }
    assert!(asked.elapsed() < Duration::from_millis(500));
    graphs.shutdown().await;
    runner.shutdown().await;
}

on_both_databases! {
    a_new_version_takes_over_with_state_and_pending_events => upgrade_scenario;
}

async fn upgrade_scenario(db: TestDb) {
    let (declaration, v1) = counter();
    let runner = db.runner().await;
    let graphs = start(&runner, GraphConfig::default(), &declaration, v1).await;
    graphs.push("ticks", json!({"n": 1})).await.expect("pushed");
    eventually("the first firing", async || {
        graphs.status("counter").filter(|s| s.fires == 1)
    })
    .await;
    graphs
        .command("counter", GraphCommand::Pause)
        .await
        .expect("paused");
    graphs.push("ticks", json!({"n": 2})).await.expect("pushed");

    // Version 2 counts differently; events keep flowing meanwhile.
    let v2 = Arc::new(FunctionPlugin::new().task("count", |ctx, _| {
        Ok(json!({"n": ctx["ticks"]["n"], "version": 2}))
    }));
    let pushing = {
        let graphs = graphs.clone();
        tokio::spawn(async move { graphs.push("ticks", json!({"n": 3})).await })
    };
    graphs
        .register(&package("2.0.0"), &declaration, v2)
        .await
        .expect("version 2 registered");
    pushing
        .await
        .expect("joins")
        .expect("accepted during the upgrade");
    let status = eventually("live on version 2", async || {
        graphs
            .status("counter")
            .filter(|s| s.version == "2.0.0" && s.health == ReactorHealth::Live)
    })
    .await;
    assert!(status.paused, "the pause carries over");
    assert_eq!(status.pending_events, 2);
    graphs
        .command("counter", GraphCommand::Resume)
        .await
        .expect("resumed");
    let firings = eventually("the pending events fired on version 2", async || {
        let firings = graphs.firings("counter", 10).await.expect("firings");
        (firings.len() == 3).then_some(firings)
    })
    .await;
    assert_eq!(firings[0].outputs["count"], json!({"n": 3, "version": 2}));
    assert_eq!(firings[1].outputs["count"], json!({"n": 2, "version": 2}));

    // Unloading stops it: producers are refused, the rows stay.
    graphs.unregister(&package("2.0.0"), &declaration).await;
    assert!(graphs.status("counter").is_none());
    let refused = graphs.push("ticks", json!({"n": 4})).await;
    assert!(refused.is_err(), "{refused:?}");
    graphs.shutdown().await;
    runner.shutdown().await;
}
