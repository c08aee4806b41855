//! The host's trust store, kept in its database: which public keys may sign
//! packages (for every tenant, or for one), and which are revoked. Revoking
//! wins over trusting, and a revoked key cannot be trusted again.

use std::collections::BTreeSet;

use cloacina_database::clock::now_ms;
use cloacina_database::{Database, TenantId};
use cloacina_signing::{KeyId, PublicKey, TrustScope, TrustStore};
use serde::Serialize;
use sqlx::Row;

use crate::RegistryError;

/// The `tenant` column's value for a key trusted by every tenant.
const ALL_TENANTS: &str = "*";

/// One trusted (or revoked) key, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustEntry {
    pub key_id: String,
    pub name: String,
    /// None: trusted for every tenant.
    pub tenant: Option<String>,
    pub revoked: bool,
}

/// The trust store in a host's database.
#[derive(Debug, Clone)]
pub struct TrustKeys {
    db: Database,
}

impl TrustKeys {
    /// The trust store in `db` (the host's main database), its tables
    /// created when missing.
    pub async fn open(db: &Database) -> Result<Self, RegistryError> {
        crate::registry::migrate(db).await?;
        Ok(TrustKeys { db: db.clone() })
    }

    /// Trusts `public_key` for `tenant`, or for every tenant.
    pub async fn add(
        &self,
        name: &str,
        public_key: &PublicKey,
        tenant: Option<&TenantId>,
    ) -> Result<KeyId, RegistryError> {
        let key_id = public_key.id();
        if self.is_revoked(&key_id).await? {
            return Err(RegistryError::Revoked(key_id.to_string()));
        }
        let failed = RegistryError::db("trusting a key");
        let mut tx = self.db.pool().begin().await.map_err(failed)?;
        sqlx::query(
            "INSERT INTO trusted_keys (key_id, tenant, name, public_key, added_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key_id, tenant) DO UPDATE SET name = $3",
        )
        .bind(key_id.to_string())
        .bind(tenant.map_or(ALL_TENANTS, TenantId::as_str))
        .bind(name)
        .bind(public_key.to_base64())
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
        // A package that failed for want of this key may load now.
        crate::changes::announce(&mut tx, self.db.dialect(), crate::changes::EVERY_TENANT).await?;
        tx.commit().await.map_err(failed)?;
        Ok(key_id)
    }

    /// Revokes a key id for good. True when it was trusted.
    pub async fn revoke(&self, key_id: &KeyId) -> Result<bool, RegistryError> {
        let failed = RegistryError::db("revoking a key");
        let mut tx = self.db.pool().begin().await.map_err(failed)?;
        sqlx::query("INSERT INTO revoked_keys (key_id, revoked_at) VALUES ($1, $2) ON CONFLICT (key_id) DO NOTHING")
            .bind(key_id.to_string())
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        let was_trusted = sqlx::query("DELETE FROM trusted_keys WHERE key_id = $1")
            .bind(key_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(failed)?
            .rows_affected()
            > 0;
        crate::changes::announce(&mut tx, self.db.dialect(), crate::changes::EVERY_TENANT).await?;
        tx.commit().await.map_err(failed)?;
        Ok(was_trusted)
    }

    async fn is_revoked(&self, key_id: &KeyId) -> Result<bool, RegistryError> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT key_id FROM revoked_keys WHERE key_id = $1")
                .bind(key_id.to_string())
                .fetch_optional(self.db.pool())
                .await
                .map_err(RegistryError::db("reading revoked keys"))?;
        Ok(found.is_some())
    }

    /// Trusted keys (one entry per scope) and revoked ones, by key id.
    pub async fn list(&self) -> Result<Vec<TrustEntry>, RegistryError> {
        let read = RegistryError::db("listing keys");
        let rows = sqlx::query("SELECT key_id, name, tenant FROM trusted_keys")
            .fetch_all(self.db.pool())
            .await
            .map_err(read)?;
        let mut entries = rows
            .iter()
            .map(|row| {
                let tenant: String = row.try_get(2)?;
                Ok(TrustEntry {
                    key_id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    tenant: (tenant != ALL_TENANTS).then_some(tenant),
                    revoked: false,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(read)?;
        let revoked: Vec<String> = sqlx::query_scalar("SELECT key_id FROM revoked_keys")
            .fetch_all(self.db.pool())
            .await
            .map_err(read)?;
        entries.extend(revoked.into_iter().map(|key_id| TrustEntry {
            key_id,
            name: String::new(),
            tenant: None,
            revoked: true,
        }));
        entries.sort_by(|a, b| (&a.key_id, &a.tenant).cmp(&(&b.key_id, &b.tenant)));
        Ok(entries)
    }

    /// The trust store to verify packages with.
    pub async fn store(&self) -> Result<TrustStore, RegistryError> {
        let read = RegistryError::db("reading the trust store");
        let mut store = TrustStore::new();
        let revoked: Vec<String> = sqlx::query_scalar("SELECT key_id FROM revoked_keys")
            .fetch_all(self.db.pool())
            .await
            .map_err(read)?;
        for key_id in revoked {
            let key_id: KeyId = key_id
                .parse()
                .map_err(|_| RegistryError::Corrupt(format!("key id `{key_id}`")))?;
            store.revoke(key_id);
        }
        let rows = sqlx::query("SELECT name, public_key, tenant FROM trusted_keys")
            .fetch_all(self.db.pool())
            .await
            .map_err(read)?;
        for row in rows {
            let (name, key, tenant): (String, String, String) = (
                row.try_get(0).map_err(read)?,
                row.try_get(1).map_err(read)?,
                row.try_get(2).map_err(read)?,
            );
            let public_key = PublicKey::from_base64(&key)
                .ok_or_else(|| RegistryError::Corrupt(format!("public key of `{name}`")))?;
            let scope = if tenant == ALL_TENANTS {
                TrustScope::Global
            } else {
                TrustScope::Tenants(BTreeSet::from([tenant]))
            };
            // A key both trusted and revoked stays revoked.
            let _ = store.add(name, public_key, scope);
        }
        Ok(store)
    }
}
