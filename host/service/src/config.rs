//! How a host is set up.

use std::path::PathBuf;
use std::time::Duration;

use cloacina_graphs::GraphConfig;
use cloacina_runtime::{HostIdentity, RunnerConfig};

/// Everything a [`crate::Host`] needs to start.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// `sqlite://PATH` (a file per tenant beside it) or `postgres://...`
    /// (a schema per tenant).
    pub database_url: String,
    /// Where verified packages are extracted, by content digest.
    pub cache_dir: PathBuf,
    /// Run native libraries in `cloacina-plugin-worker` processes (crash
    /// safe, truly unloadable); None loads them into this process.
    pub worker_binary: Option<PathBuf>,
    /// Refuse unsigned packages from the drop directory and at load.
    pub require_signatures: bool,
    /// A directory whose `.cloacina` files are registered (sub-directory:
    /// tenant).
    pub watch_dir: Option<PathBuf>,
    /// How long a dropped file must stay unchanged before it is read.
    pub settle: Duration,
    /// The safety net: a full pass this often even when nothing woke the
    /// loop.
    pub resync_interval: Duration,
    /// Who this host is in every tenant's `hosts` table. Every tenant's
    /// runner carries it, so that one server is one host wherever it
    /// serves. A fresh id by default: two hosts started from clones of one
    /// config on one database need a new one each.
    pub identity: HostIdentity,
    /// Each tenant's runner is configured like this (its tenant and host
    /// identity replaced).
    pub runner: RunnerConfig,
    /// Each tenant's computation graphs run with this.
    pub graphs: GraphConfig,
}

impl HostConfig {
    /// A host on `database_url` with the defaults: in-process native
    /// loading, signatures optional, no drop directory.
    pub fn new(database_url: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        HostConfig {
            database_url: database_url.into(),
            cache_dir: cache_dir.into(),
            worker_binary: None,
            require_signatures: false,
            watch_dir: None,
            settle: Duration::from_millis(250),
            resync_interval: Duration::from_secs(30),
            identity: HostIdentity::default(),
            runner: RunnerConfig::default(),
            graphs: GraphConfig::default(),
        }
    }
}
