//! Every sample package as a WebAssembly component: each task called on a
//! fresh instance, failures classified, runaway guests stopped, hostile
//! components refused, and the host healthy throughout.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cloacina_loader::wasm::{WasmPlugin, WasmRuntime, WasmSettings};
use cloacina_loader::{CallControl, LoadError, Plugin, TaskFailure};
use cloacina_tests::sample_component;
use serde_json::{Value, json};

/// One runtime for the whole test process, as a host has.
fn runtime() -> &'static WasmRuntime {
    static RUNTIME: OnceLock<WasmRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        WasmRuntime::new(WasmSettings {
            memory_limit: 16 << 20,
            ..WasmSettings::default()
        })
        .expect("the runtime starts")
    })
}

fn load(name: &str) -> WasmPlugin {
    runtime()
        .load(&sample_component(name), None)
        .unwrap_or_else(|error| panic!("{name}: {error}"))
}

fn call(plugin: &WasmPlugin, task: &str, context: Value) -> Result<Value, TaskFailure> {
    plugin
        .call(task, &context.to_string(), &CallControl::new())
        .map(|output| serde_json::from_str(&output).expect("the loader checked the JSON"))
}

#[test]
fn etl_runs_in_webassembly_with_the_native_declaration() {
    let etl = load("etl");
    let native = cloacina_loader::native::NativePlugin::load(cloacina_tests::sample_library("etl"))
        .expect("native etl");
    cloacina_loader::check_declaration(native.declaration(), etl.declaration())
        .expect("one source, one declaration");
    let raw = call(&etl, "extract", json!({ "input": [4, 5] })).expect("extract");
    let doubled = call(&etl, "transform", raw).expect("transform");
    assert_eq!(
        call(&etl, "load", doubled).expect("load"),
        json!({ "total": 18 })
    );
}

#[test]
fn fan_out_and_cron_run_in_webassembly() {
    let fan_out = load("fan-out");
    let sum = call(&fan_out, "gather", json!({ "a": 1, "b": 2, "c": 3 })).expect("gather");
    assert_eq!(sum, json!({ "sum": 6 }));
    let cron = load("cron");
    assert_eq!(cron.declaration().cron_schedules.len(), 1);
    assert_eq!(
        call(&cron, "tick", json!({})).expect("tick"),
        json!({ "ticked": true })
    );
}

#[test]
fn retry_sees_the_attempt_number_in_a_fresh_instance() {
    let retry = load("retry");
    for attempt in 1..=2 {
        let control = CallControl::new().attempt_number(attempt);
        assert!(matches!(
            retry.call("flaky", "{}", &control),
            Err(TaskFailure::Retryable(_))
        ));
    }
    let output = retry
        .call("flaky", "{}", &CallControl::new().attempt_number(3))
        .expect("third attempt");
    assert_eq!(output, r#"{"succeeded_on_attempt":3}"#);
}

#[test]
fn a_panic_traps_the_instance_and_reports_its_message() {
    let panic = load("panic");
    let error = call(&panic, "explode", json!({ "reason": "in wasm" })).expect_err("panics");
    assert_eq!(
        error,
        TaskFailure::Fatal("the task panicked: deliberate panic: in wasm".into())
    );
    // The next call gets a fresh instance and works the same way.
    assert!(matches!(
        call(&panic, "explode", json!({})),
        Err(TaskFailure::Fatal(_))
    ));
    assert!(call(&load("etl"), "extract", json!({})).is_ok());
}

#[test]
fn a_task_past_its_timeout_is_interrupted() {
    let timeout = load("timeout");
    let started = Instant::now();
    let control = CallControl::with_timeout(Duration::from_millis(200));
    let error = timeout
        .call("sleepy", "{}", &control)
        .expect_err("interrupted");
    assert_eq!(error, TaskFailure::TimedOut(200));
    assert!(started.elapsed() < Duration::from_secs(30));
    // The host is healthy: the same plugin answers again.
    assert!(matches!(
        timeout.call(
            "sleepy",
            "{}",
            &CallControl::with_timeout(Duration::from_millis(20))
        ),
        Err(TaskFailure::TimedOut(20))
    ));
}

/// A scratch plugin whose one task `run` has `body`, as a component.
fn scratch_component(body: &str) -> WasmPlugin {
    let source = format!(
        "use cloacina_plugin::{{Context, TaskResult, json, task}};\n\
         #[task]\nfn run(_ctx: &Context) -> TaskResult {{\n{body}\n}}\n\
         cloacina_plugin::plugin! {{ tasks: [run] }}\n"
    );
    let crate_dir = cloacina_tests::scratch_plugin(&source);
    let bytes = cloacina_tests::build_component(crate_dir.path());
    runtime()
        .load(&bytes, None)
        .expect("scratch component loads")
}

#[test]
fn a_guest_that_never_yields_is_interrupted_and_one_that_hoards_memory_is_stopped() {
    // No host call, no cancellation check: only epoch interruption stops it.
    let spinner = scratch_component("let mut n = 0u64; loop { n = std::hint::black_box(n + 1); }");
    let error = spinner
        .call(
            "run",
            "{}",
            &CallControl::with_timeout(Duration::from_millis(100)),
        )
        .expect_err("interrupted");
    assert_eq!(error, TaskFailure::TimedOut(100));

    let hoarder = scratch_component(
        "let mut hoard = Vec::new(); loop { hoard.push(vec![1u8; 1 << 20]); std::hint::black_box(&hoard); }",
    );
    let error = hoarder
        .call("run", "{}", &CallControl::new())
        .expect_err("stopped");
    assert!(matches!(error, TaskFailure::Fatal(_)), "{error}");

    // The runtime is still healthy.
    assert!(call(&load("etl"), "extract", json!({})).is_ok());
}

#[test]
fn garbage_and_core_modules_are_not_components() {
    let error = runtime()
        .load(b"not wasm at all", None)
        .expect_err("garbage");
    assert!(matches!(error, LoadError::InvalidComponent(_)), "{error}");
    let core_module = b"\0asm\x01\0\0\0";
    let error = runtime().load(core_module, None).expect_err("core module");
    assert!(matches!(error, LoadError::InvalidComponent(_)), "{error}");
}

#[test]
fn the_compiled_cache_is_used_after_a_restart() {
    let cache = cloacina_tests::scratch();
    let settings = WasmSettings {
        cache_dir: Some(cache.path().to_owned()),
        ..WasmSettings::default()
    };
    let component = sample_component("etl");
    let digest = "etl-test-digest";
    {
        let first = WasmRuntime::new(settings.clone()).expect("runtime");
        first
            .load(&component, Some(digest))
            .expect("compiles and caches");
    }
    let cached: Vec<_> = std::fs::read_dir(cache.path())
        .expect("cache dir")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(digest))
        .collect();
    assert_eq!(cached.len(), 1, "one compiled component in the cache");
    let restarted = WasmRuntime::new(settings).expect("runtime");
    let plugin = restarted
        .load(&component, Some(digest))
        .expect("loads from cache");
    assert!(call(&plugin, "extract", json!({})).is_ok());

    // A corrupt cache entry is a miss, not a failure.
    std::fs::write(cached[0].path(), b"corrupt").expect("corrupt");
    assert!(restarted.load(&component, Some(digest)).is_ok());
}
