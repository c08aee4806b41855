//! The drop directory: `.cloacina` files put there are registered; files
//! removed are unregistered.
//!
//! - `DIR/x.cloacina` belongs to tenant `public`, `DIR/<tenant>/x.cloacina`
//!   to that tenant.
//! - A file is read only once it has stopped changing: the same size and
//!   modification time at two scans at least [`DropDir::settle`] apart.
//!   Writers that write elsewhere (or under another extension) and rename
//!   into place are picked up at once.
//! - A file that cannot be registered (unreadable, not a package, failing
//!   verification, a conflict) is moved to `DIR/.rejected/` with a
//!   `.reason` file beside it, so it is never retried until it is put back.
//! - Files already there are picked up by the first scan, and packages
//!   registered from files that vanished while no host watched are
//!   unregistered by it (each registration records its file).
//! - A file replaced in place by another package replaces its package,
//!   also when that happened while no host watched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use cloacina_package::{Package, ReadLimits, SignaturePolicy};
use cloacina_registry::{Registry, RegistryError, Tenants, TrustKeys};
use cloacina_runtime::{Database, TenantId};
use serde::Serialize;

const EXTENSION: &str = "cloacina";
const REJECTED: &str = ".rejected";
/// How a registration from a dropped file records its path.
const SOURCE_PREFIX: &str = "drop:";

/// What one scan did, by file (relative to the drop directory).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DropReport {
    pub registered: Vec<String>,
    pub removed: Vec<String>,
    /// With the reason written beside it in `.rejected/`.
    pub rejected: Vec<(String, String)>,
    /// Still changing: looked at again next scan.
    pub settling: Vec<String>,
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
}

/// A drop directory feeding the registries of a host's tenants.
#[derive(Debug)]
pub struct DropDir {
    dir: PathBuf,
    url: String,
    trust: TrustKeys,
    require_signatures: bool,
    settle: Duration,
    tracked: BTreeMap<PathBuf, Tracked>,
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
            trust,
            require_signatures,
            settle: Duration::from_millis(250),
            tracked: BTreeMap::new(),
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
            Tracked::Settling { replaces, .. } => {
                replaces.as_ref().is_none_or(|p| p.tenant != *tenant)
            }
        });
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
    /// what cannot be registered.
    pub async fn scan(&mut self) -> Result<DropReport, RegistryError> {
        let mut report = DropReport::default();
        let present = self.list_files();
        if !self.pruned {
            self.prune_vanished(&present, &mut report).await?;
            self.pruned = true;
        }
        // Vanished files: unregister what they registered.
        let gone: Vec<PathBuf> = self
            .tracked
            .keys()
            .filter(|path| !present.iter().any(|(p, _)| p == *path))
            .cloned()
            .collect();
        for path in gone {
            let package = match self.tracked.remove(&path) {
                Some(Tracked::Registered { package, .. }) => Some(package),
                Some(Tracked::Settling { replaces, .. }) => replaces,
                None => None,
            };
            if let Some(package) = package {
                self.unregister(&path, &package).await?;
                report.removed.push(self.label(&path));
            }
        }
        for (path, tenant) in present {
            let Some(stamp) = stamp(&path) else { continue };
            let (ready, replaces) = match self.tracked.get(&path) {
                Some(Tracked::Registered {
                    stamp: known,
                    package,
                }) => {
                    if *known == stamp {
                        continue;
                    }
                    (false, Some(package.clone()))
                }
                Some(Tracked::Settling {
                    stamp: known,
                    since,
                    replaces,
                }) => (
                    *known == stamp && since.elapsed() >= self.settle,
                    replaces.clone(),
                ),
                None => (false, None),
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
            let registered = self.register(&path, &tenant).await;
            // What the file held before is gone from it.
            if let Some(old) = &replaces
                && registered.as_ref().ok().is_none_or(|new| new != old)
            {
                self.unregister(&path, old).await?;
            }
            match registered {
                Ok(package) => {
                    report.registered.push(self.label(&path));
                    self.tracked
                        .insert(path, Tracked::Registered { stamp, package });
                }
                Err(reason) => {
                    tracing::warn!(file = %path.display(), %reason, "dropped file rejected");
                    report.rejected.push((self.label(&path), reason.clone()));
                    self.tracked.remove(&path);
                    self.reject(&path, &reason);
                }
            }
        }
        Ok(report)
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

    async fn register(&mut self, path: &Path, tenant: &TenantId) -> Result<FromFile, String> {
        let trust = self
            .trust
            .store()
            .await
            .map_err(|error| error.to_string())?;
        let policy = if self.require_signatures {
            SignaturePolicy::Required
        } else {
            SignaturePolicy::Optional
        };
        // Reading and verifying (streaming: files hashed, not held) are
        // blocking work: off the async workers.
        let (file, tenant_name) = (path.to_owned(), tenant.to_string());
        let (bytes, verified) = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&file).map_err(|error| format!("cannot read it: {error}"))?;
            let verified = Package::verify_streaming(
                std::io::Cursor::new(&bytes),
                bytes.len() as u64,
                &ReadLimits::default(),
                &trust,
                Some(&tenant_name),
                policy,
            )
            .map_err(|error| error.to_string())?;
            Ok::<_, String>((bytes, verified))
        })
        .await
        .map_err(|error| format!("verification was interrupted: {error}"))??;
        if let Some(tenants) = &self.tenants {
            tenants
                .ensure(tenant)
                .await
                .map_err(|error| error.to_string())?;
        }
        let registry = self
            .registry(tenant)
            .await
            .map_err(|error| error.to_string())?;
        let source = format!("{SOURCE_PREFIX}{}", path.display());
        let upload = registry
            .upload_from(&verified, &bytes, Some(&source))
            .await
            .map_err(|error| error.to_string())?;
        // What this file held before (replaced while no host watched) is
        // gone from it.
        let stale: Vec<_> = registry
            .list()
            .await
            .map_err(|error| error.to_string())?
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
                .map_err(|error| error.to_string())?;
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
    /// out.
    fn list_files(&self) -> Vec<(PathBuf, TenantId)> {
        let mut files = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return files;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                let Ok(tenant) = TenantId::new(name.as_str()) else {
                    tracing::warn!(folder = %path.display(), "not a tenant name; ignored");
                    continue;
                };
                let Ok(inner) = std::fs::read_dir(&path) else {
                    continue;
                };
                for entry in inner.flatten() {
                    let path = entry.path();
                    if is_package(&path) {
                        files.push((path, tenant.clone()));
                    }
                }
            } else if is_package(&path) {
                files.push((path, TenantId::public()));
            }
        }
        files.sort();
        files
    }

    /// The tenant folders present, empty or not.
    fn tenant_folders(&self) -> Vec<TenantId> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|entry| entry.path().is_dir())
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

fn is_package(path: &Path) -> bool {
    path.is_file()
        && path.extension().is_some_and(|e| e == EXTENSION)
        && !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(Stamp {
        size: metadata.len(),
        modified: metadata.modified().ok(),
    })
}
