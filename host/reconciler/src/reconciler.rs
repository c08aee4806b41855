//! One tenant's reconciler.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloacina_contract::Declaration;
use cloacina_graphs::GraphRuntime;
use cloacina_loader::wasm::WasmRuntime;
use cloacina_registry::{PackageRecord, PackageStatus, Registry, RegistryError, TrustKeys};
use cloacina_runtime::{PackageRef, Runner};
use serde::Serialize;

use crate::load;

/// How the reconciler loads packages.
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// Where verified packages are extracted, by content digest.
    pub cache_dir: PathBuf,
    /// The `cloacina-plugin-worker` program: native libraries then run in a
    /// worker process each (crash-safe, truly unloadable). None: in process.
    pub worker_binary: Option<PathBuf>,
    /// Refuse unsigned packages at load.
    pub require_signatures: bool,
}

/// What one pass did, as `name@version` lists. A package that failed is
/// tried again after 1 s, then 2 s, 4 s... up to 5 minutes, and at once
/// when its bytes change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub loaded: Vec<String>,
    pub unloaded: Vec<String>,
    /// With the error each was marked failed with.
    pub failed: Vec<(String, String)>,
    /// Failed earlier and not retried yet (backoff).
    pub waiting: Vec<String>,
    /// Unloaded earlier and now unused by any running execution: forgotten.
    pub released: Vec<String>,
    /// Unloaded, with executions still running on them (they finish there).
    pub draining: Vec<String>,
    /// When the next failed package is due for another try.
    #[serde(skip)]
    pub next_retry: Option<Duration>,
}

/// The first wait before a failed package is tried again; it doubles up to
/// [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// A package that failed to load: when to try again.
struct Failure {
    sha256: String,
    failures: u32,
    next_try: Instant,
}

/// A package this host loaded.
struct Loaded {
    sha256: String,
    signer: Option<String>,
    package: PackageRef,
    declaration: Declaration,
    /// Kept so an older version can take its graphs back when a newer one
    /// leaves.
    plugin: Arc<dyn cloacina_loader::Plugin>,
}

/// Keeps `runner` (one tenant) equal to that tenant's registry.
pub struct Reconciler {
    runner: Runner,
    graphs: GraphRuntime,
    registry: Registry,
    trust: TrustKeys,
    wasm: Arc<WasmRuntime>,
    config: ReconcilerConfig,
    loaded: BTreeMap<(String, semver::Version), Loaded>,
    failed: BTreeMap<(String, semver::Version), Failure>,
    /// Unloaded (no new executions) but maybe still running executions.
    draining: BTreeMap<(String, semver::Version), Loaded>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("tenant", self.runner.tenant())
            .field("loaded", &self.loaded.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Reconciler {
    /// A reconciler for `runner`'s tenant (and its `graphs`), reading
    /// `registry` and verifying with `trust` (the host's trust store).
    pub fn new(
        runner: Runner,
        graphs: GraphRuntime,
        registry: Registry,
        trust: TrustKeys,
        wasm: Arc<WasmRuntime>,
        config: ReconcilerConfig,
    ) -> Self {
        Reconciler {
            runner,
            graphs,
            registry,
            trust,
            wasm,
            config,
            loaded: BTreeMap::new(),
            failed: BTreeMap::new(),
            draining: BTreeMap::new(),
        }
    }

    /// One pass: load what the registry has and this host lacks, unload
    /// what it no longer has (or whose signer was revoked).
    pub async fn reconcile(&mut self) -> Result<ReconcileReport, RegistryError> {
        let desired = self.registry.list().await?;
        let trust = self.trust.store().await?;
        let mut report = ReconcileReport::default();

        // Unload first what left, changed, or lost its signer's trust.
        let keep: BTreeMap<(String, semver::Version), &PackageRecord> = desired
            .iter()
            .map(|record| ((record.name.clone(), record.version.clone()), record))
            .collect();
        let gone: Vec<((String, semver::Version), &'static str)> = self
            .loaded
            .iter()
            .filter_map(|(key, loaded)| {
                let revoked = loaded
                    .signer
                    .as_deref()
                    .and_then(|id| id.parse().ok())
                    .is_some_and(|id| trust.is_revoked(id));
                let reason = match keep.get(key) {
                    _ if revoked => "its signing key was revoked",
                    None => "it left the registry",
                    Some(record) if record.sha256 != loaded.sha256 => "its bytes changed",
                    Some(_) => return None,
                };
                Some((key.clone(), reason))
            })
            .collect();
        for (key, reason) in gone {
            if let Some(loaded) = self.loaded.remove(&key) {
                let retired = self
                    .runner
                    .unregister_package(&loaded.package, &loaded.declaration);
                self.graphs
                    .unregister(&loaded.package, &loaded.declaration)
                    .await;
                self.graphs_fall_back(&key.0).await;
                tracing::info!(tenant = %self.runner.tenant(), package = %key.0, version = %key.1, workflows = ?retired, "unloaded because {reason}; running executions finish on it");
                report.unloaded.push(format!("{}@{}", key.0, key.1));
                self.draining.insert(key, loaded);
            }
        }

        for record in &desired {
            let key = (record.name.clone(), record.version.clone());
            if self.loaded.contains_key(&key) {
                continue;
            }
            let label = format!("{}@{}", record.name, record.version);
            if let Some(failure) = self.failed.get(&key)
                && failure.sha256 == record.sha256
                && Instant::now() < failure.next_try
            {
                report.waiting.push(label);
                continue;
            }
            match self.load(record, &trust).await {
                Ok(loaded) => {
                    self.failed.remove(&key);
                    self.draining.remove(&key);
                    self.loaded.insert(key, loaded);
                    self.registry
                        .set_status(&record.name, &record.version, &PackageStatus::Loaded)
                        .await?;
                    report.loaded.push(label);
                }
                Err(error) => {
                    if record.status != PackageStatus::Failed(error.clone()) {
                        tracing::warn!(package = %label, %error, "package failed to load");
                        self.registry
                            .set_status(
                                &record.name,
                                &record.version,
                                &PackageStatus::Failed(error.clone()),
                            )
                            .await?;
                    }
                    let failures = self
                        .failed
                        .get(&key)
                        .filter(|f| f.sha256 == record.sha256)
                        .map_or(1, |f| f.failures + 1);
                    let delay = FIRST_RETRY_DELAY
                        .saturating_mul(1 << (failures - 1).min(16))
                        .min(MAX_RETRY_DELAY);
                    self.failed.insert(
                        key,
                        Failure {
                            sha256: record.sha256.clone(),
                            failures,
                            next_try: Instant::now() + delay,
                        },
                    );
                    report.failed.push((label, error));
                }
            }
        }
        self.release_drained(&mut report).await;
        let now = Instant::now();
        report.next_retry = self
            .failed
            .values()
            .map(|failure| failure.next_try.saturating_duration_since(now))
            .min();
        Ok(report)
    }

    /// Forgets unloaded versions nothing runs on any more.
    async fn release_drained(&mut self, report: &mut ReconcileReport) {
        let mut drained = Vec::new();
        for (key, loaded) in &self.draining {
            match self.runner.running_on(&loaded.package).await {
                Ok(running) if running.is_empty() => drained.push(key.clone()),
                Ok(running) => {
                    tracing::debug!(package = %key.0, version = %key.1, running = running.len(), "still draining");
                    report.draining.push(format!("{}@{}", key.0, key.1));
                }
                Err(error) => {
                    tracing::warn!(package = %key.0, error = &error as &dyn std::error::Error, "cannot count running executions")
                }
            }
        }
        for key in drained {
            if let Some(loaded) = self.draining.remove(&key) {
                self.runner
                    .forget_package(&loaded.package, &loaded.declaration);
                report.released.push(format!("{}@{}", key.0, key.1));
            }
        }
    }

    async fn load(
        &self,
        record: &PackageRecord,
        trust: &cloacina_signing::TrustStore,
    ) -> Result<Loaded, String> {
        let bytes = self
            .registry
            .archive(&record.name, &record.version)
            .await
            .map_err(|error| cloacina_contract::explain(&error))?;
        let tenant = self.runner.tenant().to_string();
        let trust = trust.clone();
        let require_signatures = self.config.require_signatures;
        let cache = self.config.cache_dir.clone();
        let worker = self.config.worker_binary.clone();
        let wasm = self.wasm.clone();
        let expected = (record.name.clone(), record.version.clone());
        // Decompressing, hashing, writing files, dlopen and compiling are
        // blocking work: off the async workers.
        let (verified, plugin) = tokio::task::spawn_blocking(move || {
            let (verified, root) =
                load::verify_and_extract(&bytes, &trust, &tenant, require_signatures, &cache)?;
            let manifest = verified.manifest();
            if manifest.package().name.as_str() != expected.0
                || manifest.package().version != expected.1
            {
                return Err(format!(
                    "the stored archive is {} {}, not {} {}",
                    manifest.package().name,
                    manifest.package().version,
                    expected.0,
                    expected.1
                ));
            }
            let plugin = load::load(&verified, &root, worker.as_deref(), &wasm)?;
            Ok((verified, plugin))
        })
        .await
        .map_err(|error| format!("the load was interrupted: {error}"))??;
        let manifest = verified.manifest();
        let package = PackageRef {
            name: record.name.clone(),
            version: record.version.clone(),
        };
        let declaration = manifest.declaration().clone();
        self.runner
            .register_package(package.clone(), &declaration, plugin.clone())
            .await
            .map_err(|error| {
                format!(
                    "cannot register its workflows: {}",
                    cloacina_contract::explain(&error)
                )
            })?;
        if let Err(error) = self
            .graphs
            .register(&package, &declaration, plugin.clone())
            .await
        {
            self.runner.unregister_package(&package, &declaration);
            self.runner.forget_package(&package, &declaration);
            return Err(format!(
                "cannot start its computation graphs: {}",
                cloacina_contract::explain(&error)
            ));
        }
        Ok(Loaded {
            sha256: record.sha256.clone(),
            signer: verified.signer().map(|s| s.key_id.to_string()),
            package,
            declaration,
            plugin,
        })
    }

    /// After a version of `package` left: the highest version still loaded
    /// runs the package's graphs (a graph runs on one version at a time).
    async fn graphs_fall_back(&self, package: &str) {
        let Some(remaining) = self
            .loaded
            .values()
            .filter(|loaded| loaded.package.name == package)
            .max_by(|a, b| a.package.version.cmp(&b.package.version))
        else {
            return;
        };
        if remaining.declaration.computation_graphs.is_empty() {
            return;
        }
        if let Err(error) = self
            .graphs
            .register(
                &remaining.package,
                &remaining.declaration,
                remaining.plugin.clone(),
            )
            .await
        {
            tracing::warn!(package, version = %remaining.package.version, error = &error as &dyn std::error::Error, "the remaining version cannot take its graphs back");
        }
    }

    /// What this host has loaded, as `name@version`.
    pub fn loaded(&self) -> Vec<String> {
        self.loaded
            .keys()
            .map(|(name, version)| format!("{name}@{version}"))
            .collect()
    }
}
