//! `cloacinactl server start`: a host in the foreground.

use std::time::Duration;

use anyhow::Context as _;
use cloacina_host::{Host, HostConfig};
use cloacina_runtime::RunnerConfig;

use crate::cli::{ServerArgs, ServerCommand};
use crate::failure::{Classify as _, Failure, FailureKind};

pub fn run(command: ServerCommand, _json: bool) -> Result<(), Failure> {
    match command {
        ServerCommand::Start(args) => start(args),
    }
}

fn start(args: ServerArgs) -> Result<(), Failure> {
    let url = args.host.url()?;
    let home = args.host.home_dir()?;
    let worker_binary = if args.in_process {
        None
    } else {
        Some(super::host::worker_binary().ok_or_else(|| Failure {
            kind: FailureKind::Usage,
            error: anyhow::anyhow!("cloacina-plugin-worker is not installed next to cloacinactl"),
            hint: Some("install it (`cargo build -p cloacina-loader`) or pass --in-process"),
        })?)
    };
    let config = HostConfig {
        worker_binary,
        require_signatures: args.require_signatures,
        watch_dir: args.watch_dir.clone(),
        resync_interval: Duration::from_secs(args.resync.max(1)),
        runner: RunnerConfig {
            max_concurrent_tasks: args.max_concurrent_tasks.max(1),
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            ..RunnerConfig::default()
        },
        ..HostConfig::new(url.clone(), home.join("cache"))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let host = Host::start(config)
            .await
            .with_context(|| {
                format!(
                    "cannot start the host on {}",
                    cloacina_runtime::database::redact(&url)
                )
            })
            .classify(FailureKind::Other)?;
        tracing::info!(
            database = %cloacina_runtime::database::redact(&url),
            watch_dir = ?args.watch_dir,
            native = if args.in_process { "in process" } else { "worker processes" },
            "host running; Ctrl-C or SIGTERM stops it"
        );
        stop_signal().await;
        tracing::info!("stopping: no new work; running tasks get their grace period");
        host.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Ctrl-C, or SIGTERM where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
