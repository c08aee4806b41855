//! What an operator runs on a host: the server, the trust store, keys and
//! uploads straight into its database (`--home` / `--database-url`), and
//! opening that database from the command line.

pub mod keys;
pub mod server;
pub mod trust;
pub mod upload;

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use cloacina_registry::RegistryError;
use cloacina_runtime::{Database, TenantId};

use crate::cli::HostArgs;
use crate::failure::{Classify as _, Failure, FailureKind};

impl HostArgs {
    /// The host's database URL: --database-url, else HOME/cloacina.db.
    pub fn url(&self) -> Result<String, Failure> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        Ok(format!(
            "sqlite://{}",
            self.home_dir()?.join("cloacina.db").display()
        ))
    }

    /// The host's data directory: --home, else $CLOACINA_HOME, else
    /// ~/.cloacina (with --database-url it still holds the local cache).
    pub fn home_dir(&self) -> Result<PathBuf, Failure> {
        self.home
            .clone()
            .or_else(cloacina_defaults::data_dir)
            .ok_or_else(|| anyhow!("no --home given and $HOME is not set"))
            .classify(FailureKind::Usage)
    }

    /// Connects to `tenant`'s database of this host.
    pub async fn open(&self, tenant: &TenantId) -> Result<Database, Failure> {
        let url = self.url()?;
        let connected = cloacina_runtime::schema::open(&url, tenant).await;
        // Unreachable or busy: the same command may succeed later.
        let kind = match &connected {
            Err(error) if cloacina_runtime::database::is_unavailable(error) => {
                FailureKind::Unavailable
            }
            _ => FailureKind::Other,
        };
        connected
            .with_context(|| {
                format!(
                    "cannot open the host's database ({})",
                    cloacina_runtime::database::redact(&url)
                )
            })
            .classify(kind)
    }
}

/// A tenant name from the command line.
pub fn tenant(name: &str) -> Result<TenantId, Failure> {
    TenantId::new(name)
        .context("--tenant")
        .classify(FailureKind::Usage)
}

/// A tokio runtime for one command.
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> Result<T, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

/// Registry errors by kind: a conflict or a revoked key is exit 9.
pub fn registry_failure(error: RegistryError) -> Failure {
    let kind = match error {
        RegistryError::Conflict { .. }
        | RegistryError::WorkflowOwned(_)
        | RegistryError::Revoked(_) => FailureKind::Conflict,
        _ => FailureKind::Other,
    };
    Failure {
        kind,
        error: anyhow::Error::new(error),
        hint: None,
    }
}
