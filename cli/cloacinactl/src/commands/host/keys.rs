//! `api-key create --home|--database-url`: a key minted in the host's
//! database directly (the way back in when every god key is lost).

use serde_json::json;

use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output::{self, out};

/// `api-key create --home/--database-url`: the key written into the
/// host's database directly.
pub fn create_offline(
    host: &crate::cli::HostArgs,
    name: &str,
    role: &str,
    for_tenant: Option<&str>,
    god: bool,
    json: bool,
) -> Result<(), Failure> {
    let role: cloacina_server::Role = role
        .parse()
        .map_err(|error: String| anyhow::anyhow!(error))
        .classify(FailureKind::Usage)?;
    let tenant = for_tenant.map(super::tenant).transpose()?;
    // A mistyped --home must not mint a key into a new, empty database
    // that no server reads.
    let url = host.url()?;
    if let Ok(cloacina_runtime::DatabaseUrl::Sqlite(path)) =
        cloacina_runtime::DatabaseUrl::parse(&url)
        && !path.is_file()
    {
        return Err(anyhow::anyhow!(
            "no host database at {}: give the --home (or --database-url) of an existing host",
            path.display()
        ))
        .classify(FailureKind::Usage);
    }
    let created = super::block_on(async {
        let db = host.open(&cloacina_runtime::TenantId::public()).await?;
        let created = cloacina_server::create_key_offline(&db, name, role, tenant, god)
            .await
            .classify(FailureKind::Usage);
        db.close().await;
        created
    })??;
    let report = json!({
        "id": created.id.to_string(),
        "name": name.trim(),
        "key": created.plaintext,
        "permissions": created.role.as_str(),
        "tenant_id": created.tenant.as_ref().map(ToString::to_string),
        "is_admin": created.god,
    });
    if json {
        output::json(&report);
    } else {
        out!("{}", created.plaintext);
        eprintln!(
            "created {}key {} ({}, {}) in the host's database — the line above is its only showing",
            if created.god { "god-mode " } else { "" },
            created.id,
            created.role.as_str(),
            created
                .tenant
                .as_ref()
                .map_or("all tenants".to_owned(), ToString::to_string)
        );
    }
    Ok(())
}
