//! From crate to running task: every sample packed for both targets by the
//! real CLI, verified, extracted, re-verified from the cache, and both of its
//! artifacts loaded and called, with the manifest cross-checked against
//! what each artifact reports.

use std::sync::OnceLock;

use cloacina_loader::native::NativePlugin;
use cloacina_loader::wasm::{WasmRuntime, WasmSettings};
use cloacina_loader::{CallControl, Plugin, TaskFailure, check_declaration};
use cloacina_package::{Package, ReadLimits, SignaturePolicy};
use cloacina_signing::{KeyFile, TrustScope, TrustStore};
use cloacina_tests::{cloacinactl, sample_crate, scratch};
use serde_json::{Value, json};

use crate::packaging::path;

fn wasm_runtime() -> &'static WasmRuntime {
    static RUNTIME: OnceLock<WasmRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| WasmRuntime::new(WasmSettings::default()).expect("runtime"))
}

/// Packs `sample` for both targets, signed, and returns its loaded plugins
/// (native first), each checked against the verified manifest.
fn pack_and_load(sample: &str) -> Vec<Box<dyn Plugin>> {
    let dir = scratch();
    cloacinactl(dir.path(), &["key", "generate", "author", "--out", "keys"]).success();
    let crate_dir = sample_crate(sample);
    cloacinactl(
        dir.path(),
        &[
            "pack",
            path(&crate_dir),
            "--target",
            "all",
            "--sign",
            "keys/author.key",
            "-o",
            "p.cloacina",
        ],
    )
    .success();

    let key = KeyFile::read(&dir.path().join("keys/author.pub")).expect("public key");
    let mut trust = TrustStore::new();
    trust
        .add(key.name(), key.public_key(), TrustScope::Global)
        .expect("trust");
    let bytes = std::fs::read(dir.path().join("p.cloacina")).expect("package");
    let uploaded = Package::read(&bytes, &ReadLimits::default())
        .expect("readable")
        .verify(&trust, None, SignaturePolicy::Required)
        .expect("verifies");
    let cache = dir.path().join("cache");
    let extracted = uploaded.extract_into(&cache).expect("extracts");
    let verified = Package::read_extracted(&extracted, &ReadLimits::default())
        .expect("cache readable")
        .verify(&trust, None, SignaturePolicy::Required)
        .expect("cache verifies");

    let manifest = verified.manifest();
    let mut plugins: Vec<Box<dyn Plugin>> = Vec::new();
    for artifact in manifest.artifacts() {
        let plugin: Box<dyn Plugin> = match &artifact.kind {
            cloacina_contract::ArtifactKind::Native { .. } => Box::new(
                NativePlugin::load(&extracted.join(artifact.path.as_str())).expect("native loads"),
            ),
            cloacina_contract::ArtifactKind::Wasm => Box::new(
                wasm_runtime()
                    .load(
                        verified.artifact_bytes(&artifact.path).expect("bytes"),
                        Some(&artifact.sha256.to_hex()),
                    )
                    .expect("component loads"),
            ),
        };
        check_declaration(manifest.declaration(), plugin.declaration())
            .expect("artifact declares what the manifest says");
        plugins.push(plugin);
    }
    assert_eq!(plugins.len(), 2, "{sample}: one native, one wasm");
    plugins
}

fn call(plugin: &dyn Plugin, task: &str, context: Value) -> Result<Value, TaskFailure> {
    plugin
        .call(task, &context.to_string(), &CallControl::new())
        .map(|out| serde_json::from_str(&out).expect("JSON"))
}

#[test]
fn etl_and_fan_out_compute_the_same_on_both_targets() {
    for plugin in pack_and_load("etl") {
        let raw = call(&*plugin, "extract", json!({})).expect("extract");
        let doubled = call(&*plugin, "transform", raw).expect("transform");
        assert_eq!(
            call(&*plugin, "load", doubled).expect("load"),
            json!({ "total": 110 })
        );
    }
    for plugin in pack_and_load("fan-out") {
        let base = call(&*plugin, "split", json!({ "base": 2 })).expect("split");
        let mut merged = base.clone();
        for worker in ["worker_a", "worker_b", "worker_c"] {
            let output = call(&*plugin, worker, base.clone()).expect(worker);
            merged
                .as_object_mut()
                .expect("object")
                .extend(output.as_object().expect("object").clone());
        }
        assert_eq!(
            call(&*plugin, "gather", merged).expect("gather"),
            json!({ "sum": 20 })
        );
    }
}

#[test]
fn retry_panic_timeout_and_cron_behave_alike_on_both_targets() {
    for plugin in pack_and_load("retry") {
        let first = plugin.call("flaky", "{}", &CallControl::new().attempt_number(1));
        assert!(matches!(first, Err(TaskFailure::Retryable(_))), "{first:?}");
        let third = plugin.call("flaky", "{}", &CallControl::new().attempt_number(3));
        assert_eq!(third.expect("third"), r#"{"succeeded_on_attempt":3}"#);
    }
    for plugin in pack_and_load("panic") {
        let error = call(&*plugin, "explode", json!({ "reason": "e2e" })).expect_err("panics");
        assert!(
            matches!(&error, TaskFailure::Fatal(message) if message.contains("deliberate panic: e2e")),
            "{error:?}"
        );
    }
    for plugin in pack_and_load("timeout") {
        let timeout = plugin.declaration().tasks[0].timeout_ms.expect("timeout");
        let control = CallControl::with_timeout(std::time::Duration::from_millis(timeout));
        assert_eq!(
            plugin.call("sleepy", "{}", &control),
            Err(TaskFailure::TimedOut(timeout))
        );
    }
    for plugin in pack_and_load("cron") {
        assert_eq!(
            plugin.declaration().cron_schedules[0].expression,
            "*/5 * * * * *"
        );
        assert_eq!(
            call(&*plugin, "tick", json!({})).expect("tick"),
            json!({ "ticked": true })
        );
    }
}
