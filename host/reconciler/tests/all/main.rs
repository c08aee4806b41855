//! The reconciler on SQLite and on PostgreSQL, with the real ETL sample
//! library: load what the registry holds, mark what cannot load, unload what
//! leaves it or loses its signer's trust.

use std::sync::Arc;

use cloacina_contract::{ArtifactKind, Declaration, HOST_ABI_VERSION, Identifier, PackageInfo};
use cloacina_loader::Plugin;
use cloacina_loader::native::NativePlugin;
use cloacina_loader::wasm::{WasmRuntime, WasmSettings};
use cloacina_package::{Package, PackageBuilder, ReadLimits, SignaturePolicy};
use cloacina_reconciler::{DropDir, Reconciler, ReconcilerConfig};
use cloacina_registry::{PackageStatus, Registry, TrustKeys};
use cloacina_runtime::{Database, ExecutionStatus, Runner, RunnerConfig, RuntimeError, TenantId};
use cloacina_signing::{KeyPair, TrustScope, TrustStore};
use serde_json::json;

/// A signed package of the real ETL library, declaring `declaration`.
fn etl_package(name: &str, key: &KeyPair, declaration: Declaration) -> Vec<u8> {
    cloacina_tests::native_package(
        cloacina_tests::sample_library("etl"),
        name,
        "0.1.0",
        declaration,
        Some(key),
    )
}

fn etl_declaration() -> Declaration {
    NativePlugin::load(cloacina_tests::sample_library("etl"))
        .expect("loads")
        .declaration()
        .clone()
}

/// The ETL declaration with its workflow renamed.
fn with_workflow_named(name: &str) -> Declaration {
    let mut declaration = etl_declaration();
    for workflow in &mut declaration.workflows {
        workflow.name = cloacina_contract::Identifier::new(name).expect("name");
    }
    declaration
}

async fn upload(registry: &Registry, key: &KeyPair, bytes: &[u8]) {
    let mut trust = TrustStore::new();
    trust
        .add(key.name(), key.public_key(), TrustScope::Global)
        .expect("trust");
    let verified = Package::read(bytes, &ReadLimits::default())
        .expect("readable")
        .verify(&trust, None, SignaturePolicy::Required)
        .expect("verifies");
    registry.upload(&verified, bytes).await.expect("uploads");
}

/// The ETL library in a package that asks for ABI 2.0.
fn future_abi_package(key: &KeyPair) -> Vec<u8> {
    let info = PackageInfo {
        name: Identifier::new("future").expect("name"),
        version: semver::Version::new(0, 1, 0),
        description: String::new(),
    };
    let abi = cloacina_contract::AbiVersion {
        major: HOST_ABI_VERSION.major + 1,
        minor: 0,
    };
    let mut builder = PackageBuilder::new(info, abi, with_workflow_named("etl_future"));
    builder
        .add_artifact(
            ArtifactKind::Native {
                target: cloacina_tests::HOST_TARGET.into(),
            },
            "libetl.so",
            std::fs::read(cloacina_tests::sample_library("etl")).expect("library"),
        )
        .expect("artifact");
    builder.finish(Some(key)).expect("built").bytes
}

/// A signed package with made-up artifacts: enough for the registry,
/// which does not load them.
fn fake_package(name: &str, key: &KeyPair) -> Vec<u8> {
    let info = PackageInfo {
        name: Identifier::new(name).expect("name"),
        version: semver::Version::new(1, 0, 0),
        description: String::new(),
    };
    let mut builder = PackageBuilder::new(info, HOST_ABI_VERSION, Declaration::default());
    builder
        .add_artifact(
            ArtifactKind::Wasm,
            "p.wasm",
            format!("\0asm {name}").into_bytes(),
        )
        .expect("artifact");
    builder.finish(Some(key)).expect("built").bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drop_directory_registers_settled_files_and_rejects_bad_ones() {
    let home = tempfile::tempdir().expect("home");
    let drop = home.path().join("drop");
    std::fs::create_dir_all(drop.join("acme")).expect("dirs");
    let url = format!("sqlite://{}", home.path().join("host.db").display());
    let main = Database::connect(&url, &TenantId::public())
        .await
        .expect("db");
    let trust = TrustKeys::open(&main).await.expect("trust");
    let key = KeyPair::from_seed("release", &[3; 32]);
    trust
        .add("release", &key.public_key(), None)
        .await
        .expect("trusted");
    let settle = std::time::Duration::from_millis(60);
    let mut watcher = DropDir::new(&drop, &url, trust, true).settle(settle);
    let registry = |tenant: &str| {
        let url = url.clone();
        let tenant = TenantId::new(tenant).expect("tenant");
        async move {
            Registry::open(&Database::connect(&url, &tenant).await.expect("db"))
                .await
                .expect("registry")
        }
    };
    let scan_after_settling = async |watcher: &mut DropDir| {
        tokio::time::sleep(settle * 2).await;
        watcher.scan().await.expect("scans")
    };

    // A file already there, one for a tenant, one half-written, one junk,
    // one signed by a stranger.
    std::fs::write(drop.join("etl.cloacina"), fake_package("etl", &key)).expect("write");
    std::fs::write(
        drop.join("acme/report.cloacina"),
        fake_package("report", &key),
    )
    .expect("write");
    let whole = fake_package("late", &key);
    std::fs::write(drop.join("late.cloacina"), &whole[..whole.len() / 2]).expect("write");
    std::fs::write(drop.join("junk.cloacina"), b"not an archive").expect("write");
    let stranger = KeyPair::from_seed("stranger", &[4; 32]);
    std::fs::write(
        drop.join("stranger.cloacina"),
        fake_package("sneaky", &stranger),
    )
    .expect("write");
    std::fs::write(drop.join("notes.txt"), b"ignored").expect("write");

    let first = watcher.scan().await.expect("scans");
    assert!(
        first.registered.is_empty(),
        "nothing is read before it settles: {first:?}"
    );
    assert_eq!(first.settling.len(), 5, "{first:?}");

    // The half-written file is completed before it settles.
    std::fs::write(drop.join("late.cloacina"), &whole).expect("write");
    let second = scan_after_settling(&mut watcher).await;
    assert_eq!(
        second.registered,
        ["acme/report.cloacina", "etl.cloacina"],
        "{second:?}"
    );
    assert_eq!(
        second.settling,
        ["late.cloacina"],
        "a file that changed waits again"
    );
    let rejected: Vec<&str> = second
        .rejected
        .iter()
        .map(|(file, _)| file.as_str())
        .collect();
    assert_eq!(rejected, ["junk.cloacina", "stranger.cloacina"]);
    assert!(
        second.rejected[0].1.contains("not a usable package"),
        "{second:?}"
    );
    assert!(
        second.rejected[1].1.contains("verification failed"),
        "{second:?}"
    );
    assert!(drop.join(".rejected/junk.cloacina").is_file() && !drop.join("junk.cloacina").exists());
    let reason =
        std::fs::read_to_string(drop.join(".rejected/stranger.cloacina.reason")).expect("reason");
    assert!(reason.contains("verification failed"), "{reason}");

    let third = scan_after_settling(&mut watcher).await;
    assert_eq!(third.registered, ["late.cloacina"]);
    assert!(
        third.rejected.is_empty(),
        "rejected files are not retried: {third:?}"
    );
    let names = |records: Vec<cloacina_registry::PackageRecord>| {
        records.into_iter().map(|r| r.name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(registry("public").await.list().await.expect("lists")),
        ["etl", "late"]
    );
    assert_eq!(
        names(registry("acme").await.list().await.expect("lists")),
        ["report"]
    );

    // Removed: unregistered.
    std::fs::remove_file(drop.join("etl.cloacina")).expect("remove");
    let fourth = watcher.scan().await.expect("scans");
    assert_eq!(fourth.removed, ["etl.cloacina"]);
    assert_eq!(
        names(registry("public").await.list().await.expect("lists")),
        ["late"]
    );

    // Replaced in place by another package: that package replaces it.
    std::fs::write(drop.join("late.cloacina"), fake_package("later", &key)).expect("write");
    let changed = watcher.scan().await.expect("scans");
    assert_eq!(changed.settling, ["late.cloacina"]);
    let replaced = scan_after_settling(&mut watcher).await;
    assert_eq!(replaced.registered, ["late.cloacina"]);
    assert_eq!(
        names(registry("public").await.list().await.expect("lists")),
        ["later"]
    );

    // A file removed while no host watched is unregistered by the next
    // watcher's first scan; the others are picked up without duplicates.
    drop_watcher(watcher);
    std::fs::remove_file(drop.join("acme/report.cloacina")).expect("remove");
    // ...and one replaced by another package meanwhile.
    std::fs::write(drop.join("late.cloacina"), fake_package("latest", &key)).expect("write");
    let mut restarted = DropDir::new(
        &drop,
        &url,
        TrustKeys::open(&main).await.expect("trust"),
        true,
    )
    .settle(settle);
    let first = restarted.scan().await.expect("scans");
    assert_eq!(first.removed, ["acme/report.cloacina"]);
    let again = scan_after_settling(&mut restarted).await;
    assert_eq!(again.registered, ["late.cloacina"]);
    assert_eq!(
        names(registry("public").await.list().await.expect("lists")),
        ["latest"],
        "what the file held before the restart is gone"
    );
    assert!(
        registry("acme")
            .await
            .list()
            .await
            .expect("lists")
            .is_empty()
    );
}

fn drop_watcher(watcher: DropDir) {
    drop(watcher);
}

async fn scenario(url: &str, tenant: TenantId) {
    let cache = tempfile::tempdir().expect("cache");
    let db = Database::connect(url, &tenant).await.expect("database");
    let registry = Registry::open(&db).await.expect("registry");
    let trust = TrustKeys::open(&db).await.expect("trust");
    let runner = Runner::with_config(
        url,
        RunnerConfig {
            tenant: tenant.clone(),
            ..RunnerConfig::default()
        },
    )
    .await
    .expect("runner");
    let wasm = Arc::new(WasmRuntime::new(WasmSettings::default()).expect("engine"));
    let graphs = cloacina_graphs::GraphRuntime::start(&runner, Default::default())
        .await
        .expect("graphs");
    let mut reconciler = Reconciler::new(
        runner.clone(),
        graphs,
        registry.clone(),
        trust.clone(),
        wasm,
        ReconcilerConfig {
            cache_dir: cache.path().to_owned(),
            worker_binary: None,
            require_signatures: true,
        },
    );
    let key = KeyPair::from_seed("release", &[9; 32]);
    trust
        .add("release", &key.public_key(), None)
        .await
        .expect("trusted");

    // A good package, and one whose manifest lies about its artifact.
    upload(
        &registry,
        &key,
        &etl_package("etl", &key, etl_declaration()),
    )
    .await;
    let mut lying = etl_declaration();
    lying.tasks.pop();
    lying.workflows.clear();
    upload(&registry, &key, &etl_package("liar", &key, lying)).await;
    // One whose stored bytes were tampered with after the upload (a file
    // changed and the archive re-packed), and one for an ABI from the
    // future.
    // (Each declares a workflow of its own: a workflow name belongs to
    // one package.)
    let honest = etl_package("tampered", &key, with_workflow_named("etl_tampered"));
    upload(&registry, &key, &honest).await;
    let mut files = cloacina_tests::package_files(&honest);
    let library = files
        .iter_mut()
        .find(|(path, _)| path.ends_with(".so"))
        .expect("library")
        .1;
    library[1000] ^= 1;
    let stored: String = sqlx::query_scalar("SELECT sha256 FROM packages WHERE name = 'tampered'")
        .fetch_one(db.pool())
        .await
        .expect("row");
    sqlx::query("UPDATE package_archives SET bytes = $1 WHERE sha256 = $2")
        .bind(cloacina_tests::pack_files(&files))
        .bind(stored)
        .execute(db.pool())
        .await
        .expect("tampers");
    upload(&registry, &key, &future_abi_package(&key)).await;

    let report = reconciler.reconcile().await.expect("reconciles");
    assert_eq!(report.loaded, ["etl@0.1.0"]);
    let error_of = |name: &str| {
        report
            .failed
            .iter()
            .find(|(package, _)| package.starts_with(name))
            .map(|(_, error)| error.clone())
            .unwrap_or_else(|| panic!("{name} did not fail: {report:?}"))
    };
    assert!(error_of("liar@").contains("does not declare what the manifest does"));
    assert!(error_of("tampered@").contains("verification failed"));
    assert!(
        error_of("future@").contains("ABI"),
        "{}",
        error_of("future@")
    );
    assert_eq!(report.failed.len(), 3, "{report:?}");
    let v = semver::Version::new(0, 1, 0);
    assert_eq!(
        registry
            .get("etl", &v)
            .await
            .expect("row")
            .expect("present")
            .status,
        PackageStatus::Loaded
    );
    assert!(matches!(
        registry
            .get("liar", &v)
            .await
            .expect("row")
            .expect("present")
            .status,
        PackageStatus::Failed(_)
    ));
    let result = runner
        .execute("etl", json!({"input": [1, 2, 3]}))
        .await
        .expect("runs");
    assert_eq!(result.status, ExecutionStatus::Completed);
    assert_eq!(result.final_context.expect("context")["total"], 12);

    // Nothing changed: nothing happens, and the failed package waits out
    // its backoff instead of being retried at once.
    let again = reconciler.reconcile().await.expect("reconciles");
    assert!(
        again.loaded.is_empty() && again.unloaded.is_empty(),
        "{again:?}"
    );
    assert!(again.failed.is_empty(), "{again:?}");
    assert_eq!(
        again.waiting,
        ["future@0.1.0", "liar@0.1.0", "tampered@0.1.0"]
    );

    // Removed from the registry: unloaded; uploaded again: loaded again.
    assert!(registry.remove("etl", &v).await.expect("removes"));
    let removed = reconciler.reconcile().await.expect("reconciles");
    assert_eq!(removed.unloaded, ["etl@0.1.0"]);
    assert_eq!(
        removed.released,
        ["etl@0.1.0"],
        "nothing ran on it: forgotten at once"
    );
    assert!(matches!(
        runner.execute("etl", json!({})).await,
        Err(RuntimeError::UnknownWorkflow(_))
    ));
    upload(
        &registry,
        &key,
        &etl_package("etl", &key, etl_declaration()),
    )
    .await;
    assert_eq!(
        reconciler.reconcile().await.expect("reconciles").loaded,
        ["etl@0.1.0"]
    );
    assert_eq!(reconciler.loaded(), ["etl@0.1.0"]);

    // The signer revoked: unloaded at the next pass, and marked failed.
    trust.revoke(&key.public_key().id()).await.expect("revokes");
    let revoked = reconciler.reconcile().await.expect("reconciles");
    assert_eq!(revoked.unloaded, ["etl@0.1.0"]);
    assert!(
        revoked
            .failed
            .iter()
            .any(|(p, e)| p == "etl@0.1.0" && e.contains("revoked")),
        "{revoked:?}"
    );
    assert!(runner.workflows().is_empty());
    runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    scenario(
        &format!("sqlite://{}", dir.path().join("host.db").display()),
        TenantId::public(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(url) = cloacina_tests::postgres_url() else {
        return;
    };
    let schema = cloacina_tests::unique_schema("rec");
    scenario(&url, TenantId::new(schema.clone()).expect("tenant")).await;
    cloacina_tests::drop_schema(&url, &schema);
}

/// The drop directory across a database outage (PostgreSQL through a
/// proxy the test cuts): a file dropped meanwhile waits in place, never
/// rejected, and is registered once the database is back; a file removed
/// meanwhile has its package unregistered once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drop_directory_waits_out_a_database_outage() {
    let Some(admin) = cloacina_tests::postgres_url() else {
        return;
    };
    let (database, direct) = cloacina_tests::fresh_database(&admin, "dropout");
    let proxy = cloacina_tests::CuttableProxy::start("127.0.0.1:5432".parse().expect("addr"));
    let url = direct.replace(":5432/", &format!(":{}/", proxy.port()));
    let home = tempfile::tempdir().expect("home");
    let dir = home.path().join("drop");
    std::fs::create_dir_all(&dir).expect("dir");
    let main = Database::connect(&direct, &TenantId::public())
        .await
        .expect("db");
    let trust = TrustKeys::open(&main).await.expect("trust");
    let key = KeyPair::from_seed("release", &[5; 32]);
    trust
        .add("release", &key.public_key(), None)
        .await
        .expect("trusted");
    let registry = Registry::open(&main).await.expect("registry");
    let settle = std::time::Duration::from_millis(30);
    let mut watcher = DropDir::new(&dir, &url, trust, true).settle(settle);
    let scan = async |watcher: &mut DropDir| {
        tokio::time::sleep(settle * 2).await;
        watcher.scan().await
    };
    let names = async || -> Vec<String> {
        let records = registry.list().await.expect("list");
        records.into_iter().map(|record| record.name).collect()
    };

    std::fs::write(dir.join("kept.cloacina"), fake_package("kept", &key)).expect("write");
    scan(&mut watcher).await.expect("scans");
    scan(&mut watcher).await.expect("scans");
    assert_eq!(names().await, ["kept"]);

    proxy.cut();
    std::fs::write(dir.join("late.cloacina"), fake_package("late", &key)).expect("write");
    std::fs::remove_file(dir.join("kept.cloacina")).expect("remove");
    let mut waited = false;
    for _ in 0..2 {
        let report = scan(&mut watcher).await.expect("scans");
        assert!(report.rejected.is_empty(), "{report:?}");
        waited |= !report.waiting.is_empty();
        assert!(report.next_retry.is_some(), "{report:?}");
    }
    assert!(waited, "the dropped file waited for the database");
    assert!(dir.join("late.cloacina").exists());
    assert!(!dir.join(".rejected").exists());
    // Nothing changed while the host could not reach its database.
    assert_eq!(names().await, ["kept"]);

    proxy.restore();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while names().await != ["late"] {
        assert!(
            std::time::Instant::now() < deadline,
            "registry after the outage: {:?}",
            names().await
        );
        let _ = scan(&mut watcher).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(!dir.join(".rejected").exists());
    drop_watcher(watcher);
    main.close().await;
    drop(proxy);
    cloacina_tests::drop_database(&admin, &database);
}
