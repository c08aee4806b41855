//! The registry's tables and operations on one tenant's database.

use cloacina_contract::ArtifactKind;
use cloacina_contract::ownership::WorkflowOwned;
use cloacina_database::Database;
use cloacina_database::Migration;
use cloacina_database::clock::now_ms;
use cloacina_package::VerifiedManifest;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{PackageRecord, PackageStatus, RegistryError, Upload};

const MIGRATIONS: &[Migration] = &[
    (
        1,
        &[
            // BYTEA is PostgreSQL's binary type; SQLite stores blobs as given.
            "CREATE TABLE package_archives (
            sha256 TEXT PRIMARY KEY,
            bytes BYTEA NOT NULL
        )",
            "CREATE TABLE packages (
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size BIGINT NOT NULL,
            runtimes TEXT NOT NULL,
            signer_key_id TEXT,
            status TEXT NOT NULL,
            error TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (name, version)
        )",
        ],
    ),
    (
        2,
        &[
            // tenant '*': trusted for every tenant.
            "CREATE TABLE trusted_keys (
            key_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            public_key TEXT NOT NULL,
            added_at BIGINT NOT NULL,
            PRIMARY KEY (key_id, tenant)
        )",
            "CREATE TABLE revoked_keys (
            key_id TEXT PRIMARY KEY,
            revoked_at BIGINT NOT NULL
        )",
        ],
    ),
    (
        3,
        &[
            // The tenants a host serves besides `public` (main database).
            "CREATE TABLE tenants (
            name TEXT PRIMARY KEY,
            created_at BIGINT NOT NULL
        )",
        ],
    ),
    (
        4,
        &[
            // Where a package came from when that matters later: a file in
            // a drop directory (`drop:<path>`), unregistered when it goes.
            "ALTER TABLE packages ADD COLUMN source TEXT",
        ],
    ),
    (
        5,
        &[
            // Which package declares which workflow: a workflow name
            // belongs to one package of the tenant.
            "CREATE TABLE package_workflows (
            workflow TEXT NOT NULL,
            package TEXT NOT NULL,
            version TEXT NOT NULL,
            PRIMARY KEY (workflow, package, version)
        )",
        ],
    ),
];

/// Creates or updates the registry's tables (packages, archives, trust).
pub(crate) async fn migrate(db: &Database) -> Result<(), RegistryError> {
    db.migrate("registry", MIGRATIONS).await?;
    Ok(())
}

const COLUMNS: &str = "name, version, sha256, size, runtimes, signer_key_id, status, error, created_at, updated_at, source";

/// One tenant's registry.
#[derive(Debug, Clone)]
pub struct Registry {
    db: Database,
}

impl Registry {
    /// The registry in `db`, its tables created when missing.
    pub async fn open(db: &Database) -> Result<Self, RegistryError> {
        migrate(db).await?;
        Ok(Registry { db: db.clone() })
    }

    /// Registers a verified package and its archive bytes (pending until a
    /// host loads it). Idempotent for the same bytes; other bytes under the
    /// same name and version are a conflict.
    pub async fn upload(
        &self,
        package: &VerifiedManifest,
        archive: &[u8],
    ) -> Result<Upload, RegistryError> {
        self.upload_from(package, archive, None).await
    }

    /// [`Registry::upload`], recording where the package came from (kept
    /// from the first upload when the same bytes come again).
    pub async fn upload_from(
        &self,
        package: &VerifiedManifest,
        archive: &[u8],
        source: Option<&str>,
    ) -> Result<Upload, RegistryError> {
        let info = package.manifest().package();
        let name = info.name.to_string();
        let version = info.version.to_string();
        let sha256 = hex::encode(Sha256::digest(archive));
        let runtimes: Vec<String> = package
            .manifest()
            .artifacts()
            .iter()
            .map(|artifact| match &artifact.kind {
                ArtifactKind::Native { target } => format!("native:{target}"),
                ArtifactKind::Wasm => "wasm".to_owned(),
            })
            .collect();
        let signer = package.signer().map(|s| s.key_id.to_string());
        let now = now_ms();
        let failed = RegistryError::db("registering a package");
        let mut tx = self.db.pool().begin().await.map_err(failed)?;
        sqlx::query(
            "INSERT INTO package_archives (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&sha256)
        .bind(archive)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
        let inserted = sqlx::query(
            "INSERT INTO packages (name, version, sha256, size, runtimes, signer_key_id, status, created_at, updated_at, source)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7, $8) ON CONFLICT (name, version) DO NOTHING",
        )
        .bind(&name)
        .bind(&version)
        .bind(&sha256)
        .bind(i64::try_from(archive.len()).unwrap_or(i64::MAX))
        .bind(runtimes.join(","))
        .bind(signer)
        .bind(now)
        .bind(source)
        .execute(&mut *tx)
        .await
        .map_err(failed)?
        .rows_affected()
            == 1;
        let record = fetch(&mut tx, &name, &version)
            .await?
            .ok_or_else(|| RegistryError::Corrupt(format!("{name} {version} vanished")))?;
        if record.sha256 != sha256 {
            // Leave the stored package and bytes as they were.
            tx.rollback().await.map_err(failed)?;
            return Err(RegistryError::Conflict {
                name,
                version,
                existing: record.sha256,
            });
        }
        // A workflow name belongs to one package: another package of this
        // tenant declaring one of these is refused, naming both.
        for workflow in &package.manifest().declaration().workflows {
            let owner = sqlx::query(
                "SELECT package, version FROM package_workflows WHERE workflow = $1 AND package <> $2 LIMIT 1",
            )
            .bind(workflow.name.as_str())
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed)?;
            if let Some(owner) = owner {
                let owner_name: String = owner.try_get(0).map_err(failed)?;
                let owner_version: String = owner.try_get(1).map_err(failed)?;
                tx.rollback().await.map_err(failed)?;
                return Err(WorkflowOwned {
                    workflow: workflow.name.to_string(),
                    owner: format!("{owner_name} {owner_version}"),
                    claimant: format!("{name} {version}"),
                }
                .into());
            }
            sqlx::query(
                "INSERT INTO package_workflows (workflow, package, version) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(workflow.name.as_str())
            .bind(&name)
            .bind(&version)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        }
        if inserted {
            crate::changes::announce(&mut tx, self.db.dialect(), self.db.tenant().as_str()).await?;
        }
        tx.commit().await.map_err(failed)?;
        if inserted {
            tracing::info!(%name, %version, %sha256, "package registered");
        }
        Ok(Upload {
            record,
            created: inserted,
        })
    }

    /// Closes this registry's database connections.
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Every registered package, by name then version.
    pub async fn list(&self) -> Result<Vec<PackageRecord>, RegistryError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM packages"))
            .fetch_all(self.db.pool())
            .await
            .map_err(RegistryError::db("listing packages"))?;
        let mut records = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.version.cmp(&b.version)));
        Ok(records)
    }

    pub async fn get(
        &self,
        name: &str,
        version: &semver::Version,
    ) -> Result<Option<PackageRecord>, RegistryError> {
        let mut connection = self
            .db
            .pool()
            .acquire()
            .await
            .map_err(RegistryError::db("reading a package"))?;
        fetch(&mut connection, name, &version.to_string()).await
    }

    /// The archive bytes of a registered package.
    pub async fn archive(
        &self,
        name: &str,
        version: &semver::Version,
    ) -> Result<Vec<u8>, RegistryError> {
        let bytes: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT a.bytes FROM packages AS p JOIN package_archives AS a ON a.sha256 = p.sha256
              WHERE p.name = $1 AND p.version = $2",
        )
        .bind(name)
        .bind(version.to_string())
        .fetch_optional(self.db.pool())
        .await
        .map_err(RegistryError::db("reading a package archive"))?;
        bytes.ok_or_else(|| RegistryError::NotFound {
            name: name.to_owned(),
            version: version.to_string(),
        })
    }

    /// Records what loading a package came to.
    pub async fn set_status(
        &self,
        name: &str,
        version: &semver::Version,
        status: &PackageStatus,
    ) -> Result<(), RegistryError> {
        let error = match status {
            PackageStatus::Failed(error) => Some(error.as_str()),
            _ => None,
        };
        let done = sqlx::query(
            "UPDATE packages SET status = $1, error = $2, updated_at = $3 WHERE name = $4 AND version = $5",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(now_ms())
        .bind(name)
        .bind(version.to_string())
        .execute(self.db.pool())
        .await
        .map_err(RegistryError::db("recording a package's status"))?;
        if done.rows_affected() == 0 {
            return Err(RegistryError::NotFound {
                name: name.to_owned(),
                version: version.to_string(),
            });
        }
        Ok(())
    }

    /// Unregisters a package version; its bytes go when no version uses
    /// them. False when it was not registered.
    pub async fn remove(
        &self,
        name: &str,
        version: &semver::Version,
    ) -> Result<bool, RegistryError> {
        let failed = RegistryError::db("removing a package");
        let mut tx = self.db.pool().begin().await.map_err(failed)?;
        let removed = sqlx::query("DELETE FROM packages WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version.to_string())
            .execute(&mut *tx)
            .await
            .map_err(failed)?
            .rows_affected()
            == 1;
        sqlx::query("DELETE FROM package_workflows WHERE package = $1 AND version = $2")
            .bind(name)
            .bind(version.to_string())
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        sqlx::query(
            "DELETE FROM package_archives WHERE sha256 NOT IN (SELECT sha256 FROM packages)",
        )
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
        if removed {
            crate::changes::announce(&mut tx, self.db.dialect(), self.db.tenant().as_str()).await?;
        }
        tx.commit().await.map_err(failed)?;
        Ok(removed)
    }

    /// The highest semver version of `name` that is loaded.
    pub async fn latest_loaded(&self, name: &str) -> Result<Option<PackageRecord>, RegistryError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM packages WHERE name = $1 AND status = 'loaded'"
        ))
        .bind(name)
        .fetch_all(self.db.pool())
        .await
        .map_err(RegistryError::db("reading a package"))?;
        let records = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
        Ok(records.into_iter().max_by(|a, b| a.version.cmp(&b.version)))
    }
}

async fn fetch(
    connection: &mut sqlx::AnyConnection,
    name: &str,
    version: &str,
) -> Result<Option<PackageRecord>, RegistryError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM packages WHERE name = $1 AND version = $2"
    ))
    .bind(name)
    .bind(version)
    .fetch_optional(connection)
    .await
    .map_err(RegistryError::db("reading a package"))?;
    row.as_ref().map(record).transpose()
}

fn record(row: &AnyRow) -> Result<PackageRecord, RegistryError> {
    let read = RegistryError::db("reading a package row");
    let version: String = row.try_get(1).map_err(read)?;
    let status: String = row.try_get(6).map_err(read)?;
    let runtimes: String = row.try_get(4).map_err(read)?;
    let size: i64 = row.try_get(3).map_err(read)?;
    Ok(PackageRecord {
        name: row.try_get(0).map_err(read)?,
        version: semver::Version::parse(&version)
            .map_err(|_| RegistryError::Corrupt(format!("version `{version}`")))?,
        sha256: row.try_get(2).map_err(read)?,
        size: u64::try_from(size).unwrap_or(0),
        runtimes: runtimes
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        signer_key_id: row.try_get(5).map_err(read)?,
        status: PackageStatus::from_columns(&status, row.try_get(7).map_err(read)?)
            .ok_or_else(|| RegistryError::Corrupt(format!("status `{status}`")))?,
        created_at_ms: row.try_get(8).map_err(read)?,
        updated_at_ms: row.try_get(9).map_err(read)?,
        source: row.try_get(10).map_err(read)?,
    })
}
