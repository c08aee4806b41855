//! A database per test, and a small graph package made of closures.

use std::sync::Arc;
use std::time::Duration;

use cloacina_contract::Identifier;
use cloacina_contract::manifest::{
    AccumulatorDeclaration, AccumulatorKind, ComputationGraphDeclaration, Declaration,
    GraphNodeDeclaration, InputStrategy, ReactionMode, ReactorDeclaration, RetryPolicy,
    SubscriptionDeclaration, TaskDeclaration, WorkflowDeclaration,
};
use cloacina_graphs::{GraphConfig, GraphRuntime, Supervision};
use cloacina_runtime::{FunctionPlugin, PackageRef, Runner, RunnerConfig, TenantId, Workflow};

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
            url: format!("sqlite://{}", dir.path().join("graphs.db").display()),
            tenant: TenantId::public(),
            postgres: false,
            _dir: Some(dir),
        }
    }

    pub fn postgres() -> Option<Self> {
        Some(TestDb {
            url: cloacina_tests::postgres_url()?,
            tenant: TenantId::new(cloacina_tests::unique_schema("g")).expect("tenant"),
            postgres: true,
            _dir: None,
        })
    }

    pub async fn runner(&self) -> Runner {
        Runner::with_config(
            &self.url,
            RunnerConfig {
                tenant: self.tenant.clone(),
                shutdown_grace: Duration::from_secs(5),
                ..RunnerConfig::default()
            },
        )
        .await
        .expect("runner starts")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.postgres {
            cloacina_tests::drop_schema(&self.url, self.tenant.as_str());
        }
    }
}

macro_rules! on_both_databases {
    ($($name:ident => $body:ident;)+) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$body($crate::support::TestDb::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(db) = $crate::support::TestDb::postgres() {
                    super::$body(db).await;
                }
            }
        }
    )+};
}

pub fn id(text: &str) -> Identifier {
    Identifier::new(text).expect("identifier")
}

pub fn task(name: &str) -> TaskDeclaration {
    TaskDeclaration {
        id: id(name),
        description: String::new(),
        dependencies: Vec::new(),
        retry: RetryPolicy::default(),
        timeout_ms: None,
        invokes: None,
    }
}

pub fn node(name: &str, inputs: &[&str]) -> GraphNodeDeclaration {
    GraphNodeDeclaration {
        id: id(name),
        inputs: inputs.iter().map(|i| id(i)).collect(),
    }
}

pub fn graph(
    name: &str,
    mode: ReactionMode,
    strategy: InputStrategy,
    accumulators: Vec<AccumulatorDeclaration>,
    nodes: Vec<GraphNodeDeclaration>,
) -> ComputationGraphDeclaration {
    ComputationGraphDeclaration {
        name: id(name),
        description: String::new(),
        accumulators,
        reactor: ReactorDeclaration {
            reaction_mode: mode,
            input_strategy: strategy,
            sources: Vec::new(),
        },
        nodes,
        subscriptions: Vec::new(),
    }
}

pub fn passthrough(name: &str) -> AccumulatorDeclaration {
    AccumulatorDeclaration::new(id(name), AccumulatorKind::Passthrough)
}

pub fn subscribe(graph: &mut ComputationGraphDeclaration, workflow: &str) {
    graph.subscriptions.push(SubscriptionDeclaration {
        workflow: id(workflow),
    });
}

pub fn package(version: &str) -> PackageRef {
    PackageRef {
        name: "graphs-test".into(),
        version: semver::Version::parse(version).expect("version"),
    }
}

/// A package: `graphs`, one task per node (and per workflow task), run by
/// `plugin`; each workflow has the single task named after it + `_task`.
pub fn declaration(
    graphs: Vec<ComputationGraphDeclaration>,
    extra_tasks: &[&str],
    workflows: &[&str],
) -> Declaration {
    let mut tasks: Vec<TaskDeclaration> = graphs
        .iter()
        .flat_map(|g| g.nodes.iter().map(|n| task(n.id.as_str())))
        .collect();
    tasks.extend(extra_tasks.iter().map(|t| task(t)));
    let mut declared = Vec::new();
    for workflow in workflows {
        let task_name = format!("{workflow}_task");
        tasks.push(task(&task_name));
        declared.push(WorkflowDeclaration {
            name: id(workflow),
            description: String::new(),
            tasks: vec![id(&task_name)],
        });
    }
    let declaration = Declaration {
        tasks,
        workflows: declared,
        computation_graphs: graphs,
        ..Declaration::default()
    };
    declaration.validate().expect("a valid declaration");
    declaration
}

pub fn quick_supervision() -> Supervision {
    Supervision {
        budget: 3,
        window: Duration::from_secs(60),
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        crashed_retry: Duration::from_secs(60),
    }
}

/// Starts the graph runtime on `runner` and registers the package.
pub async fn start(
    runner: &Runner,
    config: GraphConfig,
    declaration: &Declaration,
    plugin: Arc<FunctionPlugin>,
) -> GraphRuntime {
    for workflow in &declaration.workflows {
        let built = Workflow::from_declaration(
            declaration,
            workflow.name.as_str(),
            package("1.0.0"),
            plugin.clone(),
        )
        .expect("workflow");
        runner.register_workflow(built).expect("registered");
    }
    let graphs = GraphRuntime::start(runner, config)
        .await
        .expect("graph runtime");
    graphs
        .register(&package("1.0.0"), declaration, plugin)
        .await
        .expect("graphs registered");
    graphs
}

/// Polls `check` every 5 ms for up to 10 s.
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
