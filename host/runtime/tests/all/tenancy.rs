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

on_both_databases! {
    executions_are_listed_newest_first_by_workflow_and_status => listed_and_counted;
}

/// Every combination of the list's filters, its order, its pages and the
/// matching count.
async fn listed_and_counted(db: TestDb) {
    let runner = db.runner().await;
    for name in ["passes", "fails"] {
        let fails = name == "fails";
        let plugin = FunctionPlugin::new().task("work", move |_, _| {
            if fails {
                Err(cloacina_loader::TaskFailure::Fatal("no".into()))
            } else {
                Ok(json!({}))
            }
        });
        runner
            .register_workflow(workflow(name, vec![task("work", &[])], plugin))
            .expect("registered");
    }
    let mut started = Vec::new();
    for name in ["passes", "fails", "passes", "passes", "fails"] {
        let ended = runner.execute(name, json!({})).await.expect("runs");
        started.push((name, ended.status, ended.execution_id));
        // Distinct creation times, so newest first is one order.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let newest_first = |filter: &dyn Fn(&str, ExecutionStatus) -> bool| {
        started
            .iter()
            .rev()
            .filter(|(name, status, _)| filter(name, *status))
            .map(|(_, _, id)| *id)
            .collect::<Vec<_>>()
    };
    let cases: [(Option<&str>, Option<ExecutionStatus>); 4] = [
        (None, None),
        (Some("passes"), None),
        (None, Some(ExecutionStatus::Failed)),
        (Some("fails"), Some(ExecutionStatus::Completed)),
    ];
    for (workflow_filter, status_filter) in cases {
        let expected = newest_first(&|name, status| {
            workflow_filter.is_none_or(|w| w == name) && status_filter.is_none_or(|s| s == status)
        });
        let listed: Vec<_> = runner
            .executions(workflow_filter, status_filter, 100, 0)
            .await
            .expect("lists")
            .into_iter()
            .map(|e| e.execution_id)
            .collect();
        assert_eq!(listed, expected, "{workflow_filter:?} {status_filter:?}");
        let counted = runner
            .count_executions(workflow_filter, status_filter)
            .await
            .expect("counts");
        assert_eq!(counted, expected.len() as i64);
    }
    let second_page: Vec<_> = runner
        .executions(Some("passes"), None, 2, 1)
        .await
        .expect("lists")
        .into_iter()
        .map(|e| e.execution_id)
        .collect();
    assert_eq!(second_page, newest_first(&|name, _| name == "passes")[1..3]);
    runner.shutdown().await;
}
