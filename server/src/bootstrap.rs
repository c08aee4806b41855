//! The first admin key: on a first start with no keys, one god-mode key is
//! created (given, or generated and written to `<home>/bootstrap-key` with
//! mode 0600). Its plaintext is never logged.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};

use crate::auth::keys::{KEY_PREFIX, generate_key};
use crate::auth::{KeyStore, NewKey, Role};

pub async fn ensure_admin_key(
    keys: &KeyStore,
    home: &Path,
    given: Option<&str>,
) -> anyhow::Result<()> {
    if !keys.is_empty().await.context("cannot read the key store")? {
        return Ok(());
    }
    let (key, generated) = match given {
        Some(key) => {
            if !key.starts_with(KEY_PREFIX) || key.len() < KEY_PREFIX.len() + 16 {
                bail!(
                    "a bootstrap key must start with `{KEY_PREFIX}` and carry at least 16 more characters"
                );
            }
            (key.to_owned(), false)
        }
        None => (generate_key().context("cannot generate a key")?, true),
    };
    let new = NewKey {
        name: "bootstrap".to_owned(),
        role: Role::Admin,
        tenant: None,
        is_admin: true,
    };
    if generated {
        let path = home.join("bootstrap-key");
        write_private(&path, &key)
            .with_context(|| format!("cannot write the bootstrap key to {}", path.display()))?;
        keys.create(&key, &new)
            .await
            .context("cannot store the bootstrap key")?;
        tracing::info!(file = %path.display(), "no API keys yet: created an admin key and wrote it to this file (mode 0600)");
    } else {
        keys.create(&key, &new)
            .await
            .context("cannot store the bootstrap key")?;
        tracing::info!("no API keys yet: stored the given bootstrap key as the admin key");
    }
    Ok(())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

/// A key made directly in a host's database, without a server.
#[derive(Debug, Clone)]
pub struct OfflineKey {
    pub id: uuid::Uuid,
    /// Shown once; stored only as its SHA-256.
    pub plaintext: String,
    pub role: Role,
    pub tenant: Option<cloacina_runtime::TenantId>,
    pub god: bool,
}

/// Creates a key in the host's main database (`db`, the public tenant's):
/// the way back in for an operator who lost every god-mode key. A running
/// server accepts it at once (unknown keys are looked up, not cached).
pub async fn create_key_offline(
    db: &cloacina_runtime::Database,
    name: &str,
    role: Role,
    tenant: Option<cloacina_runtime::TenantId>,
    god: bool,
) -> anyhow::Result<OfflineKey> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        bail!("a key needs a name of 1 to 200 characters");
    }
    if god && tenant.is_some() {
        bail!("a god-mode key serves every tenant; drop --for-tenant");
    }
    let keys = KeyStore::open(db)
        .await
        .context("cannot open the key store")?;
    let plaintext = generate_key().context("cannot generate a key")?;
    let record = keys
        .create(
            &plaintext,
            &NewKey {
                name: name.to_owned(),
                role: if god { Role::Admin } else { role },
                tenant,
                is_admin: god,
            },
        )
        .await
        .context("cannot store the key")?;
    Ok(OfflineKey {
        id: record.id,
        plaintext,
        role: record.role,
        tenant: record.tenant,
        god: record.is_admin,
    })
}
