//! Tenants: their own database (file or schema), workflows and executions.

use cloacina_runtime::{ExecutionStatus, FunctionPlugin, RunnerConfig, RuntimeError};
use serde_json::json;

use crate::support::{TestDb, task, workflow};

on_both_databases! {
    two_tenants_run_workflows_of_the_same_name_apart => two_tenants;
}

async fn two_tenants(db: TestDb) {
    let acme_tenant = db.other_tenant("acme");
    let first = db.runner().await;
    let acme = db
        .runner_with(RunnerConfig {
            tenant: acme_tenant.clone(),
            ..db.config()
        })
        .await;
    assert_eq!(acme.tenant(), &acme_tenant);
    for (runner, who) in [(&first, "first"), (&acme, "acme")] {
        let plugin = FunctionPlugin::new().task("hello", move |_, _| Ok(json!({"tenant": who})));
        runner
            .register_workflow(workflow("hello", vec![task("hello", &[])], plugin))
            .expect("registered");
    }
    let mine = first.execute("hello", json!({})).await.expect("runs");
    let theirs = acme.execute("hello", json!({})).await.expect("runs");
    assert_eq!(
        mine.final_context.as_ref().expect("context")["tenant"],
        "first"
    );
    assert_eq!(
        theirs.final_context.as_ref().expect("context")["tenant"],
        "acme"
    );
    assert_eq!(theirs.status, ExecutionStatus::Completed);

    let listed = |runner: &cloacina_runtime::Runner| {
        let runner = runner.clone();
        async move {
            runner
                .executions(None, None, 100, 0)
                .await
                .expect("lists")
                .into_iter()
                .map(|e| e.execution_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(&first).await, vec![mine.execution_id]);
    assert_eq!(listed(&acme).await, vec![theirs.execution_id]);
    assert!(matches!(
        first.status(theirs.execution_id).await,
        Err(RuntimeError::UnknownExecution(_))
    ));
    first.shutdown().await;
    acme.shutdown().await;
    if db.postgres {
        cloacina_tests::drop_schema(&db.url, acme_tenant.as_str());
    }
}
