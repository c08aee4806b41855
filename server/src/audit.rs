//! The audit log: every change to keys, tenants, packages and the trust
//! store, who made it (the key; for the trust store, which is edited on the
//! host with `cloacinactl trust`, the local user), when and from where (the
//! client address), kept in the main database beside the keys and readable
//! by god-mode keys (`GET /v1/audit`, `cloacinactl audit`).
//!
//! An entry is written after its change succeeded. Writing it is not
//! allowed to undo the change: a failed write is logged as an error.

use std::net::IpAddr;

use cloacina_runtime::Database;
use cloacina_runtime::clock::now_ms;
use cloacina_runtime::database::Migration;
use cloacina_wire::audit::AuditEntry;
use serde_json::Value;
use sqlx::Row;

use crate::auth::Caller;
use crate::routes::rfc3339;

const MIGRATIONS: &[Migration] = &[(
    1,
    &[
        "CREATE TABLE audit_log (
            id TEXT PRIMARY KEY,
            at BIGINT NOT NULL,
            actor_key_id TEXT,
            actor_name TEXT,
            address TEXT,
            action TEXT NOT NULL,
            tenant TEXT,
            target TEXT NOT NULL,
            detail TEXT
        )",
        "CREATE INDEX audit_log_newest ON audit_log (at DESC, id)",
    ],
)];

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    KeyCreate,
    KeyRevoke,
    TenantCreate,
    TenantRemove,
    PackageUpload,
    PackageDelete,
    TrustAdd,
    TrustRevoke,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::KeyCreate => "key.create",
            Action::KeyRevoke => "key.revoke",
            Action::TenantCreate => "tenant.create",
            Action::TenantRemove => "tenant.remove",
            Action::PackageUpload => "package.upload",
            Action::PackageDelete => "package.delete",
            Action::TrustAdd => "trust.add",
            Action::TrustRevoke => "trust.revoke",
        }
    }
}

/// Who made a change, as an entry names them.
struct Actor {
    key_id: Option<String>,
    name: String,
    address: Option<IpAddr>,
}

/// The audit table of a host's main database.
#[derive(Debug, Clone)]
pub struct AuditLog {
    db: Database,
}

impl AuditLog {
    pub async fn open(db: &Database) -> Result<Self, cloacina_runtime::database::DatabaseError> {
        db.migrate("audit", MIGRATIONS).await?;
        Ok(AuditLog { db: db.clone() })
    }

    /// Records that `caller` did `action` to `target` (in `tenant`).
    pub(crate) async fn record(
        &self,
        caller: &Caller,
        action: Action,
        tenant: Option<&str>,
        target: &str,
        detail: Option<Value>,
    ) {
        let actor = Actor {
            key_id: Some(caller.key.id.to_string()),
            name: caller.key.name.clone(),
            address: caller.address,
        };
        if let Err(error) = self.insert(&actor, action, tenant, target, detail).await {
            tracing::error!(%error, action = action.as_str(), target,
                "the audit log could not record a change that was made");
        }
    }

    /// Records that `user`, an operator on the host's machine, did
    /// `action` to `target` (in `tenant`): no key, no address; the name is
    /// `local:USER`.
    pub async fn record_local(
        &self,
        user: &str,
        action: Action,
        tenant: Option<&str>,
        target: &str,
        detail: Option<Value>,
    ) -> Result<(), sqlx::Error> {
        let actor = Actor {
            key_id: None,
            name: format!("local:{user}"),
            address: None,
        };
        self.insert(&actor, action, tenant, target, detail).await
    }

    async fn insert(
        &self,
        actor: &Actor,
        action: Action,
        tenant: Option<&str>,
        target: &str,
        detail: Option<Value>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor_key_id, actor_name, address, action, tenant, target, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(now_ms())
        .bind(actor.key_id.as_deref())
        .bind(&actor.name)
        .bind(actor.address.map(|address: IpAddr| address.to_string()))
        .bind(action.as_str())
        .bind(tenant)
        .bind(target)
        .bind(detail.map(|detail| detail.to_string()))
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// The newest entries first: `limit` of them after `offset`, and how
    /// many there are.
    pub(crate) async fn list(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AuditEntry>, u64), sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, at, actor_key_id, actor_name, address, action, tenant, target, detail
               FROM audit_log ORDER BY at DESC, id LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(self.db.pool())
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(self.db.pool())
            .await?;
        let entries = rows
            .iter()
            .map(|row| -> Result<AuditEntry, sqlx::Error> {
                let detail: Option<String> = row.try_get(8)?;
                Ok(AuditEntry {
                    id: row.try_get(0)?,
                    at: rfc3339(row.try_get(1)?),
                    actor_key_id: row.try_get(2)?,
                    actor_name: row.try_get(3)?,
                    address: row.try_get(4)?,
                    action: row.try_get(5)?,
                    tenant: row.try_get(6)?,
                    target: row.try_get(7)?,
                    detail: detail.and_then(|text| serde_json::from_str(&text).ok()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((entries, u64::try_from(total).unwrap_or(0)))
    }
}
