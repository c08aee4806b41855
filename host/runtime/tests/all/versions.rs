//! Replacing a workflow's version while it runs: new executions take the
//! new version at once, running ones finish on the version they started on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cloacina_contract::manifest::{Declaration, WorkflowDeclaration};
use cloacina_runtime::{ExecutionStatus, FunctionPlugin, PackageRef, RuntimeError};
use serde_json::json;

use crate::support::{TestDb, eventually, package, task};

on_both_databases! {
    a_new_version_takes_new_work_while_the_old_one_finishes_its_own => swap;
    a_workflow_name_belongs_to_one_package => ownership;
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

/// Package `mistakes` 0.3.0 declaring `job`, which package `test-package`
/// owns, is refused naming both, whatever its version; the owner's own new
/// version takes the name over; once the owner is gone, the name is free.
async fn ownership(db: TestDb) {
    let runner = db.runner().await;
    let owner = package("0.1.5");
    runner
        .register_package(
            owner.clone(),
            &declaration(),
            Arc::new(FunctionPlugin::new().task("step", |_, _| Ok(json!({"by": "owner"})))),
        )
        .await
        .expect("registers");
    let intruder = PackageRef {
        name: "mistakes".into(),
        version: semver::Version::new(0, 3, 0),
    };
    let refused = runner
        .register_package(
            intruder.clone(),
            &declaration(),
            Arc::new(FunctionPlugin::new().task("step", |_, _| Ok(json!({"by": "intruder"})))),
        )
        .await
        .expect_err("another package's workflow");
    assert!(
        matches!(refused, RuntimeError::Registration(_)),
        "{refused}"
    );
    let message = refused.to_string();
    assert!(
        message.contains("`job`")
            && message.contains("test-package 0.1.5")
            && message.contains("mistakes 0.3.0"),
        "{message}"
    );
    let ran = runner.execute("job", json!({})).await.expect("runs");
    assert_eq!(
        ran.final_context.expect("context")["by"],
        "owner",
        "the owner still runs it"
    );
    runner
        .register_package(
            package("0.2.0"),
            &declaration(),
            Arc::new(FunctionPlugin::new().task("step", |_, _| Ok(json!({"by": "owner 0.2"})))),
        )
        .await
        .expect("the owner's new version takes it over");
    // New executions take 0.2.0; one may still be pinned to 0.1.5.
    let latest = runner.execute("job", json!({})).await.expect("runs");
    assert_eq!(latest.final_context.expect("context")["by"], "owner 0.2");
    let pinned = runner
        .execute_version("job", &semver::Version::new(0, 1, 5), json!({}))
        .await
        .expect("starts");
    let pinned = runner.wait(pinned).await.expect("ends");
    assert_eq!(pinned.package_version, semver::Version::new(0, 1, 5));
    assert_eq!(pinned.final_context.expect("context")["by"], "owner");
    assert!(matches!(
        runner
            .execute_version("job", &semver::Version::new(9, 9, 9), json!({}))
            .await,
        Err(RuntimeError::UnknownWorkflow(_))
    ));
    runner.unregister_package(&owner, &declaration());
    runner.unregister_package(&package("0.2.0"), &declaration());
    // Retired but not yet forgotten (draining): the name is still held.
    assert!(
        runner
            .register_package(
                intruder.clone(),
                &declaration(),
                Arc::new(FunctionPlugin::new().task("step", |_, _| Ok(json!({})))),
            )
            .await
            .is_err(),
        "a draining owner still holds the name"
    );
    runner.forget_package(&owner, &declaration());
    runner.forget_package(&package("0.2.0"), &declaration());
    runner
        .register_package(
            intruder,
            &declaration(),
            Arc::new(FunctionPlugin::new().task("step", |_, _| Ok(json!({"by": "intruder"})))),
        )
        .await
        .expect("a free name may be taken");
    runner.shutdown().await;
}
