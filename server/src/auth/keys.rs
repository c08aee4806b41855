//! API keys at rest: SHA-256 of the key, never the key; roles and tenant
//! scope; revocation for good.

use std::fmt;
use std::str::FromStr;

use cloacina_runtime::clock::now_ms;
use cloacina_runtime::database::Dialect;
use cloacina_runtime::database::Migration;
use cloacina_runtime::{Database, TenantId};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

const MIGRATIONS: &[Migration] = &[(
    1,
    &["CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        tenant TEXT,
        is_admin BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
    )"],
)];

/// The plaintext prefix of every key.
pub const KEY_PREFIX: &str = "clk_";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Write,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{other}` (expected admin, write or read)"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: uuid::Uuid,
    pub name: String,
    pub role: Role,
    /// None: every tenant.
    pub tenant: Option<TenantId>,
    /// God mode: manages tenants and tenant-scoped keys.
    pub is_admin: bool,
    pub created_at_ms: i64,
    pub revoked: bool,
}

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    /// Unknown, or revoked already.
    NotFound,
    /// The key is the last unrevoked god-mode key: kept.
    LastGodKey,
}

/// A key to create.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub role: Role,
    pub tenant: Option<TenantId>,
    pub is_admin: bool,
}

/// A stored key failed to read, or the database failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("database error while {doing}")]
    Database {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Storage(#[from] cloacina_runtime::database::DatabaseError),
    #[error("unreadable key row: {0}")]
    Corrupt(String),
}

fn db(doing: &'static str) -> impl Fn(sqlx::Error) -> KeyStoreError + Copy {
    move |source| KeyStoreError::Database { doing, source }
}

/// The key table of a host's main database.
#[derive(Debug, Clone)]
pub struct KeyStore {
    db: Database,
}

/// SHA-256 of a plaintext key, hex.
pub fn hash_key(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// A fresh key: `clk_` and 32 random bytes, hex.
pub fn generate_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{KEY_PREFIX}{}", hex::encode(bytes)))
}

const COLUMNS: &str = "id, name, role, tenant, is_admin, created_at, revoked_at";

impl KeyStore {
    pub async fn open(db: &Database) -> Result<Self, KeyStoreError> {
        db.migrate("server", MIGRATIONS).await?;
        Ok(KeyStore { db: db.clone() })
    }

    /// Stores `key` (its plaintext) as `new`.
    pub async fn create(&self, plaintext: &str, new: &NewKey) -> Result<KeyRecord, KeyStoreError> {
        let record = KeyRecord {
            id: uuid::Uuid::new_v4(),
            name: new.name.clone(),
            role: new.role,
            tenant: new.tenant.clone(),
            is_admin: new.is_admin,
            created_at_ms: now_ms(),
            revoked: false,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, role, tenant, is_admin, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(record.id.to_string())
        .bind(&record.name)
        .bind(hash_key(plaintext))
        .bind(record.role.as_str())
        .bind(record.tenant.as_ref().map(TenantId::as_str))
        .bind(i64::from(record.is_admin))
        .bind(record.created_at_ms)
        .execute(self.db.pool())
        .await
        .map_err(db("creating an API key"))?;
        Ok(record)
    }

    /// The unrevoked key with this hash.
    pub async fn find_by_hash(&self, hash: &str) -> Result<Option<KeyRecord>, KeyStoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(hash)
        .fetch_optional(self.db.pool())
        .await
        .map_err(db("validating an API key"))?;
        row.as_ref().map(record).transpose()
    }

    /// Keys, oldest first; only `tenant`'s when given.
    pub async fn list(&self, tenant: Option<&TenantId>) -> Result<Vec<KeyRecord>, KeyStoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE ($1 IS NULL OR tenant = $1) ORDER BY created_at, id"
        ))
        .bind(tenant.map(TenantId::as_str))
        .fetch_all(self.db.pool())
        .await
        .map_err(db("listing API keys"))?;
        rows.iter().map(record).collect()
    }

    pub async fn get(&self, id: uuid::Uuid) -> Result<Option<KeyRecord>, KeyStoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.db.pool())
            .await
            .map_err(db("reading an API key"))?;
        row.as_ref().map(record).transpose()
    }

    /// Revokes a key, unless it is the last god-mode key standing (then
    /// nobody could manage tenants again).
    pub async fn revoke(&self, id: uuid::Uuid) -> Result<Revocation, KeyStoreError> {
        let failed = db("revoking an API key");
        let mut tx = self.db.pool().begin().await.map_err(&failed)?;
        if self.db.dialect() == Dialect::Postgres {
            // Two revocations of the last two god keys must not both pass:
            // the second waits here, then counts what the first left.
            sqlx::query(
                "SELECT id FROM api_keys WHERE is_admin = 1 AND revoked_at IS NULL FOR UPDATE",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(&failed)?;
        }
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL
             AND (is_admin = 0 OR (SELECT COUNT(*) FROM api_keys WHERE is_admin = 1 AND revoked_at IS NULL) > 1)",
        )
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(&failed)?
        .rows_affected()
            == 1;
        let outcome = if revoked {
            Revocation::Revoked
        } else {
            let live_god: Option<i64> = sqlx::query_scalar(
                "SELECT is_admin FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(&failed)?;
            match live_god {
                Some(is_admin) if is_admin != 0 => Revocation::LastGodKey,
                _ => Revocation::NotFound,
            }
        };
        tx.commit().await.map_err(&failed)?;
        Ok(outcome)
    }

    /// Revokes every key of `tenant`; returns their ids.
    pub async fn revoke_tenant(&self, tenant: &TenantId) -> Result<Vec<uuid::Uuid>, KeyStoreError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM api_keys WHERE tenant = $1 AND revoked_at IS NULL")
                .bind(tenant.as_str())
                .fetch_all(self.db.pool())
                .await
                .map_err(db("listing a tenant's keys"))?;
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE tenant = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(tenant.as_str())
            .execute(self.db.pool())
            .await
            .map_err(db("revoking a tenant's keys"))?;
        ids.iter()
            .map(|id| {
                id.parse()
                    .map_err(|_| KeyStoreError::Corrupt(format!("key id `{id}`")))
            })
            .collect()
    }

    pub async fn is_empty(&self) -> Result<bool, KeyStoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
            .fetch_one(self.db.pool())
            .await
            .map_err(db("counting API keys"))?;
        Ok(count == 0)
    }
}

fn record(row: &AnyRow) -> Result<KeyRecord, KeyStoreError> {
    let read = db("reading an API key row");
    let id: String = row.try_get(0).map_err(&read)?;
    let role: String = row.try_get(2).map_err(&read)?;
    let tenant: Option<String> = row.try_get(3).map_err(&read)?;
    let is_admin: i64 = row.try_get(4).map_err(&read)?;
    let revoked_at: Option<i64> = row.try_get(6).map_err(&read)?;
    Ok(KeyRecord {
        id: id
            .parse()
            .map_err(|_| KeyStoreError::Corrupt(format!("key id `{id}`")))?,
        name: row.try_get(1).map_err(&read)?,
        role: role.parse().map_err(KeyStoreError::Corrupt)?,
        tenant: tenant
            .map(|t| TenantId::new(t.as_str()).map_err(|_| KeyStoreError::Corrupt(t)))
            .transpose()?,
        is_admin: is_admin != 0,
        created_at_ms: row.try_get(5).map_err(&read)?,
        revoked: revoked_at.is_some(),
    })
}
