//! The tenants a host serves, kept in its main database: `public` always,
//! and every tenant a package was registered for.

use cloacina_database::clock::now_ms;
use cloacina_database::{Database, TenantId};

use crate::RegistryError;

/// The tenant list of a host's main database.
#[derive(Debug, Clone)]
pub struct Tenants {
    db: Database,
}

impl Tenants {
    /// The tenant list in `db` (the host's main database), its table
    /// created when missing.
    pub async fn open(db: &Database) -> Result<Self, RegistryError> {
        crate::registry::migrate(db).await?;
        Ok(Tenants { db: db.clone() })
    }

    /// Records `tenant`; true when it is new.
    pub async fn ensure(&self, tenant: &TenantId) -> Result<bool, RegistryError> {
        if *tenant == TenantId::public() {
            return Ok(false);
        }
        let inserted = sqlx::query(
            "INSERT INTO tenants (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(now_ms())
        .execute(self.db.pool())
        .await
        .map_err(RegistryError::db("recording a tenant"))?
        .rows_affected()
            == 1;
        Ok(inserted)
    }

    /// Forgets `tenant`; true when it was recorded.
    pub async fn remove(&self, tenant: &TenantId) -> Result<bool, RegistryError> {
        Ok(sqlx::query("DELETE FROM tenants WHERE name = $1")
            .bind(tenant.as_str())
            .execute(self.db.pool())
            .await
            .map_err(RegistryError::db("removing a tenant"))?
            .rows_affected()
            == 1)
    }

    /// Whether `tenant` is served (`public` always is).
    pub async fn contains(&self, tenant: &TenantId) -> Result<bool, RegistryError> {
        if *tenant == TenantId::public() {
            return Ok(true);
        }
        let found: Option<String> = sqlx::query_scalar("SELECT name FROM tenants WHERE name = $1")
            .bind(tenant.as_str())
            .fetch_optional(self.db.pool())
            .await
            .map_err(RegistryError::db("reading tenants"))?;
        Ok(found.is_some())
    }

    /// `public` first, then the others by name.
    pub async fn list(&self) -> Result<Vec<TenantId>, RegistryError> {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM tenants ORDER BY name")
            .fetch_all(self.db.pool())
            .await
            .map_err(RegistryError::db("listing tenants"))?;
        let mut tenants = vec![TenantId::public()];
        for name in names {
            let tenant = TenantId::new(name.as_str())
                .map_err(|_| RegistryError::Corrupt(format!("tenant name `{name}`")))?;
            tenants.push(tenant);
        }
        Ok(tenants)
    }
}
