//! The PostgreSQL the tests share: `CLOACINA_TEST_POSTGRES_URL`, or the
//! local server. Unreachable, its tests are skipped with a message, except
//! under `CI=true`, where that is a failure.

/// The local server the test command starts when it is down.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The URL to test against, or None (after printing why) when the server
/// is unreachable outside CI.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("CLOACINA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    match on_own_runtime({
        let url = url.clone();
        async move { sqlx::PgPool::connect(&url).await.map(|_| ()) }
    }) {
        Ok(()) => Some(url),
        Err(error) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("PostgreSQL at {url} is unreachable under CI=true: {error}")
        }
        Err(error) => {
            eprintln!(
                "SKIPPED: PostgreSQL at {url} is unreachable ({error}); the PostgreSQL half of this test did not run"
            );
            None
        }
    }
}

/// A schema (tenant) name no other test uses.
pub fn unique_schema(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A new, empty database on the server at `url` (for a whole host of its
/// own, whose tenant `public` is the database's `public` schema): its name
/// and its URL.
pub fn fresh_database(url: &str, prefix: &str) -> (String, String) {
    let name = unique_schema(prefix);
    let statement = format!("CREATE DATABASE \"{name}\"");
    let admin = url.to_owned();
    on_own_runtime(async move {
        let pool = sqlx::PgPool::connect(&admin).await?;
        sqlx::query(&statement).execute(&pool).await?;
        pool.close().await;
        Ok::<_, sqlx::Error>(())
    })
    .unwrap_or_else(|error| panic!("cannot create database {name}: {error}"));
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    (name.clone(), format!("{base}/{name}"))
}

/// Drops a database [`fresh_database`] made, closing its connections
/// first; best effort.
pub fn drop_database(url: &str, name: &str) {
    let (url, statement) = (
        url.to_owned(),
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    );
    let _ = on_own_runtime(async move {
        let pool = sqlx::PgPool::connect(&url).await?;
        sqlx::query(&statement).execute(&pool).await?;
        pool.close().await;
        Ok::<_, sqlx::Error>(())
    });
}

/// Drops a test's schema, best effort.
pub fn drop_schema(url: &str, schema: &str) {
    let (url, statement) = (
        url.to_owned(),
        format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
    );
    let _ = on_own_runtime(async move {
        let pool = sqlx::PgPool::connect(&url).await?;
        sqlx::query(&statement).execute(&pool).await?;
        pool.close().await;
        Ok::<_, sqlx::Error>(())
    });
}

/// Runs `future` on a runtime of its own, on a thread of its own, so that
/// async tests may call these helpers too.
fn on_own_runtime<T: Send + 'static>(
    future: impl std::future::Future<Output = Result<T, sqlx::Error>> + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| error.to_string())?;
        runtime.block_on(future).map_err(|error| error.to_string())
    })
    .join()
    .map_err(|_| "the helper thread panicked".to_owned())?
}

/// A database made for one test ([`fresh_database`]), dropped when this
/// is, the test failed or not.
#[derive(Debug)]
pub struct FreshDatabase {
    admin: String,
    name: String,
    /// Where it is.
    pub url: String,
}

impl FreshDatabase {
    /// A new database on the server `admin` reaches, named from `prefix`.
    pub fn create(admin: &str, prefix: &str) -> FreshDatabase {
        let (name, url) = fresh_database(admin, prefix);
        FreshDatabase {
            admin: admin.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        drop_database(&self.admin, &self.name);
    }
}
