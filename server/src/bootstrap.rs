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
