//! The `graph` sample package, built native and as a WebAssembly
//! component from one source, run by the graph runtime: `climate` fires
//! when both sources have news, routes, keeps its window and starts
//! `notify`; `counter` fires once per event; `convert` invokes a graph.

use std::sync::Arc;

use cloacina_graphs::{GraphConfig, GraphRuntime};
use cloacina_loader::Plugin;
use cloacina_loader::native::NativePlugin;
use cloacina_loader::wasm::{WasmRuntime, WasmSettings};
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_runs_natively() {
    let plugin = NativePlugin::load(cloacina_tests::sample_library("graph")).expect("loads");
    run_sample(Arc::new(plugin)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_runs_as_webassembly() {
    let runtime = WasmRuntime::new(WasmSettings::default()).expect("engine");
    let plugin = runtime
        .load(&cloacina_tests::sample_component("graph"), None)
        .expect("loads");
    run_sample(Arc::new(plugin)).await;
}

async fn run_sample(plugin: Arc<dyn Plugin>) {
    let db = TestDb::sqlite();
    let declaration = plugin.declaration().clone();
    let runner = db.runner().await;
    runner
        .register_package(package("0.1.0"), &declaration, plugin.clone())
        .await
        .expect("workflows registered");
    let graphs = GraphRuntime::start(&runner, GraphConfig::default())
        .await
        .expect("graph runtime");
    let started = graphs
        .register(&package("0.1.0"), &declaration, plugin)
        .await
        .expect("graphs registered");
    assert_eq!(started, ["climate", "counter"]);

    graphs
        .push("temperature", json!({"celsius": 31.5}))
        .await
        .expect("pushed");
    for percent in [40, 50, 45] {
        graphs
            .push("humidity", json!({"percent": percent}))
            .await
            .expect("pushed");
    }
    let firing = eventually("climate fired", async || {
        graphs.firings("climate", 5).await.expect("firings").pop()
    })
    .await;
    assert!(firing.ok, "{firing:?}");
    assert_eq!(
        firing.outputs["raise_alert"],
        json!({"alert": "too hot: 31.5 C at 45% humidity"})
    );
    assert!(firing.outputs.get("note_mild").is_none());

    for n in 1..=3 {
        graphs.push("ticks", json!({"n": n})).await.expect("pushed");
    }
    let counted = eventually("three counter firings", async || {
        let firings = graphs.firings("counter", 5).await.expect("firings");
        (firings.len() == 3).then_some(firings)
    })
    .await;
    let order: Vec<_> = counted
        .iter()
        .rev()
        .map(|f| f.outputs["count"]["n"].clone())
        .collect();
    assert_eq!(order, [json!(1), json!(2), json!(3)]);

    let notified: String = eventually("notify completed", async || {
        sqlx::query_scalar(
            "SELECT final_context FROM executions WHERE workflow_name = 'notify' AND status = 'completed'",
        )
        .fetch_optional(runner.database().pool())
        .await
        .ok()
        .flatten()
    })
    .await;
    let context: serde_json::Value = serde_json::from_str(&notified).expect("JSON");
    assert_eq!(context["notified"], "too hot: 31.5 C at 45% humidity");

    // A task that invokes a graph: the graph runs inside its attempt.
    let converted = runner
        .execute("convert", json!({"celsius": 100}))
        .await
        .expect("runs");
    let context = converted.final_context.expect("final context");
    assert_eq!(context["to_fahrenheit"], json!({"fahrenheit": 212.0}));
    graphs.shutdown().await;
    runner.shutdown().await;
}
