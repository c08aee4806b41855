//! `cloacinactl run`: verify, load and run one workflow of a package on an
//! embedded runtime, printing its events as they happen.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use cloacina_contract::ArtifactKind;
use cloacina_contract::manifest::ComputationGraphDeclaration;
use cloacina_loader::isolated::IsolatedPlugin;
use cloacina_loader::native::NativePlugin;
use cloacina_loader::wasm::{WasmRuntime, WasmSettings};
use cloacina_loader::{Plugin, check_declaration};
use cloacina_package::VerifiedPackage;
use cloacina_runtime::{
    Event, EventType, ExecutionId, ExecutionResult, ExecutionStatus, PackageRef, Runner,
    RunnerConfig, RuntimeError, TenantId, parse_context,
};
use serde::Serialize;

use super::package::read_verified;
use crate::cli::{Prefer, RunArgs};
use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output::{self, out};

/// The target triple this binary was built for.
const HOST_TARGET: &str = env!("CLOACINA_HOST_TARGET");

pub fn run(args: RunArgs, json: bool) -> Result<(), Failure> {
    let verified = read_verified(&args.file, &args.trust, args.allow_unsigned)?;
    let workflow = choose_workflow(&verified, args.workflow.as_deref())?;
    let context = parse_context(&args.context)
        .context("--context")
        .classify(FailureKind::Usage)?;
    let resume = args
        .resume
        .as_deref()
        .map(|id| {
            id.parse::<ExecutionId>()
                .map_err(|error| anyhow!("--resume {id}: not an execution id ({error})"))
                .classify(FailureKind::Usage)
        })
        .transpose()?;

    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let (plugin, kind) = load(
        &verified,
        args.prefer,
        args.isolate,
        scratch.path().to_owned(),
    )?;
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", scratch.path().join("run.db").display()),
    };
    let tenant = TenantId::new(args.tenant.as_str())
        .context("--tenant")
        .classify(FailureKind::Usage)?;
    let config = RunnerConfig {
        tenant,
        max_concurrent_tasks: args.max_concurrent_tasks.max(1),
        lease_ttl: std::time::Duration::from_secs(args.lease_ttl.max(1)),
        ..RunnerConfig::default()
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let plan = RunPlan {
        workflow,
        context,
        resume,
        json,
        logs: !args.no_logs,
        artifact: kind,
    };
    let outcome = tokio.block_on(execute(&verified, plugin, &url, config, plan));
    // A native task that ignored its deadline still runs on a thread of
    // this process, and nothing can stop it there: exit anyway rather than
    // wait for it (dropping the runtime would).
    tokio.shutdown_timeout(std::time::Duration::from_millis(200));
    if cloacina_runtime::abandoned_calls() > 0 {
        eprintln!(
            "note: a task ignored its deadline and was left running; it cannot be stopped in this process. \
             Run with --isolate (a worker process that is killed), or have the task check ctx.is_cancelled()"
        );
    }
    outcome
}

fn choose_workflow(package: &VerifiedPackage, asked: Option<&str>) -> Result<String, Failure> {
    let workflows: Vec<&str> = package
        .manifest()
        .declaration()
        .workflows
        .iter()
        .map(|w| w.name.as_str())
        .collect();
    match asked {
        Some(name) if workflows.contains(&name) => Ok(name.to_owned()),
        Some(name) => Err(anyhow!(
            "the package has no workflow `{name}`; it has: {}",
            workflows.join(", ")
        ))
        .classify(FailureKind::Usage),
        None => match workflows.as_slice() {
            [only] => Ok((*only).to_owned()),
            [] if !package.manifest().declaration().computation_graphs.is_empty() => Err(anyhow!(
                "the package declares no workflow, only computation graphs; graphs run on a host: `cloacinactl server start`, then `cloacinactl package upload` (see `cloacinactl package inspect`)"
            ))
            .classify(FailureKind::Usage),
            [] => Err(anyhow!("the package declares no workflow")).classify(FailureKind::Usage),
            many => Err(anyhow!(
                "the package has several workflows; name one of: {}",
                many.join(", ")
            ))
            .classify(FailureKind::Usage),
        },
    }
}

/// Loads the preferred artifact and checks it declares what the manifest does.
fn load(
    package: &VerifiedPackage,
    prefer: Option<Prefer>,
    isolate: bool,
    scratch: PathBuf,
) -> Result<(Arc<dyn Plugin>, &'static str), Failure> {
    cloacina_contract::HOST_ABI_VERSION
        .accepts(package.manifest().abi_version())
        .context("the package's manifest asks for an ABI this host does not speak")
        .classify(FailureKind::Load)?;
    let artifacts = package.manifest().artifacts();
    let native = artifacts
        .iter()
        .find(|a| matches!(&a.kind, ArtifactKind::Native { target } if target == HOST_TARGET));
    let wasm = artifacts.iter().find(|a| a.kind == ArtifactKind::Wasm);
    let chosen = match (prefer, native, wasm) {
        (Some(Prefer::Wasm), _, Some(wasm)) | (None, None, Some(wasm)) => wasm,
        (Some(Prefer::Native) | None, Some(native), _)
        | (Some(Prefer::Wasm), Some(native), None) => native,
        (Some(Prefer::Native), None, Some(wasm)) => wasm,
        (_, None, None) => {
            return Err(anyhow!(
                "the package has no artifact this host can run (no native library for {HOST_TARGET}, no WebAssembly component)"
            ))
            .classify(FailureKind::Load);
        }
    };
    let (plugin, kind): (Arc<dyn Plugin>, &'static str) = match &chosen.kind {
        ArtifactKind::Native { .. } => {
            let root = package
                .extract_into(&scratch.join("packages"))
                .context("cannot extract the package")?;
            let library = root.join(chosen.path.as_str());
            if isolate {
                let worker = worker_binary()?;
                let plugin = IsolatedPlugin::load(&worker, &library)
                    .context("cannot load the native library in a worker process")
                    .classify(FailureKind::Load)?;
                (Arc::new(plugin), "native-isolated")
            } else {
                let plugin = NativePlugin::load(&library)
                    .context("cannot load the native library")
                    .classify(FailureKind::Load)?;
                (Arc::new(plugin), "native")
            }
        }
        ArtifactKind::Wasm => {
            let bytes = package
                .artifact_bytes(&chosen.path)
                .context("the verified package lacks its own artifact")?;
            let runtime = WasmRuntime::new(WasmSettings::default())
                .context("cannot start the WebAssembly engine")
                .classify(FailureKind::Load)?;
            let plugin = runtime
                .load(bytes, Some(&chosen.sha256.to_hex()))
                .context("cannot load the WebAssembly component")
                .classify(FailureKind::Load)?;
            (Arc::new(plugin), "wasm")
        }
    };
    check_declaration(package.manifest().declaration(), plugin.declaration())
        .context("the artifact does not declare what the manifest does")
        .classify(FailureKind::Load)?;
    Ok((plugin, kind))
}

/// The worker program, installed next to `cloacinactl`.
fn worker_binary() -> Result<PathBuf, Failure> {
    cloacina_defaults::worker_binary()
        .ok_or_else(|| anyhow!(
            "--isolate needs cloacina-plugin-worker next to cloacinactl (`cargo build -p cloacina-loader` builds it)"
        ))
        .classify(FailureKind::Usage)
}

#[derive(Serialize)]
struct RunReport<'a> {
    #[serde(flatten)]
    result: &'a ExecutionResult,
    duration_ms: Option<i64>,
    artifact: &'static str,
    events: &'a [Event],
}

/// What to run and how to show it.
struct RunPlan {
    workflow: String,
    context: serde_json::Value,
    resume: Option<ExecutionId>,
    json: bool,
    /// Print `task_log` events.
    logs: bool,
    artifact: &'static str,
}

async fn execute(
    package: &VerifiedPackage,
    plugin: Arc<dyn Plugin>,
    url: &str,
    config: RunnerConfig,
    plan: RunPlan,
) -> Result<(), Failure> {
    let runner = Runner::with_config(url, config)
        .await
        .context("cannot open the database")?;
    let outcome = drive(&runner, package, plugin, plan).await;
    runner.shutdown().await;
    outcome
}

async fn drive(
    runner: &Runner,
    package: &VerifiedPackage,
    plugin: Arc<dyn Plugin>,
    plan: RunPlan,
) -> Result<(), Failure> {
    let RunPlan {
        workflow,
        context,
        resume,
        json,
        logs,
        artifact: kind,
    } = plan;
    let workflow = workflow.as_str();
    let info = package.manifest().package();
    let package_ref = PackageRef {
        name: info.name.to_string(),
        version: info.version.clone(),
    };
    runner
        .register_package(package_ref, package.manifest().declaration(), plugin)
        .await
        .context("cannot register the package's workflows")
        .classify(FailureKind::Load)?;
    let id = match resume {
        Some(id) => id,
        None => runner
            .execute_async(workflow, context)
            .await
            .map_err(runtime_failure)?,
    };
    if !json {
        let signer = match package.signer() {
            Some(signer) => format!("signed by `{}`", signer.name),
            None => "unsigned".to_owned(),
        };
        let verb = if resume.is_some() {
            "resuming"
        } else {
            "running"
        };
        out!(
            "{verb} {workflow} from {} {} ({kind}, {signer}), execution {id}",
            info.name,
            info.version
        );
        show_graphs(&package.manifest().declaration().computation_graphs);
    }
    // Ctrl-C cancels the execution (its tasks see `is_cancelled`); a
    // second Ctrl-C exits at once, even while a task ignores the first.
    // The listener is registered here, before anything runs (a Ctrl-C
    // that came before a spawned task first polled would kill the process
    // instead), and stays for the rest of it: once SIGINT is handled here,
    // nothing else would act on it.
    let mut interrupts = Interrupts::register().map_err(|error| Failure {
        kind: FailureKind::Other,
        error: anyhow!("cannot listen for Ctrl-C: {error}"),
        hint: None,
    })?;
    tokio::spawn({
        let runner = runner.clone();
        async move {
            if !interrupts.next().await {
                return;
            }
            eprintln!("interrupted: cancelling execution {id} (Ctrl-C again to quit at once)");
            tokio::spawn(async move {
                if let Err(error) = runner.cancel(id).await {
                    eprintln!("cannot cancel: {error}");
                }
            });
            if interrupts.next().await {
                std::process::exit(i32::from(FailureKind::Interrupted.exit_code()));
            }
        }
    });
    // Every event as it commits, on this host or another.
    let mut events: Vec<Event> = Vec::new();
    let mut follower = runner.follow(id, 0);
    while let Some(event) = follower.next().await.map_err(runtime_failure)? {
        show(&event, json, logs, &mut events);
    }
    let result = runner.wait(id).await.map_err(runtime_failure)?;
    if json {
        output::json(&RunReport {
            result: &result,
            duration_ms: result.duration_ms(),
            artifact: kind,
            events: &events,
        });
    } else {
        report(&result);
    }
    match result.status {
        ExecutionStatus::Completed => Ok(()),
        status => Err(Failure {
            kind: FailureKind::WorkflowFailed,
            error: anyhow!(
                "workflow {} {status}: {}",
                result.workflow_name,
                result
                    .error
                    .clone()
                    .unwrap_or_else(|| "no reason recorded".into())
            ),
            hint: None,
        }),
    }
}

/// The package's computation graphs as declared: `run` does not run them.
fn show_graphs(graphs: &[ComputationGraphDeclaration]) {
    if graphs.is_empty() {
        return;
    }
    out!("computation graphs (not run here; graphs run on a host: cloacinactl server start):");
    for graph in graphs {
        let accumulators: Vec<String> = graph
            .accumulators
            .iter()
            .map(|a| format!("{} ({})", a.name, a.kind.as_str()))
            .collect();
        let subscriptions: Vec<&str> = graph
            .subscriptions
            .iter()
            .map(|s| s.workflow.as_str())
            .collect();
        let starts = if subscriptions.is_empty() {
            String::new()
        } else {
            format!("; starts {}", subscriptions.join(", "))
        };
        out!(
            "  {}: {}, {}; accumulators {}{starts}",
            graph.name,
            graph.reactor.reaction_mode.as_str(),
            graph.reactor.input_strategy.as_str(),
            accumulators.join(", ")
        );
        for node in &graph.nodes {
            let inputs: Vec<&str> = node.inputs.iter().map(|i| i.as_str()).collect();
            if inputs.is_empty() {
                out!("    {}", node.id);
            } else {
                out!("    {} <- {}", node.id, inputs.join(", "));
            }
        }
    }
}

fn show(event: &Event, json: bool, logs: bool, kept: &mut Vec<Event>) {
    if !json && event.event_type == EventType::TaskLog {
        if logs {
            out!("{}", task_log_line(event));
        }
    } else if !json {
        let task = event.task_name.as_deref().unwrap_or("");
        let detail = event.event_data.as_ref().map(describe).unwrap_or_default();
        let line = format!(
            "  #{:<3} {:<22} {task:<16} {detail}",
            event.sequence_num,
            event.event_type.as_str()
        );
        out!("{}", line.trim_end());
    }
    kept.push(event.clone());
}

/// A `task_log` event as a log line: `  [task#attempt] message`.
fn task_log_line(event: &Event) -> String {
    let data = event.event_data.as_ref();
    let attempt = data
        .and_then(|d| d.get("attempt"))
        .and_then(|a| a.as_i64())
        .unwrap_or(1);
    let message = data
        .and_then(|d| d.get("message"))
        .and_then(|m| m.as_str())
        .unwrap_or("");
    format!(
        "  {}",
        output::task_log_line(
            event.task_name.as_deref().unwrap_or("?"),
            &attempt.to_string(),
            message
        )
    )
}

/// The interesting part of an event's data, on one line.
fn describe(data: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    for key in ["attempt", "delay_ms", "error", "failed_task", "because"] {
        if let Some(value) = data.get(key) {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            parts.push(format!("{key}={text}"));
        }
    }
    parts.join(" ")
}

fn report(result: &ExecutionResult) {
    let took = result
        .duration_ms()
        .map(|ms| format!(" in {ms} ms"))
        .unwrap_or_default();
    out!("{}{took}", result.status);
    if let Some(context) = &result.final_context {
        let pretty = serde_json::to_string_pretty(context).unwrap_or_else(|_| context.to_string());
        out!("final context:\n{pretty}");
    }
}

fn runtime_failure(error: RuntimeError) -> Failure {
    let kind = match error {
        RuntimeError::ContextNotAnObject(_)
        | RuntimeError::ContextNotJson(_)
        | RuntimeError::UnknownWorkflow(_)
        | RuntimeError::UnknownExecution(_) => FailureKind::Usage,
        _ => FailureKind::Other,
    };
    Failure {
        kind,
        error: anyhow::Error::new(error),
        hint: None,
    }
}

/// Ctrl-C, listened for from the moment it is registered.
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn register() -> std::io::Result<Self> {
        Ok(Interrupts {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
        })
    }

    /// The next Ctrl-C; false if no more can come.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            self.signal.recv().await.is_some()
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}
