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
//! - Files already there are picked up by the first scan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use cloacina_package::{Package, ReadLimits, SignaturePolicy};
use cloacina_registry::{Registry, RegistryError, Tenants, TrustKeys};
use cloacina_runtime::{Database, TenantId};
use serde::Serialize;

const EXTENSION: &str = "cloacina";
const REJECTED: &str = ".rejected";

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

#[derive(Debug)]
enum Tracked {
    /// Seen with this stamp at this time; not read yet.
    Settling { stamp: Stamp, since: Instant },
    /// Registered as this package.
    Registered {
        stamp: Stamp,
        tenant: TenantId,
        name: String,
        version: semver::Version,
    },
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
}

impl DropDir {
    /// Watches `dir` for the host whose databases are at `url`.
    pub fn new(
        dir: impl Into<PathBuf>,
        url: &str,
        trust: TrustKeys,
        require_signatures: bool,
    ) -> Self {
        DropDir {
            dir: dir.into(),
            url: url.to_owned(),
            trust,
            require_signatures,
            settle: Duration::from_millis(250),
            tracked: BTreeMap::new(),
            registries: BTreeMap::new(),
            tenants: None,
        }
    }

    /// Records in `tenants` each tenant a file is registered for, so the
    /// host serves it.
    pub fn record_tenants(mut self, tenants: Tenants) -> Self {
        self.tenants = Some(tenants);
        self
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
        // Vanished files: unregister what they registered.
        let gone: Vec<PathBuf> = self
            .tracked
            .keys()
            .filter(|path| !present.iter().any(|(p, _)| p == *path))
            .cloned()
            .collect();
        for path in gone {
            if let Some(Tracked::Registered {
                tenant,
                name,
                version,
                ..
            }) = self.tracked.remove(&path)
            {
                let registry = self.registry(&tenant).await?;
                registry.remove(&name, &version).await?;
                tracing::info!(file = %path.display(), %name, %version, "dropped file removed; unregistered");
                report.removed.push(self.label(&path));
            }
        }
        for (path, tenant) in present {
            let Some(stamp) = stamp(&path) else { continue };
            let ready = match self.tracked.get(&path) {
                Some(Tracked::Registered { stamp: known, .. }) if *known == stamp => continue,
                Some(Tracked::Settling {
                    stamp: known,
                    since,
                }) if *known == stamp => since.elapsed() >= self.settle,
                _ => false,
            };
            if !ready {
                self.tracked.insert(
                    path.clone(),
                    Tracked::Settling {
                        stamp,
                        since: Instant::now(),
                    },
                );
                report.settling.push(self.label(&path));
                continue;
            }
            match self.register(&path, &tenant).await {
                Ok((name, version)) => {
                    report.registered.push(self.label(&path));
                    self.tracked.insert(
                        path,
                        Tracked::Registered {
                            stamp,
                            tenant,
                            name,
                            version,
                        },
                    );
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

    async fn register(
        &mut self,
        path: &Path,
        tenant: &TenantId,
    ) -> Result<(String, semver::Version), String> {
        let bytes = std::fs::read(path).map_err(|error| format!("cannot read it: {error}"))?;
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
        let verified = Package::read(&bytes, &ReadLimits::default())
            .map_err(|error| format!("not a usable package: {error}"))?
            .verify(&trust, Some(tenant.as_str()), policy)
            .map_err(|error| format!("verification failed: {error}"))?;
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
        let upload = registry
            .upload(&verified, &bytes)
            .await
            .map_err(|error| error.to_string())?;
        Ok((upload.record.name, upload.record.version))
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
