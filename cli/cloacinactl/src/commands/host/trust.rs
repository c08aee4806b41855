//! `cloacinactl trust add|list|revoke`: the host's trust store.

use anyhow::Context as _;
use cloacina_registry::TrustKeys;
use cloacina_runtime::{Database, TenantId};
use cloacina_server::{AuditAction as Action, AuditLog};
use cloacina_signing::{KeyFile, KeyId};
use serde::Serialize;

use super::{block_on, registry_failure, tenant};
use crate::cli::{HostArgs, TrustCommand};
use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output::{self, out};

pub fn run(command: TrustCommand, json: bool) -> Result<(), Failure> {
    match command {
        TrustCommand::Add {
            pubkey_file,
            tenant: scope,
            host,
        } => {
            let key = KeyFile::read(&pubkey_file).classify(FailureKind::Key)?;
            let scope = scope.as_deref().map(tenant).transpose()?;
            let key_id = block_on(async {
                let (db, keys) = open(&host).await?;
                let key_id = keys
                    .add(key.name(), &key.public_key(), scope.as_ref())
                    .await
                    .map_err(registry_failure)?;
                let detail = serde_json::json!({ "name": key.name() });
                audit(&db, Action::TrustAdd, scope.as_ref(), &key_id, detail).await;
                Ok::<_, Failure>(key_id)
            })??;
            let report = Added {
                key_id: key_id.to_string(),
                name: key.name().to_owned(),
                tenant: scope.as_ref().map(ToString::to_string),
            };
            if json {
                output::json(&report);
            } else {
                let whom = report
                    .tenant
                    .as_deref()
                    .map_or("every tenant".to_owned(), |t| format!("tenant {t}"));
                out!("trusted `{}` ({}) for {whom}", report.name, report.key_id);
            }
            Ok(())
        }
        TrustCommand::List { host } => {
            let entries = block_on(async {
                let (_, keys) = open(&host).await?;
                keys.list().await.map_err(registry_failure)
            })??;
            if json {
                output::json(&serde_json::json!({ "keys": entries }));
            } else if entries.is_empty() {
                out!("no keys are trusted (cloacinactl trust add KEY.pub)");
            } else {
                for entry in entries {
                    let scope = match (&entry.tenant, entry.revoked) {
                        (_, true) => "REVOKED".to_owned(),
                        (Some(tenant), _) => format!("tenant {tenant}"),
                        (None, _) => "all tenants".to_owned(),
                    };
                    out!("{}  {:<20} {scope}", entry.key_id, entry.name);
                }
            }
            Ok(())
        }
        TrustCommand::Revoke { key_id, host } => {
            let id: KeyId = key_id.parse().classify(FailureKind::Key)?;
            let was_trusted = block_on(async {
                let (db, keys) = open(&host).await?;
                let was_trusted = keys.revoke(&id).await.map_err(registry_failure)?;
                let detail = serde_json::json!({ "was_trusted": was_trusted });
                audit(&db, Action::TrustRevoke, None, &id, detail).await;
                Ok::<_, Failure>(was_trusted)
            })??;
            if json {
                output::json(
                    &serde_json::json!({ "key_id": key_id, "revoked": true, "was_trusted": was_trusted }),
                );
            } else if was_trusted {
                out!("revoked {key_id}: packages it signed no longer verify");
            } else {
                out!("revoked {key_id} (it was not trusted; it now never can be)");
            }
            Ok(())
        }
    }
}

#[derive(Serialize)]
struct Added {
    key_id: String,
    name: String,
    tenant: Option<String>,
}

/// The trust store lives in the host's main (public tenant) database.
async fn open(host: &HostArgs) -> Result<(Database, TrustKeys), Failure> {
    let db = host.open(&TenantId::public()).await?;
    let keys = TrustKeys::open(&db)
        .await
        .context("cannot open the trust store")
        .classify(FailureKind::Other)?;
    Ok((db, keys))
}

/// Records a trust store change in the host's audit log, as the local
/// user's. The change is made by then: a failure to record it is a
/// warning, not the command's failure.
async fn audit(
    db: &Database,
    action: Action,
    tenant: Option<&TenantId>,
    key_id: &KeyId,
    detail: serde_json::Value,
) {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let tenant = tenant.map(ToString::to_string);
    let recorded = match AuditLog::open(db).await {
        Ok(log) => log
            .record_local(
                &user,
                action,
                tenant.as_deref(),
                &key_id.to_string(),
                Some(detail),
            )
            .await
            .map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = recorded {
        eprintln!("warning: the change was made, but the audit log could not record it: {error}");
    }
}
