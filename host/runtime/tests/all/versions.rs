//! Replacing a workflow's version while it runs: new executions take the
//! new version at once, running ones finish on the version they started on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cloacina_contract::manifest::{Declaration, WorkflowDeclaration};
use cloacina_runtime::{ExecutionStatus, FunctionPlugin};
use serde_json::json;

use crate::support::{TestDb, eventually, package, task};

on_both_databases! {
    a_new_version_takes_new_work_while_the_old_one_finishes_its_own => swap;
}

fn declaration() -> Declaration {
    Declaration {
        tasks: vec![task("step", &[])],
        workflows: vec![WorkflowDeclaration {
            name: cloacina_contract::Identifier::new("job").expect("id"),
            description: String::new(),
            tasks: vec![cloacina_contract::Identifier::new("step").expect("id")],
        }],
        ..Declaration::default()
    }
}

async fn swap(db: TestDb) {
    let runner = db.runner().await;
    let gate = Arc::new(AtomicBool::new(false));
    let open = gate.clone();
    let v1 = FunctionPlugin::new().task("step", move |_, _| {
        while !open.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(json!({"ran_on": "v1"}))
    });
    let v1_package = package("1.0.0");
    runner
        .register_package(v1_package.clone(), &declaration(), Arc::new(v1))
        .await
        .expect("v1");
    let old = runner
        .execute_async("job", json!({}))
        .await
        .expect("starts on v1");
    assert!(
        eventually(Duration::from_secs(5), async || runner
            .running_on(&v1_package)
            .await
            .expect("lists")
            == [old])
        .await
    );

    // v2 arrives, v1 is retired: new work goes to v2 at once.
    let v2 = FunctionPlugin::new().task("step", |_, _| Ok(json!({"ran_on": "v2"})));
    runner
        .register_package(package("2.0.0"), &declaration(), Arc::new(v2))
        .await
        .expect("v2");
    assert_eq!(
        runner.unregister_package(&v1_package, &declaration()),
        ["job"]
    );
    let fresh = runner.execute("job", json!({})).await.expect("runs on v2");
    assert_eq!(fresh.final_context.expect("context")["ran_on"], "v2");
    assert_eq!(runner.workflows(), ["job"]);

    // The execution that started on v1 finishes there.
    gate.store(true, Ordering::SeqCst);
    let finished = runner.wait(old).await.expect("ends");
    assert_eq!(finished.status, ExecutionStatus::Completed);
    assert_eq!(finished.final_context.expect("context")["ran_on"], "v1");
    assert!(
        runner
            .running_on(&v1_package)
            .await
            .expect("lists")
            .is_empty()
    );
    runner.forget_package(&v1_package, &declaration());
    runner.shutdown().await;
}
