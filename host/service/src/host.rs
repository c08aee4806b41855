//! The host and its convergence loop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cloacina_graphs::GraphRuntime;
use cloacina_loader::wasm::{WasmRuntime, WasmSettings};
use cloacina_reconciler::{DropDir, DropReport, ReconcileReport, Reconciler, ReconcilerConfig};
use cloacina_registry::changes::{self, Change};
use cloacina_registry::{Registry, Tenants, TrustKeys};
use cloacina_runtime::{
    DatabaseUrl, ExecutionId, HostIdentity, PackageRef, Runner, RunnerConfig, TenantId,
};
use serde::Serialize;
use tokio::sync::{Mutex, Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{HostConfig, HostError, HostStats, TenantHost, activity};

/// When a pass leaves work pending, the next one comes this soon.
const FOLLOW_UP: Duration = Duration::from_secs(1);

/// What to do with executions still running on a package version that is
/// being removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRunning {
    /// Let them finish on the version they started with; the version is
    /// unloaded when the last one ends.
    Wait,
    /// Cancel them.
    Cancel,
}

/// What removing a package version did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// False when the version was not registered.
    pub removed: bool,
    /// The executions that were running on it: waited for or cancelled.
    pub running: Vec<ExecutionId>,
    pub cancelled: bool,
}

/// A running host. Dropping it without [`Host::shutdown`] stops the loop
/// but does not drain running work.
pub struct Host {
    shared: Arc<Shared>,
    loop_task: Mutex<Option<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("id", &self.shared.config.identity.id)
            .field(
                "database",
                &cloacina_runtime::database::redact(&self.shared.config.database_url),
            )
            .finish_non_exhaustive()
    }
}

/// What the loop and the handle share.
struct Shared {
    config: HostConfig,
    trust: TrustKeys,
    tenant_list: Tenants,
    wasm: Arc<WasmRuntime>,
    tenants: Mutex<BTreeMap<TenantId, Arc<TenantHost>>>,
    /// One start at a time per tenant, so a slow start (a connect, the
    /// migrations) holds back that tenant alone, never the map.
    starting: Mutex<BTreeMap<TenantId, Arc<Mutex<()>>>>,
    activity: std::sync::Mutex<Vec<JoinHandle<()>>>,
    wake: Arc<Notify>,
    stats: Arc<HostStats>,
    /// Tenants removed since the last pass: the drop directory forgets them.
    removed: std::sync::Mutex<Vec<TenantId>>,
}

impl Host {
    /// Connects to the databases, starts `public`'s runner and the loop;
    /// the first pass (drop directory and every known tenant) starts at
    /// once.
    pub async fn start(config: HostConfig) -> Result<Host, HostError> {
        let public = runner(&config, &TenantId::public()).await?;
        let trust = TrustKeys::open(public.database()).await?;
        let tenant_list = Tenants::open(public.database()).await?;
        let wasm = Arc::new(
            WasmRuntime::new(WasmSettings {
                cache_dir: Some(config.cache_dir.join("wasm")),
                ..WasmSettings::default()
            })
            .map_err(HostError::Wasm)?,
        );
        let shared = Arc::new(Shared {
            config,
            trust,
            tenant_list,
            wasm,
            tenants: Mutex::new(BTreeMap::new()),
            starting: Mutex::new(BTreeMap::new()),
            activity: std::sync::Mutex::new(Vec::new()),
            wake: Arc::new(Notify::new()),
            stats: Arc::new(HostStats::default()),
            removed: std::sync::Mutex::new(Vec::new()),
        });
        shared.adopt(public).await?;

        let drop_dir = match &shared.config.watch_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|error| HostError::Watch {
                    dir: dir.display().to_string(),
                    reason: error.to_string(),
                })?;
                let watcher = crate::watch::watch(dir, shared.wake.clone())?;
                let drop_dir = DropDir::new(
                    dir,
                    &shared.config.database_url,
                    shared.trust.clone(),
                    shared.config.require_signatures,
                )
                .settle(shared.config.settle)
                .record_tenants(shared.tenant_list.clone());
                Some((drop_dir, watcher))
            }
            None => None,
        };
        let changes = match DatabaseUrl::parse(&shared.config.database_url)? {
            DatabaseUrl::Postgres(url) => Some(changes::listen(url)),
            DatabaseUrl::Sqlite(_) => None,
        };
        let (stop, stopped) = watch::channel(false);
        let loop_task = tokio::spawn(converge(shared.clone(), drop_dir, changes, stopped));
        Ok(Host {
            shared,
            loop_task: Mutex::new(Some(loop_task)),
            stop,
        })
    }

    /// Who this host is: the id, address and version its row in every
    /// tenant's `hosts` table carries (one for all its tenants).
    pub fn identity(&self) -> &HostIdentity {
        &self.shared.config.identity
    }

    /// Asks for a pass now (after an upload, say).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// The tenant's runtime on this host, started when first asked for;
    /// the tenant is recorded so every later start serves it too.
    pub async fn tenant(&self, tenant: &TenantId) -> Result<Arc<TenantHost>, HostError> {
        if let Some(found) = self.shared.tenants.lock().await.get(tenant) {
            return Ok(found.clone());
        }
        self.shared.tenant_list.ensure(tenant).await?;
        let started = self.shared.start_tenant(tenant).await?;
        self.wake();
        Ok(started)
    }

    /// The tenant's runtime if the tenant exists (is `public` or was
    /// created), else None: reading never creates a tenant.
    pub async fn existing_tenant(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<Arc<TenantHost>>, HostError> {
        if let Some(found) = self.shared.tenants.lock().await.get(tenant) {
            return Ok(Some(found.clone()));
        }
        if !self.shared.tenant_list.contains(tenant).await? {
            return Ok(None);
        }
        Ok(Some(self.shared.start_tenant(tenant).await?))
    }

    /// The tenants whose runtime runs on this host now.
    pub async fn started_tenants(&self) -> Vec<Arc<TenantHost>> {
        self.shared.tenants.lock().await.values().cloned().collect()
    }

    /// Every tenant this host serves, `public` first.
    pub async fn tenants(&self) -> Result<Vec<TenantId>, HostError> {
        Ok(self.shared.tenant_list.list().await?)
    }

    /// Creates `tenant` (its schema or file, and on PostgreSQL a login role
    /// `username` with `password`) and starts its runtime. False when it
    /// existed already.
    pub async fn create_tenant(
        &self,
        tenant: &TenantId,
        username: &TenantId,
        password: &str,
    ) -> Result<bool, HostError> {
        let created = self.shared.tenant_list.ensure(tenant).await?;
        cloacina_runtime::database::provision_tenant_role(
            &self.shared.config.database_url,
            tenant,
            username,
            password,
        )
        .await?;
        self.shared.start_tenant(tenant).await?;
        Ok(created)
    }

    /// Removes `tenant`: stops taking its work, drains and shuts its
    /// runtime down (running tasks get the grace period), forgets it, then
    /// drops its data. False when it did not exist.
    pub async fn remove_tenant(&self, tenant: &TenantId) -> Result<bool, HostError> {
        if tenant.is_public() {
            return Err(HostError::PublicTenant);
        }
        let known = self.shared.tenant_list.remove(tenant).await?;
        let started = self.shared.tenants.lock().await.remove(tenant);
        self.shared.starting.lock().await.remove(tenant);
        if let Some(started) = &started {
            started.shutdown().await;
            started.runner().database().close().await;
        }
        if !known && started.is_none() {
            return Ok(false);
        }
        cloacina_runtime::database::drop_tenant_data(&self.shared.config.database_url, tenant)
            .await?;
        self.shared
            .removed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(tenant.clone());
        self.wake();
        tracing::info!(%tenant, "tenant removed");
        Ok(true)
    }

    /// What this host did, for metrics: shared, so that a metrics
    /// registry can hold it and read it at every scrape.
    pub fn stats(&self) -> Arc<HostStats> {
        self.shared.stats.clone()
    }

    /// The host's trust store.
    pub fn trust(&self) -> &TrustKeys {
        &self.shared.trust
    }

    /// Removes `name` `version` from `tenant`'s registry. New executions
    /// stop using it at the next pass; the ones running on it finish there
    /// ([`OnRunning::Wait`]) or are cancelled ([`OnRunning::Cancel`]).
    pub async fn remove_package(
        &self,
        tenant: &TenantId,
        name: &str,
        version: &semver::Version,
        on_running: OnRunning,
    ) -> Result<Removal, HostError> {
        let tenant_host = self.tenant(tenant).await?;
        let removed = tenant_host.registry().remove(name, version).await?;
        // Unloaded here before the answer, so that once the caller hears
        // "removed" its workflows start nothing new on this host (running
        // executions finish on it). Other hosts follow on their next pass.
        if let Err(error) = tenant_host.reconcile().await {
            tracing::warn!(%tenant, %name, %version, %error,
                "removed from the registry; unloading it waits for the next pass");
        }
        let package = PackageRef {
            name: name.to_owned(),
            version: version.clone(),
        };
        let running = tenant_host.runner().running_on(&package).await?;
        let cancelled = on_running == OnRunning::Cancel && !running.is_empty();
        if cancelled {
            for execution in &running {
                tenant_host.runner().cancel(*execution).await?;
            }
        }
        tracing::info!(%tenant, %name, %version, running = running.len(), cancelled, "package removed");
        self.wake();
        Ok(Removal {
            removed,
            running,
            cancelled,
        })
    }

    /// Stops the loop and the drop-directory watcher, then shuts every
    /// tenant's runner down (running tasks get their grace period).
    /// Safe to call more than once (and while others still hold the host).
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let loop_task = self.loop_task.lock().await.take();
        if let Some(loop_task) = loop_task {
            let _ = loop_task.await;
        }
        let tenants: Vec<Arc<TenantHost>> =
            self.shared.tenants.lock().await.values().cloned().collect();
        for tenant in tenants {
            tenant.shutdown().await;
        }
        let activity = std::mem::take(
            &mut *self
                .shared
                .activity
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in activity {
            task.abort();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Shared {
    fn reconcile_duration_observed(&self, took: Duration) {
        HostStats::observe(&self.stats.reconcile_duration, took);
    }

    async fn start_tenant(&self, tenant: &TenantId) -> Result<Arc<TenantHost>, HostError> {
        if let Some(found) = self.tenants.lock().await.get(tenant) {
            return Ok(found.clone());
        }
        let gate = self
            .starting
            .lock()
            .await
            .entry(tenant.clone())
            .or_default()
            .clone();
        let _starting = gate.lock().await;
        // Started by whoever held the gate before us?
        if let Some(found) = self.tenants.lock().await.get(tenant) {
            return Ok(found.clone());
        }
        let runner = runner(&self.config, tenant).await?;
        let started = match self.tenant_host(runner.clone()).await {
            Ok(started) => started,
            Err(error) => {
                // Stopped, not dropped: its engine and lease keeper would
                // run on unseen, under the id the next attempt registers.
                runner.shutdown().await;
                return Err(error);
            }
        };
        self.tenants
            .lock()
            .await
            .insert(tenant.clone(), started.clone());
        Ok(started)
    }

    async fn adopt(&self, runner: Runner) -> Result<Arc<TenantHost>, HostError> {
        let tenant = runner.tenant().clone();
        let adopted = self.tenant_host(runner).await?;
        self.tenants.lock().await.insert(tenant, adopted.clone());
        Ok(adopted)
    }

    async fn tenant_host(&self, runner: Runner) -> Result<Arc<TenantHost>, HostError> {
        let registry = Registry::open(runner.database()).await?;
        let graphs = GraphRuntime::start(&runner, self.config.graphs.clone()).await?;
        let reconciler = Reconciler::new(
            runner.clone(),
            graphs.clone(),
            registry.clone(),
            self.trust.clone(),
            self.wasm.clone(),
            ReconcilerConfig {
                cache_dir: self.config.cache_dir.clone(),
                worker_binary: self.config.worker_binary.clone(),
                require_signatures: self.config.require_signatures,
            },
        );
        self.activity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(activity::log_activity(&runner, self.stats.clone()));
        tracing::info!(tenant = %runner.tenant(), "tenant started");
        Ok(Arc::new(TenantHost::new(
            runner, graphs, registry, reconciler,
        )))
    }

    /// One pass over the drop directory and every tenant. Returns how soon
    /// the next pass is due when work is pending: a file still settling, an
    /// old version draining, a failed package's retry.
    async fn pass(&self, drop_dir: Option<&mut DropDir>) -> Option<Duration> {
        let mut next: Option<Duration> = None;
        let mut soon = |after: Duration| next = Some(next.map_or(after, |n| n.min(after)));
        if let Some(drop_dir) = drop_dir {
            let removed = std::mem::take(
                &mut *self
                    .removed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for tenant in &removed {
                drop_dir.forget_tenant(tenant).await;
            }
            match drop_dir.scan().await {
                Ok(report) => {
                    log_drop(&report);
                    if !report.settling.is_empty() {
                        soon(self.config.settle);
                    }
                    if let Some(retry) = report.next_retry {
                        soon(retry);
                    }
                }
                Err(error) => {
                    tracing::error!(
                        error = &error as &dyn std::error::Error,
                        "cannot scan the drop directory"
                    );
                    soon(FOLLOW_UP);
                }
            }
        }
        let tenants = match self.tenant_list.list().await {
            Ok(tenants) => tenants,
            Err(error) => {
                tracing::error!(
                    error = &error as &dyn std::error::Error,
                    "cannot list tenants"
                );
                return Some(FOLLOW_UP);
            }
        };
        for tenant in tenants {
            let tenant_host = match self.start_tenant(&tenant).await {
                Ok(tenant_host) => tenant_host,
                Err(error) => {
                    tracing::error!(%tenant, error = &error as &dyn std::error::Error, "cannot start the tenant's runtime");
                    soon(FOLLOW_UP);
                    continue;
                }
            };
            match tenant_host.reconcile().await {
                Ok(report) => {
                    log_reconcile(&tenant, &report);
                    HostStats::count(&self.stats.packages_loaded, report.loaded.len());
                    HostStats::count(&self.stats.package_load_failures, report.failed.len());
                    HostStats::count(&self.stats.packages_unloaded, report.unloaded.len());
                    if !report.draining.is_empty() {
                        soon(FOLLOW_UP);
                    }
                    if let Some(retry) = report.next_retry {
                        soon(retry);
                    }
                }
                Err(error) => {
                    tracing::error!(%tenant, error = &error as &dyn std::error::Error, "reconcile failed");
                    soon(FOLLOW_UP);
                }
            }
        }
        next
    }
}

/// The loop: a pass at start, then one per wake-up, follow-up or resync.
async fn converge(
    shared: Arc<Shared>,
    mut drop_dir: Option<(DropDir, notify::RecommendedWatcher)>,
    mut changes: Option<mpsc::UnboundedReceiver<Change>>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let started = Instant::now();
        let pending = shared
            .pass(drop_dir.as_mut().map(|(drop_dir, _)| drop_dir))
            .await;
        tracing::debug!(elapsed = ?started.elapsed(), ?pending, "pass done");
        shared.reconcile_duration_observed(started.elapsed());
        let next = pending
            .map_or(shared.config.resync_interval, |after| {
                after.max(Duration::from_millis(20))
            })
            .min(shared.config.resync_interval);
        let deadline = Instant::now() + next;
        tokio::select! {
            _ = shared.wake.notified() => {}
            change = next_change(&mut changes) => {
                tracing::debug!(?change, "another host changed the registry");
            }
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

async fn next_change(changes: &mut Option<mpsc::UnboundedReceiver<Change>>) -> Option<Change> {
    match changes {
        Some(receiver) => match receiver.recv().await {
            Some(change) => Some(change),
            None => {
                *changes = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// `tenant`'s runner: the host's runner settings, under the host's one
/// identity.
async fn runner(config: &HostConfig, tenant: &TenantId) -> Result<Runner, HostError> {
    Ok(Runner::with_config(
        &config.database_url,
        RunnerConfig {
            tenant: tenant.clone(),
            host: config.identity.clone(),
            ..config.runner.clone()
        },
    )
    .await?)
}

fn log_drop(report: &DropReport) {
    for file in &report.registered {
        tracing::info!(%file, "dropped package registered");
    }
    // Removed and rejected files are logged by the drop directory itself.
}

fn log_reconcile(tenant: &TenantId, report: &ReconcileReport) {
    for package in &report.loaded {
        tracing::info!(%tenant, %package, "package loaded");
    }
    for package in &report.released {
        tracing::info!(%tenant, %package, "package released");
    }
    for (package, error) in &report.failed {
        tracing::warn!(%tenant, %package, %error, "package failed to load; will retry");
    }
}
