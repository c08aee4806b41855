//! The drop directory: `.cloacina` files put there are registered; files
//! removed are unregistered.
//!
//! - `DIR/x.cloacina` belongs to tenant `public`, `DIR/<tenant>/x.cloacina`
//!   to that tenant.
//! - A file is read only once it has stopped changing: the same size and
//!   modification time at two scans at least [`DropDir::settle`] apart.
//!   Writers that write elsewhere (or under another extension) and rename
//!   into place are picked up at once.
//! - A file the package's own fault keeps out (not a package, failing
//!   verification, a conflict) is moved to `DIR/.rejected/` with a
//!   `.reason` file beside it, so it is never retried until it is put back.
//!   A file the host could not decide on (its database or disk failed)
//!   stays where it is and is tried again with backoff, each retry logged.
//! - Files already there are picked up by the first scan, and packages
//!   registered from files that vanished while no host watched are
//!   unregistered by it (each registration records its file).
//! - A file replaced in place by another package replaces its package,
//!   also when that happened while no host watched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use cloacina_package::SignaturePolicy;
use cloacina_registry::{Admission, Archive, Refusal, Registry, RegistryError, Tenants, TrustKeys};
use cloacina_runtime::{Database, TenantId};
use cloacina_wire::RefusalKind;
use serde::Serialize;

const EXTENSION: &str = "cloacina";
const REJECTED: &str = ".rejected";
/// How a registration from a dropped file records its path.
const SOURCE_PREFIX: &str = "drop:";
/// The first wait before a file the host could not decide on is tried
/// again; it doubles with each attempt up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(15);

/// What one scan did, by file (relative to the drop directory).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DropReport {
    pub registered: Vec<String>,
    pub removed: Vec<String>,
    /// With the reason written beside it in `.rejected/`.
    pub rejected: Vec<(String, String)>,
    /// Still changing: looked at again next scan.
    pub settling: Vec<String>,
    /// The host could not decide on them now (database or disk): left in
    /// place and tried again, with the reason.
    pub waiting: Vec<(String, String)>,
    /// When the earliest waiting file (or unregistration) is due again.
    pub next_retry: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    size: u64,
    modified: Option<SystemTime>,
}

/// A package registered from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FromFile {
    tenant: TenantId,
    name: String,
    version: semver::Version,
}

#[derive(Debug)]
enum Tracked {
    /// Seen with this stamp at this time; not read yet. `replaces`: what
    /// the file held before it changed.
    Settling {
        stamp: Stamp,
        since: Instant,
        replaces: Option<FromFile>,
    },
    /// Registered as this package.
    Registered { stamp: Stamp, package: FromFile },
    /// Settled, but the host could not decide on it: tried again at
    /// `retry_at` (unless it changes first).
    Waiting {
        stamp: Stamp,
        attempts: u32,
        retry_at: Instant,
        replaces: Option<FromFile>,
    },
}

/// A package whose file is gone or now holds another package, but whose
/// unregistration failed: tried again at `retry_at`.
#[derive(Debug)]
struct Orphan {
    path: PathBuf,
    package: FromFile,
    attempts: u32,
    retry_at: Instant,
}

/// How long to wait before attempt `attempts + 1`.
fn retry_delay(attempts: u32) -> Duration {
    FIRST_RETRY_DELAY
        .saturating_mul(1u32 << attempts.min(16))
        .min(MAX_RETRY_DELAY)
}

/// How long a file the host failed on for good (not a passing outage: a
/// file it may not read, a schema it does not know) waits between tries.
const FAILED_RETRY_DELAY: Duration = Duration::from_secs(300);

/// How long to wait before looking at the directory again when it cannot
/// be listed.
const UNLISTABLE_RETRY_DELAY: Duration = Duration::from_secs(5);

/// A drop directory feeding the registries of a host's tenants.
#[derive(Debug)]
pub struct DropDir {
    dir: PathBuf,
    url: String,
    admission: Admission,
    settle: Duration,
    tracked: BTreeMap<PathBuf, Tracked>,
    orphans: Vec<Orphan>,
    registries: BTreeMap<TenantId, Registry>,
    tenants: Option<Tenants>,
    /// Whether the first scan's clean-up ran.
    pruned: bool,
}

impl DropDir {
    /// Watches `dir` for the host whose databases are at `url`.
    pub fn new(
        dir: impl Into<PathBuf>,
        url: &str,
        trust: TrustKeys,
        require_signatures: bool,
    ) -> Self {
        let dir: PathBuf = dir.into();
        DropDir {
            dir: std::fs::canonicalize(&dir).unwrap_or(dir),
            url: url.to_owned(),
            admission: Admission::new(
                trust,
                if require_signatures {
                    SignaturePolicy::Required
                } else {
                    SignaturePolicy::Optional
                },
            ),
            settle: Duration::from_millis(250),
            tracked: BTreeMap::new(),
            orphans: Vec::new(),
            registries: BTreeMap::new(),
            tenants: None,
            pruned: false,
        }
    }

    /// Records in `tenants` each tenant a file is registered for, so the
    /// host serves it.
    pub fn record_tenants(mut self, tenants: Tenants) -> Self {
        self.tenants = Some(tenants);
        self
    }

    /// Forgets a removed tenant: its registry connection is closed and its
    /// files are tracked afresh (a tenant of that name created again starts
    /// empty).
    pub async fn forget_tenant(&mut self, tenant: &TenantId) {
        if let Some(registry) = self.registries.remove(tenant) {
            registry.close().await;
        }
        self.tracked.retain(|_, tracked| match tracked {
            Tracked::Registered { package, .. } => package.tenant != *tenant,
            Tracked::Settling { replaces, .. } | Tracked::Waiting { replaces, .. } => {
                replaces.as_ref().is_none_or(|p| p.tenant != *tenant)
            }
        });
        self.orphans
            .retain(|orphan| orphan.package.tenant != *tenant);
    }

    /// How long a file must stay unchanged before it is read.
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// One scan: register what settled, unregister what vanished, reject
    /// what the package's fault keeps out, and leave for a later scan what
    /// the host could not decide on.
    pub async fn scan(&mut self) -> Result<DropReport, RegistryError> {
        let mut report = DropReport::default();
        // A directory that cannot be listed says nothing about which files
        // are gone: nothing is unregistered on its account.
        let present = match self.list_files() {
            Ok(present) => present,
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), error = &error as &dyn std::error::Error,
                    "cannot list the drop directory; looking again shortly");
                report.next_retry = Some(UNLISTABLE_RETRY_DELAY);
                return Ok(report);
            }
        };
        if !self.pruned {
            self.prune_vanished(&present, &mut report).await?;
            self.pruned = true;
        }
        self.unregister_vanished(&present, &mut report).await;
        self.retry_orphans(&mut report).await;
        // Once the database is found unreachable in this scan, the other
        // files wait for the next one instead of each waiting out a timeout.
        let mut unavailable: Option<String> = None;
        for (path, tenant) in present {
            let Some(stamp) = stamp(&path) else { continue };
            let (ready, replaces, attempts) = match self.tracked.get(&path) {
                Some(Tracked::Registered {
                    stamp: known,
                    package,
                }) => {
                    if *known == stamp {
                        continue;
                    }
                    (false, Some(package.clone()), 0)
                }
                Some(Tracked::Settling {
                    stamp: known,
                    since,
                    replaces,
                }) => (
                    *known == stamp && since.elapsed() >= self.settle,
                    replaces.clone(),
                    0,
                ),
                Some(Tracked::Waiting {
                    stamp: known,
                    attempts,
                    retry_at,
                    replaces,
                }) if *known == stamp => {
                    if Instant::now() < *retry_at {
                        self.note_retry(&mut report, *retry_at);
                        continue;
                    }
                    (true, replaces.clone(), *attempts)
                }
                // Changed while waiting: settle again.
                Some(Tracked::Waiting { replaces, .. }) => (false, replaces.clone(), 0),
                None => (false, None, 0),
            };
            if !ready {
                let since = match self.tracked.get(&path) {
                    Some(Tracked::Settling {
                        stamp: known,
                        since,
                        ..
                    }) if *known == stamp => *since,
                    _ => Instant::now(),
                };
                self.tracked.insert(
                    path.clone(),
                    Tracked::Settling {
                        stamp,
                        since,
                        replaces,
                    },
                );
                report.settling.push(self.label(&path));
                continue;
            }
            let registered = match &unavailable {
                Some(reason) => Err(Refusal::host("waiting for the database", reason.clone())),
                None => self.register(&path, &tenant).await,
            };
            match registered {
                Ok(package) => {
                    // What the file held before is gone from it.
                    if let Some(old) = replaces.filter(|old| *old != package) {
                        self.unregister_or_queue(&path, old, &mut report).await;
                    }
                    report.registered.push(self.label(&path));
                    self.tracked
                        .insert(path, Tracked::Registered { stamp, package });
                }
                Err(refusal) if refusal.kind().is_package_fault() => {
                    let reason = refusal.explain();
                    tracing::warn!(file = %path.display(), %reason, "dropped file rejected");
                    if let Some(old) = replaces {
                        self.unregister_or_queue(&path, old, &mut report).await;
                    }
                    report.rejected.push((self.label(&path), reason.clone()));
                    self.tracked.remove(&path);
                    self.reject(&path, &reason);
                }
                Err(refusal) => {
                    let reason = refusal.explain();
                    let delay = if refusal.kind() == RefusalKind::Unavailable {
                        if unavailable.is_none() {
                            unavailable = Some(reason.clone());
                        }
                        tracing::warn!(file = %path.display(), %reason, attempt = attempts + 1, retry_in = ?retry_delay(attempts),
                            "cannot register a dropped file now; it stays in place and will be tried again");
                        retry_delay(attempts)
                    } else {
                        tracing::error!(file = %path.display(), %reason, attempt = attempts + 1, retry_in = ?FAILED_RETRY_DELAY,
                            "the host failed on a dropped file; it stays in place and will be tried again");
                        FAILED_RETRY_DELAY
                    };
                    let retry_at = Instant::now() + delay;
                    self.note_retry(&mut report, retry_at);
                    report.waiting.push((self.label(&path), reason));
                    self.tracked.insert(
                        path,
                        Tracked::Waiting {
                            stamp,
                            attempts: attempts + 1,
                            retry_at,
                            replaces,
                        },
                    );
                }
            }
        }
        Ok(report)
    }

    /// Unregisters what files that vanished registered; an unregistration
    /// that fails is queued and tried again with backoff.
    async fn unregister_vanished(
        &mut self,
        present: &[(PathBuf, TenantId)],
        report: &mut DropReport,
    ) {
        let gone: Vec<PathBuf> = self
            .tracked
            .keys()
            .filter(|path| !present.iter().any(|(p, _)| p == *path))
            .cloned()
            .collect();
        for path in gone {
            match self.tracked.remove(&path) {
                Some(Tracked::Registered { package, .. }) => {
                    self.unregister_or_queue(&path, package, report).await;
                }
                Some(Tracked::Settling {
                    replaces: Some(package),
                    ..
                }) => {
                    self.unregister_or_queue(&path, package, report).await;
                }
                Some(Tracked::Waiting { replaces, .. }) => {
                    if let Some(package) = replaces {
                        self.unregister_or_queue(&path, package, report).await;
                    }
                    // A registration whose answer was lost may have
                    // committed: whatever this file registered goes too
                    // (else the next start's first scan finds it).
                    self.unregister_source(&path).await;
                }
                Some(Tracked::Settling { replaces: None, .. }) | None => {}
            }
        }
    }

    /// Unregisters `package`, which `path` held; on failure, queues it.
    async fn unregister_or_queue(
        &mut self,
        path: &Path,
        package: FromFile,
        report: &mut DropReport,
    ) {
        match self.unregister(path, &package).await {
            Ok(()) => report.removed.push(self.label(path)),
            Err(error) => self.queue_orphan(path, package, 0, &error, report),
        }
    }

    /// Tries the queued unregistrations that are due.
    async fn retry_orphans(&mut self, report: &mut DropReport) {
        let now = Instant::now();
        let (due, later): (Vec<Orphan>, Vec<Orphan>) = std::mem::take(&mut self.orphans)
            .into_iter()
            .partition(|orphan| orphan.retry_at <= now);
        self.orphans = later;
        for orphan in &self.orphans {
            let after = orphan.retry_at.saturating_duration_since(now);
            report.next_retry = Some(report.next_retry.map_or(after, |next| next.min(after)));
        }
        for Orphan {
            path,
            package,
            attempts,
            ..
        } in due
        {
            match self.unregister(&path, &package).await {
                Ok(()) => report.removed.push(self.label(&path)),
                Err(error) => self.queue_orphan(&path, package, attempts, &error, report),
            }
        }
    }

    fn queue_orphan(
        &mut self,
        path: &Path,
        package: FromFile,
        attempts: u32,
        error: &RegistryError,
        report: &mut DropReport,
    ) {
        let delay = retry_delay(attempts);
        tracing::warn!(file = %path.display(), package = %package.name, version = %package.version,
            error = error as &dyn std::error::Error, attempt = attempts + 1, retry_in = ?delay,
            "cannot unregister the package of a removed or replaced file now; will try again");
        let retry_at = Instant::now() + delay;
        self.note_retry(report, retry_at);
        self.orphans.push(Orphan {
            path: path.to_owned(),
            package,
            attempts: attempts + 1,
            retry_at,
        });
    }

    /// Best effort: unregisters every package recorded as coming from
    /// `path`, in whichever tenant's registry this directory has open.
    async fn unregister_source(&mut self, path: &Path) {
        let source = format!("{SOURCE_PREFIX}{}", path.display());
        for registry in self.registries.values() {
            let Ok(records) = registry.list().await else {
                continue;
            };
            for record in records
                .into_iter()
                .filter(|record| record.source.as_deref() == Some(source.as_str()))
            {
                if let Err(error) = registry.remove(&record.name, &record.version).await {
                    tracing::warn!(file = %path.display(), error = &error as &dyn std::error::Error,
                        "cannot unregister a removed file's package; the next start will");
                }
            }
        }
    }

    fn note_retry(&self, report: &mut DropReport, at: Instant) {
        let after = at.saturating_duration_since(Instant::now());
        report.next_retry = Some(report.next_retry.map_or(after, |next| next.min(after)));
    }

    async fn unregister(&mut self, path: &Path, package: &FromFile) -> Result<(), RegistryError> {
        let registry = self.registry(&package.tenant).await?;
        registry.remove(&package.name, &package.version).await?;
        tracing::info!(file = %path.display(), tenant = %package.tenant, name = %package.name, version = %package.version, "dropped file gone; unregistered");
        Ok(())
    }

    /// At the first scan: unregisters packages this directory registered
    /// from files that are no longer there (removed while no host watched).
    async fn prune_vanished(
        &mut self,
        present: &[(PathBuf, TenantId)],
        report: &mut DropReport,
    ) -> Result<(), RegistryError> {
        let mut tenants: Vec<TenantId> = match &self.tenants {
            Some(tenants) => tenants.list().await?,
            None => vec![TenantId::public()],
        };
        for tenant in present
            .iter()
            .map(|(_, tenant)| tenant.clone())
            .chain(self.tenant_folders())
        {
            if !tenants.contains(&tenant) {
                tenants.push(tenant);
            }
        }
        for tenant in tenants {
            let records = self.registry(&tenant).await?.list().await?;
            for record in records {
                let Some(path) = record
                    .source
                    .as_deref()
                    .and_then(|source| source.strip_prefix(SOURCE_PREFIX))
                    .map(PathBuf::from)
                else {
                    continue;
                };
                if !path.starts_with(&self.dir) || present.iter().any(|(p, _)| *p == path) {
                    continue;
                }
                let package = FromFile {
                    tenant: tenant.clone(),
                    name: record.name,
                    version: record.version,
                };
                self.unregister(&path, &package).await?;
                report.removed.push(self.label(&path));
            }
        }
        Ok(())
    }

    async fn register(&mut self, path: &Path, tenant: &TenantId) -> Result<FromFile, Refusal> {
        let admitted = self
            .admission
            .verify(Archive::File(path.to_owned()), tenant)
            .await?;
        if let Some(tenants) = &self.tenants {
            tenants
                .ensure(tenant)
                .await
                .map_err(|error| Refusal::host("recording the tenant", error))?;
        }
        let registry = self
            .registry(tenant)
            .await
            .map_err(|error| Refusal::host("opening the tenant's registry", error))?;
        let source = format!("{SOURCE_PREFIX}{}", path.display());
        let upload = admitted.register(registry, Some(&source)).await?;
        // What this file held before (replaced while no host watched) is
        // gone from it.
        let stale: Vec<_> = registry
            .list()
            .await
            .map_err(|error| Refusal::host("listing the registry", error))?
            .into_iter()
            .filter(|record| {
                record.source.as_deref() == Some(source.as_str())
                    && (record.name != upload.record.name
                        || record.version != upload.record.version)
            })
            .collect();
        for record in stale {
            registry
                .remove(&record.name, &record.version)
                .await
                .map_err(|error| Refusal::host("unregistering a replaced package", error))?;
            tracing::info!(file = %path.display(), name = %record.name, version = %record.version, "replaced in the drop directory; unregistered");
        }
        Ok(FromFile {
            tenant: tenant.clone(),
            name: upload.record.name,
            version: upload.record.version,
        })
    }

    /// Moves a refused file to `.rejected/` (keeping its tenant folder) with
    /// the reason beside it.
    fn reject(&self, path: &Path, reason: &str) {
        let relative = path.strip_prefix(&self.dir).unwrap_or(path);
        let target = self.dir.join(REJECTED).join(relative);
        let moved = target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::rename(path, &target))
            .and_then(|()| {
                let mut reason_file = target.clone().into_os_string();
                reason_file.push(".reason");
                std::fs::write(reason_file, format!("{reason}\n"))
            });
        if let Err(error) = moved {
            tracing::error!(file = %path.display(), %error, "cannot move a rejected file aside");
        }
    }

    /// `.cloacina` files at the top level (tenant public) and one folder
    /// down (the folder names the tenant), hidden ones and `.rejected/` left
    /// out. An error when a folder cannot be read.
    fn list_files(&self) -> std::io::Result<Vec<(PathBuf, TenantId)>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if entry.file_type()?.is_dir() {
                let Ok(tenant) = TenantId::new(name.as_str()) else {
                    tracing::warn!(folder = %path.display(), "not a tenant name; ignored");
                    continue;
                };
                for entry in std::fs::read_dir(&path)? {
                    let entry = entry?;
                    if is_package(&entry)? {
                        files.push((entry.path(), tenant.clone()));
                    }
                }
            } else if is_package(&entry)? {
                files.push((path, TenantId::public()));
            }
        }
        files.sort();
        Ok(files)
    }

    /// The tenant folders present, empty or not.
    fn tenant_folders(&self) -> Vec<TenantId> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    return None;
                }
                TenantId::new(name.as_str()).ok()
            })
            .collect()
    }

    async fn registry(&mut self, tenant: &TenantId) -> Result<&Registry, RegistryError> {
        if !self.registries.contains_key(tenant) {
            let db = Database::connect(&self.url, tenant).await?;
            let registry = Registry::open(&db).await?;
            self.registries.insert(tenant.clone(), registry);
        }
        self.registries
            .get(tenant)
            .ok_or_else(|| RegistryError::Corrupt("registry cache".into()))
    }

    fn label(&self, path: &Path) -> String {
        path.strip_prefix(&self.dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// A regular `.cloacina` file whose name does not start with a dot.
fn is_package(entry: &std::fs::DirEntry) -> std::io::Result<bool> {
    let name = entry.file_name();
    let name = name.to_string_lossy();
    Ok(!name.starts_with('.')
        && Path::new(name.as_ref())
            .extension()
            .is_some_and(|e| e == EXTENSION)
        && std::fs::metadata(entry.path())?.is_file())
}

fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(Stamp {
        size: metadata.len(),
        modified: metadata.modified().ok(),
    })
}
