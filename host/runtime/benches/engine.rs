//! Engine figures on embedded SQLite and on PostgreSQL, side by side:
//!
//!   cargo bench -p cloacina-runtime --bench engine
//!
//! - the database's raw commit rate (one small durable transaction after
//!   another, one client): the physical limit for a state change;
//! - throughput: 1,000 executions of a 5-task no-op DAG (a -> b, c, d -> e);
//! - latency: execute -> completed for a 10-task chain, p50 / p99;
//! - a 1 -> 1000 -> 1 fan-out;
//! - PostgreSQL, one host vs two hosts on one schema (two runners in this
//!   process, sharing its two cores): 10-task no-op chains started
//!   together, tasks/s. The point is what coordination costs.
//!
//! PostgreSQL comes from `CLOACINA_TEST_POSTGRES_URL` (default the local
//! server); it is skipped with a message when unreachable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloacina_bench_record::record;
use cloacina_contract::Identifier;
use cloacina_contract::manifest::{RetryPolicy, TaskDeclaration};
use cloacina_runtime::{
    ExecutionStatus, FunctionPlugin, PackageRef, Runner, RunnerConfig, TenantId, Workflow,
};
use serde_json::json;

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
/// This bench's name in `docs/performance/records.jsonl`.
const BENCH: &str = "engine";

fn task(id: &str, deps: &[String]) -> TaskDeclaration {
    TaskDeclaration {
        id: Identifier::new(id).expect("id"),
        description: String::new(),
        dependencies: deps
            .iter()
            .map(|d| Identifier::new(d.as_str()).expect("id"))
            .collect(),
        retry: RetryPolicy::default(),
        timeout_ms: None,
        invokes: None,
    }
}

fn noop_workflow(name: &str, tasks: Vec<TaskDeclaration>) -> Workflow {
    let mut plugin = FunctionPlugin::new();
    for t in &tasks {
        plugin = plugin.task(t.id.as_str(), |_, _| Ok(json!({})));
    }
    let package = PackageRef {
        name: "bench".into(),
        version: semver::Version::new(1, 0, 0),
    };
    Workflow::new(name, package, tasks, Arc::new(plugin)).expect("workflow")
}

fn dag5() -> Workflow {
    let a = vec!["a".to_owned()];
    let mid = vec!["b".to_owned(), "c".to_owned(), "d".to_owned()];
    noop_workflow(
        "dag5",
        vec![
            task("a", &[]),
            task("b", &a),
            task("c", &a),
            task("d", &a),
            task("e", &mid),
        ],
    )
}

fn chain10() -> Workflow {
    let tasks = (0..10)
        .map(|i| {
            let deps = if i == 0 {
                vec![]
            } else {
                vec![format!("t{}", i - 1)]
            };
            task(&format!("t{i}"), &deps)
        })
        .collect();
    noop_workflow("chain10", tasks)
}

fn fan_out() -> Workflow {
    let mut tasks = vec![task("root", &[])];
    let root = vec!["root".to_owned()];
    let leaves: Vec<String> = (0..1000).map(|i| format!("leaf{i}")).collect();
    tasks.extend(leaves.iter().map(|leaf| task(leaf, &root)));
    tasks.push(task("gather", &leaves));
    noop_workflow("fanout", tasks)
}

async fn raw_commits(runner: &Runner, count: usize) -> f64 {
    let pool = runner.database().pool();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_commits (id BIGINT PRIMARY KEY, at BIGINT NOT NULL)",
    )
    .execute(pool)
    .await
    .expect("table");
    sqlx::query("DELETE FROM bench_commits")
        .execute(pool)
        .await
        .expect("clear");
    let started = Instant::now();
    for i in 0..count {
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query("INSERT INTO bench_commits (id, at) VALUES ($1, $2)")
            .bind(i as i64)
            .bind(i as i64)
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn bench(label: &str, url: &str, tenant: TenantId) {
    let config = RunnerConfig {
        tenant,
        max_concurrent_tasks: 64,
        ..RunnerConfig::default()
    };
    let runner = Runner::with_config(url, config).await.expect("runner");
    for workflow in [dag5(), chain10(), fan_out()] {
        runner.register_workflow(workflow).expect("registered");
    }

    let commits = raw_commits(&runner, 2_000).await;
    let sqlite = runner.database().dialect() == cloacina_runtime::Dialect::Sqlite;
    // The figures' prefix in the records.
    let db = if sqlite { "sqlite" } else { "postgres" };
    if sqlite {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(runner.database().pool())
            .await
            .expect("pragma");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(runner.database().pool())
            .await
            .expect("pragma");
        println!("  (journal_mode={mode}, synchronous={sync})");
    }

    // Warm up, then throughput.
    for _ in 0..20 {
        runner.execute("dag5", json!({})).await.expect("runs");
    }
    let count = 1_000;
    let (transactions_before, commands_before) =
        (runner.stats().transactions(), runner.stats().commands());
    let started = Instant::now();
    // 1,000 callers at once, as a server's clients would be: each starts
    // its execution and waits for it.
    let callers: Vec<_> = (0..count)
        .map(|_| {
            let runner = runner.clone();
            tokio::spawn(async move { runner.execute("dag5", json!({})).await })
        })
        .collect();
    for caller in callers {
        let result = caller.await.expect("joined").expect("runs");
        assert_eq!(result.status, ExecutionStatus::Completed);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let workflows_per_s = count as f64 / elapsed;
    let transactions = (runner.stats().transactions() - transactions_before) as f64;
    let commands = (runner.stats().commands() - commands_before) as f64;

    let mut latencies = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let result = runner.execute("chain10", json!({})).await.expect("runs");
        latencies.push(started.elapsed());
        assert_eq!(result.status, ExecutionStatus::Completed);
    }
    latencies.sort();

    let mut fan = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let result = runner.execute("fanout", json!({})).await.expect("runs");
        fan.push(started.elapsed());
        assert_eq!(result.status, ExecutionStatus::Completed);
    }
    fan.sort();
    let p50_ms = percentile(&latencies, 0.5).as_secs_f64() * 1e3;
    let p99_ms = percentile(&latencies, 0.99).as_secs_f64() * 1e3;
    let fan_tasks_per_s = 1002.0 / fan[1].as_secs_f64();
    let transactions_per_s = transactions / elapsed;
    let commands_per_transaction = commands / transactions.max(1.0);

    println!("\n{label}");
    record(
        BENCH,
        &format!("{db}.raw_commits_per_s"),
        commits,
        "commits/s",
    );
    println!("  raw commit rate (1 client)        {commits:>10.0} commits/s");
    record(
        BENCH,
        &format!("{db}.dag5_workflows_per_s"),
        workflows_per_s,
        "workflows/s",
    );
    record(
        BENCH,
        &format!("{db}.dag5_tasks_per_s"),
        workflows_per_s * 5.0,
        "tasks/s",
    );
    println!(
        "  5-task DAG x {count}                {workflows_per_s:>10.0} workflows/s  {:>8.0} tasks/s  ({:.2} s)",
        workflows_per_s * 5.0,
        elapsed
    );
    record(BENCH, &format!("{db}.chain10_p50_ms"), p50_ms, "ms");
    record(BENCH, &format!("{db}.chain10_p99_ms"), p99_ms, "ms");
    println!(
        "  10-task chain execute->completed   p50 {:>6.2} ms   p99 {:>6.2} ms   ({:.2} ms per step at p50)",
        p50_ms,
        p99_ms,
        p50_ms / 10.0
    );
    record(
        BENCH,
        &format!("{db}.fanout1000_median_ms"),
        fan[1].as_secs_f64() * 1e3,
        "ms",
    );
    record(
        BENCH,
        &format!("{db}.fanout1000_tasks_per_s"),
        fan_tasks_per_s,
        "tasks/s",
    );
    println!(
        "  1 -> 1000 -> 1 fan-out             best {:>6.0} ms   median {:>6.0} ms   ({:.0} tasks/s)",
        fan[0].as_secs_f64() * 1e3,
        fan[1].as_secs_f64() * 1e3,
        fan_tasks_per_s
    );
    record(
        BENCH,
        &format!("{db}.writer_transactions_per_s"),
        transactions_per_s,
        "transactions/s",
    );
    record(
        BENCH,
        &format!("{db}.writer_commands_per_transaction"),
        commands_per_transaction,
        "commands/transaction",
    );
    println!(
        "  engine during the DAG run            {:>10.0} transactions/s ({:.0}% of the raw rate), {:.1} commands per transaction",
        transactions_per_s,
        100.0 * transactions_per_s / commits,
        commands_per_transaction
    );
    runner.shutdown().await;
}

/// `count` 10-task chains started together, spread over `hosts` runners
/// on one schema; tasks/s from the first start to the last completion.
async fn chains_on_hosts(url: &str, tenant: &TenantId, hosts: usize, count: usize) -> f64 {
    let mut runners = Vec::new();
    for _ in 0..hosts {
        let runner = Runner::with_config(
            url,
            RunnerConfig {
                tenant: tenant.clone(),
                ..RunnerConfig::default()
            },
        )
        .await
        .expect("runner");
        runner.register_workflow(chain10()).expect("registered");
        runners.push(runner);
    }
    for runner in &runners {
        runner.execute("chain10", json!({})).await.expect("warm-up");
    }
    let started = Instant::now();
    let callers: Vec<_> = (0..count)
        .map(|i| {
            let runner = runners[i % hosts].clone();
            tokio::spawn(async move { runner.execute("chain10", json!({})).await })
        })
        .collect();
    for caller in callers {
        let result = caller.await.expect("joined").expect("runs");
        assert_eq!(result.status, ExecutionStatus::Completed);
    }
    let tasks_per_s = (count * 10) as f64 / started.elapsed().as_secs_f64();
    for runner in runners {
        runner.shutdown().await;
    }
    tasks_per_s
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        bench(
            "SQLite (embedded, WAL, synchronous=NORMAL)",
            &sqlite,
            TenantId::public(),
        )
        .await;

        let url =
            std::env::var("CLOACINA_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
        let tenant = TenantId::new(format!("bench_{}", std::process::id())).expect("tenant");
        match sqlx::PgPool::connect(&url).await {
            Ok(pool) => {
                bench("PostgreSQL (local, one host)", &url, tenant.clone()).await;
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{tenant}\" CASCADE"))
                    .execute(&pool)
                    .await;
                println!("\nPostgreSQL, 10-task chains started together (600 chains)");
                for hosts in [1usize, 2] {
                    let tenant = TenantId::new(format!("bench_h{hosts}_{}", std::process::id()))
                        .expect("tenant");
                    let tasks_per_s = chains_on_hosts(&url, &tenant, hosts, 600).await;
                    record(
                        BENCH,
                        &format!("postgres.hosts{hosts}.chain10_tasks_per_s"),
                        tasks_per_s,
                        "tasks/s",
                    );
                    println!(
                        "  {hosts} host(s)                          {tasks_per_s:>10.0} tasks/s"
                    );
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{tenant}\" CASCADE"))
                        .execute(&pool)
                        .await;
                }
            }
            Err(error) => println!("\nPostgreSQL: SKIPPED ({url} unreachable: {error})"),
        }
    });
}
