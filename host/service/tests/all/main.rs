//! The host as a whole, with the real ETL sample library: the drop
//! directory's lifecycle, a version swap under continuous load on SQLite and
//! PostgreSQL, and removing a version that still runs.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cloacina_contract::Declaration;
use cloacina_host::{Host, HostConfig, OnRunning};
use cloacina_loader::Plugin as _;
use cloacina_loader::native::NativePlugin;
use cloacina_package::{Package, ReadLimits, SignaturePolicy};
use cloacina_runtime::{ExecutionStatus, RunnerConfig, TenantId};
use cloacina_signing::{KeyPair, TrustStore};
use serde_json::json;

/// A package of one sample library (built for this machine).
fn sample(sample: &str, version: &str, key: Option<&KeyPair>) -> Vec<u8> {
    let library = cloacina_tests::sample_library(sample);
    let declaration: Declaration = NativePlugin::load(library)
        .expect("loads")
        .declaration()
        .clone();
    cloacina_tests::native_package(library, sample, version, declaration, key)
}

fn etl(version: &str, key: Option<&KeyPair>) -> Vec<u8> {
    sample("etl", version, key)
}

fn config(url: &str, home: &Path, tenant_grace: Duration) -> HostConfig {
    HostConfig {
        settle: Duration::from_millis(100),
        // Long: the tests show the wake-ups work without the safety net.
        resync_interval: Duration::from_secs(600),
        runner: RunnerConfig {
            shutdown_grace: tenant_grace,
            ..RunnerConfig::default()
        },
        ..HostConfig::new(url, home.join("cache"))
    }
}

/// Waits until `tenant` has loaded exactly `expected` on `host`.
async fn until_loaded(host: &Host, tenant: &TenantId, expected: &[&str]) {
    let tenant_host = host.tenant(tenant).await.expect("tenant");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let loaded = tenant_host.loaded().await;
        if loaded == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tenant {tenant} has {loaded:?} loaded, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Registers an unsigned package with the tenant and wakes the host, as
/// an upload route does.
async fn upload_unsigned(host: &Host, tenant: &cloacina_host::TenantHost, bytes: &[u8]) {
    let verified = Package::read(bytes, &ReadLimits::default())
        .expect("readable")
        .verify(&TrustStore::new(), None, SignaturePolicy::Optional)
        .expect("verifies");
    tenant
        .registry()
        .upload(&verified, bytes)
        .await
        .expect("uploads");
    host.wake();
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_drop_directory_lifecycle() {
    let home = tempfile::tempdir().expect("home");
    let drop = home.path().join("drop");
    let url = format!("sqlite://{}", home.path().join("cloacina.db").display());
    let host = Host::start(HostConfig {
        watch_dir: Some(drop.clone()),
        require_signatures: true,
        ..config(&url, home.path(), Duration::from_secs(5))
    })
    .await
    .expect("starts");
    let key = KeyPair::generate("author").expect("key");
    host.trust()
        .add("author", &key.public_key(), None)
        .await
        .expect("trusted");
    let public = TenantId::public();
    let acme = TenantId::new("acme").expect("tenant");

    // Dropped: registered, loaded, runnable.
    std::fs::write(drop.join("etl.cloacina"), etl("1.0.0", Some(&key))).expect("drop");
    until_loaded(&host, &public, &["etl@1.0.0"]).await;
    let runner = host.tenant(&public).await.expect("public").runner().clone();
    let result = runner
        .execute("etl", json!({"input": [1, 2, 3]}))
        .await
        .expect("runs");
    assert_eq!(result.status, ExecutionStatus::Completed, "{result:?}");

    // A sub-directory is a tenant of its own.
    std::fs::create_dir(drop.join("acme")).expect("acme");
    std::fs::write(drop.join("acme/etl.cloacina"), etl("1.0.0", Some(&key))).expect("drop");
    until_loaded(&host, &acme, &["etl@1.0.0"]).await;

    // Unsigned (signatures required) and garbage: moved aside with a reason.
    std::fs::write(drop.join("unsigned.cloacina"), etl("2.0.0", None)).expect("drop");
    std::fs::write(drop.join("garbage.cloacina"), b"not a package").expect("drop");
    let rejected = drop.join(".rejected");
    until("both files rejected", || {
        rejected.join("unsigned.cloacina.reason").is_file()
            && rejected.join("garbage.cloacina.reason").is_file()
    })
    .await;
    let reason =
        std::fs::read_to_string(rejected.join("unsigned.cloacina.reason")).expect("reason");
    assert!(reason.contains("verification failed"), "{reason}");
    assert!(!drop.join("unsigned.cloacina").exists());

    // Files that appear and vanish at once leave nothing behind.
    for round in 0..5 {
        let path = drop.join(format!("flicker-{round}.cloacina"));
        std::fs::write(&path, etl("3.0.0", Some(&key))).expect("write");
        std::fs::remove_file(&path).expect("remove");
    }

    // Removed: unloaded; the workflow is gone from the tenant.
    std::fs::remove_file(drop.join("etl.cloacina")).expect("remove");
    until_loaded(&host, &public, &[]).await;
    assert!(runner.execute("etl", json!({"input": [1]})).await.is_err());
    let registry = host
        .tenant(&public)
        .await
        .expect("public")
        .registry()
        .clone();
    assert!(registry.list().await.expect("lists").is_empty());
    // acme keeps its own.
    until_loaded(&host, &acme, &["etl@1.0.0"]).await;

    // A removed tenant whose folder still holds files is created afresh
    // from them (the drop directory does not keep a stale connection).
    assert!(host.remove_tenant(&acme).await.expect("removes"));
    until_loaded(&host, &acme, &["etl@1.0.0"]).await;
    host.shutdown().await;
}

/// Executions start continuously while v1 is replaced by v2: none fails,
/// each runs wholly on one version, and both versions ran.
async fn version_swap_under_load(url: String, home: &Path) {
    let host = Arc::new(
        Host::start(config(&url, home, Duration::from_secs(10)))
            .await
            .expect("starts"),
    );
    let public = TenantId::public();
    let tenant = host.tenant(&public).await.expect("tenant");
    let upload = async |version: &str| upload_unsigned(&host, &tenant, &etl(version, None)).await;
    upload("1.0.0").await;
    until_loaded(&host, &public, &["etl@1.0.0"]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for caller in 0..4 {
        let (runner, stop) = (tenant.runner().clone(), stop.clone());
        callers.push(tokio::spawn(async move {
            let mut finished = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let result = runner
                    .execute("etl", json!({"input": [caller, 1, 2]}))
                    .await
                    .expect("every execution starts");
                finished.push(result);
            }
            finished
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    upload("2.0.0").await;
    until_loaded(&host, &public, &["etl@1.0.0", "etl@2.0.0"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let removal = host
        .remove_package(
            &public,
            "etl",
            &semver::Version::new(1, 0, 0),
            OnRunning::Wait,
        )
        .await
        .expect("removes");
    assert!(removal.removed && !removal.cancelled);
    until_loaded(&host, &public, &["etl@2.0.0"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);

    let mut results = Vec::new();
    for caller in callers {
        results.extend(caller.await.expect("caller"));
    }
    let mut versions = std::collections::BTreeSet::new();
    for result in &results {
        assert_eq!(result.status, ExecutionStatus::Completed, "{result:?}");
        let tasks = tenant
            .runner()
            .tasks(result.execution_id)
            .await
            .expect("tasks");
        assert!(
            tasks
                .iter()
                .all(|task| task.package_version == result.package_version),
            "an execution mixed versions: {result:?} {tasks:?}"
        );
        versions.insert(result.package_version.to_string());
    }
    assert_eq!(
        versions.into_iter().collect::<Vec<_>>(),
        ["1.0.0", "2.0.0"],
        "{} executions",
        results.len()
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_version_swap_under_load_on_sqlite() {
    let home = tempfile::tempdir().expect("home");
    let url = format!("sqlite://{}", home.path().join("cloacina.db").display());
    version_swap_under_load(url, home.path()).await;
}

/// A PostgreSQL database of the test's own (a host's public tenant is the
/// database's public schema), dropped by [`OwnDatabase::drop_now`].
struct OwnDatabase {
    admin: sqlx::PgPool,
    name: String,
    url: String,
}

impl OwnDatabase {
    async fn create() -> Option<OwnDatabase> {
        let base = cloacina_tests::postgres_url()?;
        let name = cloacina_tests::unique_schema("host");
        let admin = sqlx::PgPool::connect(&base).await.expect("connects");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("creates a database");
        let url = format!("{}/{name}", base.rsplit_once('/').expect("url").0);
        Some(OwnDatabase { admin, name, url })
    }

    async fn drop_now(self) {
        let _ = sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&self.admin)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_version_swap_under_load_on_postgresql() {
    let Some(database) = OwnDatabase::create().await else {
        return;
    };
    let home = tempfile::tempdir().expect("home");
    version_swap_under_load(database.url.clone(), home.path()).await;
    database.drop_now().await;
}

/// Two hosts on one PostgreSQL: what one registers or removes, the other
/// loads or unloads at once (NOTIFY), not at its resync ten minutes later.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_on_one_postgresql_hear_each_others_changes() {
    let Some(database) = OwnDatabase::create().await else {
        return;
    };
    let (home_a, home_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let grace = Duration::from_secs(5);
    let a = Host::start(config(&database.url, home_a.path(), grace))
        .await
        .expect("host a");
    let b = Host::start(config(&database.url, home_b.path(), grace))
        .await
        .expect("host b");
    let public = TenantId::public();
    let key = KeyPair::generate("author").expect("key");
    a.trust()
        .add("author", &key.public_key(), None)
        .await
        .expect("trusted");
    let bytes = etl("1.0.0", Some(&key));
    let mut trust = TrustStore::new();
    trust
        .add(
            key.name(),
            key.public_key(),
            cloacina_signing::TrustScope::Global,
        )
        .expect("trust");
    let verified = Package::read(&bytes, &ReadLimits::default())
        .expect("readable")
        .verify(&trust, None, SignaturePolicy::Required)
        .expect("verifies");
    // Uploaded through A's registry, without waking anyone.
    a.tenant(&public)
        .await
        .expect("tenant")
        .registry()
        .upload(&verified, &bytes)
        .await
        .expect("uploads");
    until_loaded(&b, &public, &["etl@1.0.0"]).await;
    let result = b
        .tenant(&public)
        .await
        .expect("tenant")
        .runner()
        .execute("etl", json!({"input": [2]}))
        .await
        .expect("runs");
    assert_eq!(result.status, ExecutionStatus::Completed);

    // A revocation made on A unloads the package on B.
    a.trust()
        .revoke(&key.public_key().id())
        .await
        .expect("revokes");
    until_loaded(&b, &public, &[]).await;
    a.shutdown().await;
    b.shutdown().await;
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_a_version_can_cancel_what_runs_on_it() {
    let home = tempfile::tempdir().expect("home");
    let url = format!("sqlite://{}", home.path().join("cloacina.db").display());
    let host = Host::start(config(&url, home.path(), Duration::from_millis(200)))
        .await
        .expect("starts");
    let public = TenantId::public();
    let tenant = host.tenant(&public).await.expect("tenant");
    upload_unsigned(&host, &tenant, &sample("fan-out", "1.0.0", None)).await;
    until_loaded(&host, &public, &["fan-out@1.0.0"]).await;

    // Each task of this one takes two seconds.
    let running = tenant
        .runner()
        .execute_async("fan_out", json!({"work_ms": 2000}))
        .await
        .expect("starts");

    let removal = host
        .remove_package(
            &public,
            "fan-out",
            &semver::Version::new(1, 0, 0),
            OnRunning::Cancel,
        )
        .await
        .expect("removes");
    assert!(removal.removed && removal.cancelled);
    assert_eq!(
        removal.running,
        [running],
        "says which executions it cancelled"
    );
    let ended = tenant.runner().wait(running).await.expect("ends");
    assert_eq!(ended.status, ExecutionStatus::Cancelled);
    until_loaded(&host, &public, &[]).await;
    host.shutdown().await;
}
