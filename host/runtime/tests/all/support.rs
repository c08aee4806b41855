//! Databases and workflows for the tests.

use std::sync::Arc;
use std::time::Duration;

use cloacina_contract::Identifier;
use cloacina_contract::manifest::{RetryPolicy, TaskDeclaration};
use cloacina_runtime::{FunctionPlugin, PackageRef, Runner, RunnerConfig, TenantId, Workflow};

/// One test's database: a fresh SQLite directory, or a fresh tenant
/// schema on PostgreSQL (dropped at the end).
pub struct TestDb {
    pub url: String,
    pub tenant: TenantId,
    pub postgres: bool,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        TestDb {
            url: format!("sqlite://{}", dir.path().join("runtime.db").display()),
            tenant: TenantId::public(),
            postgres: false,
            _dir: Some(dir),
        }
    }

    /// None (with a message) when PostgreSQL is unreachable outside CI.
    pub async fn postgres() -> Option<Self> {
        Some(TestDb {
            url: cloacina_tests::postgres_url()?,
            tenant: TenantId::new(unique_name("t")).expect("tenant"),
            postgres: true,
            _dir: None,
        })
    }

    pub fn config(&self) -> RunnerConfig {
        RunnerConfig {
            tenant: self.tenant.clone(),
            shutdown_grace: Duration::from_secs(5),
            ..RunnerConfig::default()
        }
    }

    pub async fn runner(&self) -> Runner {
        self.runner_with(self.config()).await
    }

    pub async fn runner_with(&self, config: RunnerConfig) -> Runner {
        Runner::with_config(&self.url, config)
            .await
            .expect("runner starts")
    }

    /// A second tenant on the same database.
    pub fn other_tenant(&self, name: &str) -> TenantId {
        TenantId::new(if self.postgres {
            unique_name(name)
        } else {
            name.to_owned()
        })
        .expect("tenant")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.postgres {
            cloacina_tests::drop_schema(&self.url, self.tenant.as_str());
        }
    }
}

pub fn unique_name(prefix: &str) -> String {
    cloacina_tests::unique_schema(prefix)
}

/// Runs the scenario `$body(TestDb)` on SQLite and on PostgreSQL.
macro_rules! on_both_databases {
    ($($name:ident => $body:ident;)+) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$body($crate::support::TestDb::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(db) = $crate::support::TestDb::postgres().await {
                    super::$body(db).await;
                }
            }
        }
    )+};
}

pub fn package(version: &str) -> PackageRef {
    PackageRef {
        name: "test-package".into(),
        version: semver::Version::parse(version).expect("version"),
    }
}

pub fn task(id: &str, dependencies: &[&str]) -> TaskDeclaration {
    TaskDeclaration {
        id: Identifier::new(id).expect("id"),
        description: String::new(),
        dependencies: dependencies
            .iter()
            .map(|d| Identifier::new(*d).expect("id"))
            .collect(),
        retry: RetryPolicy::default(),
        timeout_ms: None,
        invokes: None,
    }
}

pub fn workflow(name: &str, tasks: Vec<TaskDeclaration>, plugin: FunctionPlugin) -> Workflow {
    Workflow::new(name, package("1.0.0"), tasks, Arc::new(plugin)).expect("valid workflow")
}

/// Waits for `check` to hold, up to `limit`.
pub async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check().await
}
