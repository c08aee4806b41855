//! One tenant's database: a SQLite file or a PostgreSQL schema, reached
//! through one sqlx pool with the same queries for both where the dialects
//! allow.
//!
//! - SQLite (`sqlite://PATH`): the embedded default, in WAL mode with
//!   `synchronous=NORMAL` (a commit survives a killed process; the last
//!   commits may be lost on power failure). Tenant `public` uses PATH itself,
//!   tenant `t` the file `STEM.t.db` next to it. One host process per file.
//! - PostgreSQL (`postgres://...`): tenant `t` lives in schema `t` (`public`
//!   in `public`), and every connection's `search_path` is that schema alone.
//!   Several hosts may share one database.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection as _, Executor};

use crate::migrations::{self, Migration};
use crate::{DatabaseError, TenantId};

/// Which SQL dialect a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Where a database lives, parsed from a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, DatabaseError> {
        let unsupported = |reason: &str| DatabaseError::UnsupportedUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        if let Some(rest) = url.strip_prefix("sqlite:") {
            // `sqlite://` then the path: `sqlite:///abs` or `sqlite://rel`
            // (only the two slashes of the scheme are taken off).
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err(unsupported(
                    "give a file path (sqlite:///abs/path.db or sqlite://rel/path.db); an in-memory database is not durable",
                ));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        Err(unsupported("use sqlite://PATH or postgres://..."))
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            DatabaseUrl::Sqlite(_) => Dialect::Sqlite,
            DatabaseUrl::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite file that holds `tenant`'s data.
    pub fn sqlite_file(path: &Path, tenant: &TenantId) -> PathBuf {
        if tenant.is_public() {
            return path.to_owned();
        }
        let stem = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cloacina".to_owned());
        path.with_file_name(format!("{stem}.{tenant}.db"))
    }
}

/// Creates a SQLite file (and its directories) readable by its owner
/// alone, unless it exists: it holds key hashes, contexts and packages.
/// SQLite gives its `-wal` and `-shm` files the database file's mode.
fn create_private_file(file: &Path) -> std::io::Result<()> {
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Errors that pass when the database comes back: it is unreachable,
/// restarting, busy or its pool is exhausted; for SQLite, also a full disk
/// or a file system that went read-only, which pass once an operator frees
/// space or makes it writable again.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                return code
                    .parse::<i32>()
                    .is_ok_and(|code| SQLITE_TRANSIENT.contains(&(code & 0xff)));
            }
            // PostgreSQL connection, serialization and shutdown classes.
            matches!(
                code.as_ref(),
                "40001" | "40P01" | "57P01" | "57P02" | "57P03"
            ) || code.starts_with("08")
        }
        _ => false,
    }
}

/// Whether a connection handed back to the pool is outside any
/// transaction; if not, the pool closes it (the database rolls back what it
/// held) rather than hand it out again. SQLite rolls a transaction back by
/// itself when a COMMIT or a statement fails with FULL or IOERR; sqlx still
/// counts it open, and the ROLLBACK it queues when the transaction is
/// dropped then fails unseen. Reused, such a connection's next `begin()` is
/// a SAVEPOINT and its commit a RELEASE that commits nothing: writes
/// acknowledged and never stored. Free in the common case: only a
/// connection released with a transaction counted open waits for the
/// queued ROLLBACK (on SQLite a ping runs after it) and is checked again.
/// On PostgreSQL sqlx counts the transaction closed as soon as the
/// ROLLBACK is queued, and its own ping on release sends it.
async fn outside_transaction(connection: &mut sqlx::AnyConnection) -> Result<bool, sqlx::Error> {
    if !connection.is_in_transaction() {
        return Ok(true);
    }
    connection.ping().await?;
    if connection.is_in_transaction() {
        tracing::warn!(
            "a database connection came back with a transaction that could not be ended; closing it"
        );
        return Ok(false);
    }
    Ok(true)
}

/// SQLite's primary result codes (the low byte of an extended code) that
/// pass by themselves or once an operator acts: BUSY, LOCKED, READONLY,
/// IOERR (a write the file system refused), FULL, CANTOPEN.
const SQLITE_TRANSIENT: [i32; 6] = [5, 6, 8, 10, 13, 14];

/// True when `error` or one of its causes is a [transient](is_transient)
/// database error: the same request may well succeed later.
pub fn is_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<sqlx::Error>()
            .is_some_and(is_transient)
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// How long a query waits for a connection before it gives up: short, so
/// that while the database is unreachable a request is answered "try again"
/// within seconds rather than held.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected, migrated tenant database.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    dialect: Dialect,
    tenant: TenantId,
    url: DatabaseUrl,
}

impl Database {
    /// Connects to `tenant`'s database at `url`, creating the SQLite file or
    /// the PostgreSQL schema when missing. Each component applies its own
    /// tables with [`Database::migrate`].
    pub async fn connect(url: &str, tenant: &TenantId) -> Result<Self, DatabaseError> {
        sqlx::any::install_default_drivers();
        let parsed = DatabaseUrl::parse(url)?;
        let (connect_url, max_connections, setup): (String, u32, String) = match &parsed {
            DatabaseUrl::Sqlite(path) => {
                let file = DatabaseUrl::sqlite_file(path, tenant);
                create_private_file(&file).map_err(|error| DatabaseError::UnsupportedUrl {
                    url: url.to_owned(),
                    reason: format!("cannot create {}: {error}", file.display()),
                })?;
                (
                    format!("sqlite://{}?mode=rwc", file.display()),
                    4,
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;"
                        .to_owned(),
                )
            }
            DatabaseUrl::Postgres(pg) => {
                create_schema(pg, tenant).await?;
                // The application name lets an operator see (and a test
                // cut) one tenant's connections.
                let setup = format!(
                    "SET search_path TO \"{tenant}\"; SET application_name TO 'cloacina_{tenant}'"
                );
                (pg.clone(), 8, setup)
            }
        };
        let options = AnyConnectOptions::from_str(&connect_url)
            .map_err(DatabaseError::db("reading the database URL"))?
            .disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |connection, _| {
                let setup = setup.clone();
                Box::pin(async move {
                    connection.execute(setup.as_str()).await?;
                    Ok(())
                })
            })
            .after_release(|connection, _| Box::pin(outside_transaction(connection)))
            .connect_with(options)
            .await
            .map_err(DatabaseError::db("connecting"))?;
        let database = Database {
            pool,
            dialect: parsed.dialect(),
            tenant: tenant.clone(),
            url: parsed,
        };
        Ok(database)
    }

    /// Applies another component's migrations (numbered within
    /// `component`) to this database.
    pub async fn migrate(
        &self,
        component: &'static str,
        migrations: &[Migration],
    ) -> Result<(), DatabaseError> {
        migrations::apply(self, component, migrations).await
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates the tenant's schema on PostgreSQL (a no-op when it exists).
/// Gives `tenant` a PostgreSQL login role `username` with `password`,
/// owning the tenant's schema (created when missing). Nothing to do on
/// SQLite, where a tenant is a file.
pub async fn provision_tenant_role(
    url: &str,
    tenant: &TenantId,
    username: &TenantId,
    password: &str,
) -> Result<(), DatabaseError> {
    let DatabaseUrl::Postgres(pg) = DatabaseUrl::parse(url)? else {
        return Ok(());
    };
    create_schema(&pg, tenant).await?;
    let mut connection = admin_connection(&pg).await?;
    // Identifiers are TenantIds (validated names); the password is a
    // literal with its quotes doubled.
    let password = password.replace('\'', "''");
    for statement in [
        format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{username}') THEN CREATE ROLE \"{username}\" LOGIN PASSWORD '{password}'; END IF; END $$"
        ),
        format!("GRANT ALL ON SCHEMA \"{tenant}\" TO \"{username}\""),
        format!("GRANT ALL ON ALL TABLES IN SCHEMA \"{tenant}\" TO \"{username}\""),
        format!(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA \"{tenant}\" GRANT ALL ON TABLES TO \"{username}\""
        ),
    ] {
        connection
            .execute(statement.as_str())
            .await
            .map_err(DatabaseError::db("provisioning the tenant's role"))?;
    }
    Ok(())
}

/// Deletes `tenant`'s data for good: its PostgreSQL schema (and the
/// login role named after it, if any) or its SQLite file. Close its pools
/// first.
pub async fn drop_tenant_data(url: &str, tenant: &TenantId) -> Result<(), DatabaseError> {
    if tenant.is_public() {
        return Err(DatabaseError::PublicTenant);
    }
    match DatabaseUrl::parse(url)? {
        DatabaseUrl::Postgres(pg) => {
            let mut connection = admin_connection(&pg).await?;
            connection
                .execute(format!("DROP SCHEMA IF EXISTS \"{tenant}\" CASCADE").as_str())
                .await
                .map_err(DatabaseError::db("dropping the tenant's schema"))?;
            connection
                .execute(format!("DROP ROLE IF EXISTS \"{tenant}\"").as_str())
                .await
                .map_err(DatabaseError::db("dropping the tenant's role"))?;
        }
        DatabaseUrl::Sqlite(path) => {
            let file = DatabaseUrl::sqlite_file(&path, tenant);
            for suffix in ["", "-wal", "-shm"] {
                let mut name = file.clone().into_os_string();
                name.push(suffix);
                match std::fs::remove_file(&name) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => {
                        return Err(DatabaseError::UnsupportedUrl {
                            url: redact(url),
                            reason: format!("cannot remove {}: {error}", file.display()),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether PostgreSQL role `username` exists (never on SQLite).
pub async fn role_exists(url: &str, username: &TenantId) -> Result<bool, DatabaseError> {
    let DatabaseUrl::Postgres(pg) = DatabaseUrl::parse(url)? else {
        return Ok(false);
    };
    let mut connection = admin_connection(&pg).await?;
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(username.as_str())
        .fetch_optional(&mut connection)
        .await
        .map_err(DatabaseError::db("looking up a role"))?;
    Ok(found.is_some())
}

/// Drops PostgreSQL login role `username` if it exists (nothing to do on
/// SQLite). Drop or reassign what it owns first.
pub async fn drop_role(url: &str, username: &TenantId) -> Result<(), DatabaseError> {
    let DatabaseUrl::Postgres(pg) = DatabaseUrl::parse(url)? else {
        return Ok(());
    };
    let mut connection = admin_connection(&pg).await?;
    connection
        .execute(format!("DROP ROLE IF EXISTS \"{username}\"").as_str())
        .await
        .map_err(DatabaseError::db("dropping the tenant's role"))?;
    Ok(())
}

/// One connection outside the pools (schema and role management), given
/// up after [`ACQUIRE_TIMEOUT`] like a pooled one.
async fn admin_connection(pg: &str) -> Result<sqlx::AnyConnection, DatabaseError> {
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(pg)
        .map_err(DatabaseError::db("reading the database URL"))?
        .disable_statement_logging();
    tokio::time::timeout(ACQUIRE_TIMEOUT, options.connect())
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
        .map_err(DatabaseError::db("connecting"))
}

async fn create_schema(url: &str, tenant: &TenantId) -> Result<(), DatabaseError> {
    let mut connection = admin_connection(url).await?;
    // A tenant's own role may use its schema but not create schemas:
    // PostgreSQL checks that right even for IF NOT EXISTS, so look first.
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_namespace WHERE nspname = $1")
        .bind(tenant.as_str())
        .fetch_optional(&mut connection)
        .await
        .map_err(DatabaseError::db("looking up the tenant's schema"))?;
    if exists.is_some() {
        return Ok(());
    }
    connection
        .execute(format!("CREATE SCHEMA IF NOT EXISTS \"{tenant}\"").as_str())
        .await
        .map_err(DatabaseError::db("creating the tenant's schema"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_and_refuses_the_rest() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/a.db").ok(),
            Some(DatabaseUrl::Sqlite(PathBuf::from("/tmp/a.db")))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/a.db?mode=rwc").ok(),
            Some(DatabaseUrl::Sqlite(PathBuf::from("data/a.db")))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:////tmp/a.db").ok(),
            Some(DatabaseUrl::Sqlite(PathBuf::from("//tmp/a.db"))),
            "a fourth slash keeps the path absolute"
        );
        assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@h/db")
                .map(|u| u.dialect())
                .ok(),
            Some(Dialect::Postgres)
        );
    }

    #[test]
    fn each_tenant_has_its_own_sqlite_file() {
        let base = Path::new("/data/cloacina.db");
        assert_eq!(DatabaseUrl::sqlite_file(base, &TenantId::public()), base);
        let acme = TenantId::new("acme").expect("valid");
        assert_eq!(
            DatabaseUrl::sqlite_file(base, &acme),
            Path::new("/data/cloacina.acme.db")
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
