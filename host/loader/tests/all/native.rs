//! Every sample package, loaded natively: each task called, outputs
//! checked, failures classified, and the host still healthy afterwards.

use std::time::{Duration, Instant};

use cloacina_loader::native::NativePlugin;
use cloacina_loader::{CallControl, LoadError, Plugin, TaskFailure, check_declaration};
use cloacina_tests::{sample_library, scratch};
use serde_json::{Value, json};

fn load(name: &str) -> NativePlugin {
    NativePlugin::load(sample_library(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

fn call(plugin: &NativePlugin, task: &str, context: Value) -> Result<Value, TaskFailure> {
    plugin
        .call(task, &context.to_string(), &CallControl::new())
        .map(|output| serde_json::from_str(&output).expect("the loader checked the JSON"))
}

fn task_ids(plugin: &NativePlugin) -> Vec<String> {
    plugin
        .declaration()
        .tasks
        .iter()
        .map(|task| task.id.to_string())
        .collect()
}

#[test]
fn etl_passes_data_through_the_context() {
    let etl = load("etl");
    assert_eq!(task_ids(&etl), ["extract", "transform", "load"]);
    let transform = &etl.declaration().tasks[1];
    assert_eq!(transform.retry.max_attempts, 3);
    assert_eq!(transform.description, "Double every number.");
    assert_eq!(etl.declaration().workflows[0].name.as_str(), "etl");

    let raw = call(&etl, "extract", json!({ "input": [1, 2, 3] })).expect("extract");
    assert_eq!(raw, json!({ "raw": [1, 2, 3] }));
    let doubled = call(&etl, "transform", raw).expect("transform");
    assert_eq!(doubled, json!({ "doubled": [2, 4, 6] }));
    assert_eq!(
        call(&etl, "load", doubled).expect("load"),
        json!({ "total": 12 })
    );
}

#[test]
fn a_task_missing_its_input_fails_fatally_with_a_message() {
    let etl = load("etl");
    let error = call(&etl, "load", json!({})).expect_err("no input");
    assert_eq!(
        error,
        TaskFailure::Fatal("the context has no `doubled` array".into())
    );
}

#[test]
fn fan_out_declares_one_to_many_to_one() {
    let fan_out = load("fan-out");
    let gather = &fan_out.declaration().tasks[4];
    assert_eq!(gather.dependencies.len(), 3);
    for (task, key, factor) in [
        ("worker_a", "a", 2),
        ("worker_b", "b", 3),
        ("worker_c", "c", 5),
    ] {
        let output = call(&fan_out, task, json!({ "base": 7 })).expect(task);
        assert_eq!(output, json!({ key: 7 * factor }));
    }
    let sum = call(&fan_out, "gather", json!({ "a": 14, "b": 21, "c": 35 })).expect("gather");
    assert_eq!(sum, json!({ "sum": 70 }));
}

#[test]
fn retry_fails_twice_as_retryable_then_succeeds() {
    let retry = load("retry");
    for attempt in 1..=2 {
        let control = CallControl::new().attempt_number(attempt);
        let error = retry.call("flaky", "{}", &control).expect_err("not yet");
        assert!(
            matches!(error, TaskFailure::Retryable(ref m) if m.contains("not ready")),
            "{error}"
        );
    }
    let output = retry
        .call("flaky", "{}", &CallControl::new().attempt_number(3))
        .expect("third attempt");
    assert_eq!(output, r#"{"succeeded_on_attempt":3}"#);
}

#[test]
fn a_panic_is_a_fatal_error_and_the_host_carries_on() {
    let panic = load("panic");
    let error = call(&panic, "explode", json!({ "reason": "testing" })).expect_err("panics");
    assert_eq!(
        error,
        TaskFailure::Fatal("task `explode` panicked: deliberate panic: testing".into())
    );
    // The library and the host are still usable.
    assert!(call(&panic, "explode", json!({})).is_err());
    assert!(call(&load("etl"), "extract", json!({})).is_ok());
}

#[test]
fn a_task_past_its_timeout_is_stopped() {
    let timeout = load("timeout");
    let declared = timeout.declaration().tasks[0]
        .timeout_ms
        .expect("declares a timeout");
    let started = Instant::now();
    let control = CallControl::with_timeout(Duration::from_millis(declared));
    let error = timeout
        .call("sleepy", "{}", &control)
        .expect_err("timed out");
    assert_eq!(error, TaskFailure::TimedOut(declared));
    // It stopped when told (the task would otherwise run for a minute).
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn cancellation_reaches_the_task() {
    let timeout = load("timeout");
    let control = CallControl::new();
    let canceller = control.clone();
    let handle = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        canceller.cancel();
    });
    let error = timeout
        .call("sleepy", "{}", &control)
        .expect_err("cancelled");
    handle.join().expect("canceller");
    assert_eq!(error, TaskFailure::Cancelled);
}

#[test]
fn cron_declares_its_schedule() {
    let cron = load("cron");
    let schedule = &cron.declaration().cron_schedules[0];
    assert_eq!(schedule.workflow.as_str(), "cron");
    assert_eq!(schedule.expression, "*/5 * * * * *");
    assert!(call(&cron, "tick", json!({})).is_ok());
}

#[test]
fn unknown_tasks_and_bad_contexts_are_fatal_errors() {
    let etl = load("etl");
    let unknown = etl
        .call("nope", "{}", &CallControl::new())
        .expect_err("unknown");
    assert!(matches!(unknown, TaskFailure::Fatal(ref m) if m.contains("no task `nope`")));
    let garbage = etl
        .call("extract", "{not json", &CallControl::new())
        .expect_err("bad JSON");
    assert!(matches!(garbage, TaskFailure::Fatal(ref m) if m.contains("not valid JSON")));
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let dir = scratch();
    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, b"\x7fELF but not really").expect("write");
    assert!(matches!(
        NativePlugin::load(&fake),
        Err(LoadError::NotALibrary { .. })
    ));
    assert!(matches!(
        NativePlugin::load(&dir.path().join("missing.so")),
        Err(LoadError::NotALibrary { .. })
    ));
}

#[test]
fn the_manifest_and_the_artifact_must_declare_the_same_things() {
    let etl = load("etl");
    let reported = etl.declaration().clone();
    check_declaration(&reported, &reported).expect("identical");

    let mut fewer = reported.clone();
    fewer.tasks.pop();
    fewer.workflows.clear();
    let error = check_declaration(&fewer, &reported).expect_err("artifact has more");
    assert!(error.to_string().contains("`load`"), "{error}");
    let error = check_declaration(&reported, &fewer).expect_err("artifact has fewer");
    assert!(error.to_string().contains("lacks"), "{error}");

    let mut longer_timeout = reported.clone();
    longer_timeout.tasks[0].timeout_ms = Some(99_999);
    assert!(check_declaration(&longer_timeout, &reported).is_err());
}

/// A plugin built against a future ABI: the same root module, declared as
/// version 2.0.0, compiled without the SDK.
const ABI_TWO_PLUGIN: &str = r#"
use abi_stable::library::RootModule;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString};
use abi_stable::{StableAbi, declare_root_module_statics, export_root_module};
use cloacina_contract::native::{FfiHost, FfiTaskError};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    pub abi_minor: u16,
    pub declaration: extern "C" fn() -> RString,
    #[sabi(last_prefix_field)]
    pub call_task: extern "C" fn(RStr<'_>, RStr<'_>, &FfiHost) -> RResult<RString, FfiTaskError>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "cloacina_plugin";
    const NAME: &'static str = "cloacina_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("2.0.0");
}

extern "C" fn declaration() -> RString { "{}".into() }
extern "C" fn call_task(_: RStr<'_>, _: RStr<'_>, _: &FfiHost) -> RResult<RString, FfiTaskError> {
    RResult::ROk("{}".into())
}

#[export_root_module]
fn root() -> PluginModuleRef {
    PluginModule { abi_minor: 0, declaration, call_task }.leak_into_prefix()
}
"#;

#[test]
fn a_plugin_of_another_abi_major_is_refused_naming_both_versions() {
    let dir = scratch();
    let contract = cloacina_tests::repo_root().join("plugin-sdk/contract");
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"abi_two\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n\
             abi_stable = \"0.11\"\ncloacina-contract = {{ path = {:?}, features = [\"native\"] }}\n\n[workspace]\n",
            contract.display().to_string()
        ),
    )
    .expect("Cargo.toml");
    std::fs::copy(
        cloacina_tests::repo_root().join("sample-packages/Cargo.lock"),
        dir.path().join("Cargo.lock"),
    )
    .expect("lock file");
    std::fs::create_dir(dir.path().join("src")).expect("src");
    std::fs::write(dir.path().join("src/lib.rs"), ABI_TWO_PLUGIN).expect("lib.rs");
    let library = cloacina_tests::build_library(dir.path());
    let error = NativePlugin::load(&library).expect_err("ABI 2 on an ABI 1 host");
    let message = format!(
        "{error}: {}",
        std::error::Error::source(&error)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(matches!(error, LoadError::Abi { .. }), "{message}");
    assert!(
        message.contains("2.0") && message.contains("1.0"),
        "{message}"
    );
}
