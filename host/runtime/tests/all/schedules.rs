//! Cron schedules and poll triggers from a package's declaration.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cloacina_contract::Identifier;
use cloacina_contract::manifest::{
    CatchUp, CronScheduleDeclaration, Declaration, TriggerDeclaration, WorkflowDeclaration,
};
use cloacina_runtime::{ExecutionResult, FunctionPlugin, RegistrationError, Runner, RuntimeError};
use serde_json::{Value, json};

use crate::support::{TestDb, eventually, package, task};

on_both_databases! {
    a_cron_schedule_starts_its_workflow => cron_fires;
    missed_cron_firings_are_caught_up_as_the_policy_says => cron_catch_up;
    a_poll_trigger_fires_once_per_key => trigger_dedup;
    bad_schedules_are_refused_at_registration => bad_schedules;
}

fn id(text: &str) -> Identifier {
    Identifier::new(text).expect("id")
}

fn declaration(
    crons: Vec<CronScheduleDeclaration>,
    triggers: Vec<TriggerDeclaration>,
    extra_tasks: &[&str],
) -> Declaration {
    let mut tasks = vec![task("tick", &[])];
    tasks.extend(extra_tasks.iter().map(|name| task(name, &[])));
    Declaration {
        tasks,
        workflows: vec![WorkflowDeclaration {
            name: id("ticker"),
            description: String::new(),
            tasks: vec![id("tick")],
        }],
        cron_schedules: crons,
        triggers,
        computation_graphs: Vec::new(),
        invoked_graphs: Vec::new(),
    }
}

fn cron(expression: &str, catch_up: CatchUp) -> CronScheduleDeclaration {
    CronScheduleDeclaration {
        name: id("every"),
        workflow: id("ticker"),
        expression: expression.into(),
        timezone: "UTC".into(),
        catch_up,
    }
}

fn tick_plugin() -> FunctionPlugin {
    FunctionPlugin::new().task("tick", |ctx, _| {
        Ok(json!({"ticked_for": ctx.get("scheduled_at").cloned().unwrap_or(Value::Null)}))
    })
}

async fn ticker_runs(runner: &Runner) -> Vec<ExecutionResult> {
    runner
        .executions(Some("ticker"), None, 1_000, 0)
        .await
        .expect("lists")
}

async fn cron_fires(db: TestDb) {
    let first = db.runner().await;
    let declaration = declaration(vec![cron("* * * * * *", CatchUp::Skip)], vec![], &[]);
    first
        .register_package(package("1.0.0"), &declaration, Arc::new(tick_plugin()))
        .await
        .expect("registered");
    // On PostgreSQL a second host shares the schedule: it must not double-fire.
    let second = if db.postgres {
        let second = db.runner().await;
        second
            .register_package(package("1.0.0"), &declaration, Arc::new(tick_plugin()))
            .await
            .expect("registered");
        Some(second)
    } else {
        None
    };
    assert!(
        eventually(Duration::from_secs(10), async || ticker_runs(&first)
            .await
            .len()
            >= 3)
        .await,
        "fires every second"
    );
    first.shutdown().await;
    if let Some(second) = &second {
        second.shutdown().await;
    }
    let check = db.runner().await;
    let runs = ticker_runs(&check).await;
    let mut fired_for: Vec<String> = Vec::new();
    for run in &runs {
        let done = check.wait(run.execution_id).await.expect("ends");
        let context = done.final_context.expect("completed");
        assert_eq!(context["schedule"], "every");
        fired_for.push(context["scheduled_at"].as_str().expect("time").to_owned());
    }
    let total = fired_for.len();
    fired_for.sort();
    fired_for.dedup();
    assert_eq!(fired_for.len(), total, "no occurrence fired twice");
    check.shutdown().await;
}

async fn cron_catch_up(db: TestDb) {
    for (catch_up, expected) in [
        (CatchUp::RunMissed { max_runs: 3 }, 3usize),
        (CatchUp::Skip, 0),
    ] {
        let runner = db.runner().await;
        // A host that was down for ten minutes: the schedule last fired then.
        let declaration = declaration(vec![cron("0 * * * * *", catch_up)], vec![], &[]);
        let now = chrono::Utc::now().timestamp_millis();
        sqlx::query("DELETE FROM cron_schedules")
            .execute(runner.database().pool())
            .await
            .expect("reset");
        sqlx::query("INSERT INTO cron_schedules (name, workflow_name, last_fire_at, updated_at) VALUES ('every', 'ticker', $1, $1)")
            .bind(now - 10 * 60_000 - 30_000)
            .execute(runner.database().pool())
            .await
            .expect("backdate");
        let before = ticker_runs(&runner).await.len();
        runner
            .register_package(package("1.0.0"), &declaration, Arc::new(tick_plugin()))
            .await
            .expect("registered");
        // A firing on time (within 5 s of its minute) also runs under Skip.
        let second_of_minute = (now / 1000) % 60;
        let on_time = usize::from(second_of_minute <= 4);
        let expected = if expected == 0 { on_time } else { expected };
        assert!(
            eventually(Duration::from_secs(5), async || ticker_runs(&runner)
                .await
                .len()
                - before
                >= expected)
            .await,
            "{catch_up:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            ticker_runs(&runner).await.len() - before,
            expected,
            "{catch_up:?} ran just what it should"
        );
        runner.shutdown().await;
    }
}

async fn trigger_dedup(db: TestDb) {
    let runner = db.runner().await;
    let polls = Arc::new(AtomicU32::new(0));
    let counter = polls.clone();
    let plugin = tick_plugin().task("inbox", move |_, _| {
        let poll = counter.fetch_add(1, Ordering::SeqCst);
        Ok(match poll {
            0 => Value::Null,
            1..=4 => json!({"context": {"file": "a.csv"}, "key": "a.csv"}),
            5 => json!({"context": {"file": "b.csv"}, "key": "b.csv"}),
            _ => Value::Null,
        })
    });
    let trigger = TriggerDeclaration {
        name: id("inbox"),
        workflow: id("ticker"),
        poll_interval_ms: 20,
        allow_concurrent: true,
    };
    let declaration = declaration(vec![], vec![trigger], &["inbox"]);
    runner
        .register_package(package("1.0.0"), &declaration, Arc::new(plugin))
        .await
        .expect("registered");
    assert!(
        eventually(Duration::from_secs(5), async || polls
            .load(Ordering::SeqCst)
            > 8)
        .await
    );
    let runs = ticker_runs(&runner).await;
    let mut files: Vec<String> = Vec::new();
    for run in runs {
        let done = runner.wait(run.execution_id).await.expect("ends");
        files.push(
            done.final_context.expect("context")["file"]
                .as_str()
                .expect("file")
                .to_owned(),
        );
    }
    files.sort();
    assert_eq!(files, ["a.csv", "b.csv"], "each key fired once");
    runner.shutdown().await;
}

async fn bad_schedules(db: TestDb) {
    let runner = db.runner().await;
    let bad_cron = declaration(vec![cron("not a cron", CatchUp::Skip)], vec![], &[]);
    let refused = runner
        .register_package(package("1.0.0"), &bad_cron, Arc::new(tick_plugin()))
        .await;
    assert!(
        matches!(
            refused,
            Err(RuntimeError::Registration(
                RegistrationError::InvalidCron { .. }
            ))
        ),
        "{refused:?}"
    );
    let no_poll_task = TriggerDeclaration {
        name: id("ghost"),
        workflow: id("ticker"),
        poll_interval_ms: 100,
        allow_concurrent: false,
    };
    let refused = runner
        .register_package(
            package("1.0.0"),
            &declaration(vec![], vec![no_poll_task], &[]),
            Arc::new(tick_plugin()),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(RuntimeError::Registration(
                RegistrationError::InvalidTrigger { .. }
            ))
        ),
        "{refused:?}"
    );
    assert!(
        runner.workflows().is_empty(),
        "nothing of a refused package is registered"
    );
    runner.shutdown().await;
}
