//! `cloacinactl`: argument parsing and printing over the library crates.

use std::process::ExitCode;

use clap::Parser as _;

mod cli;
mod commands;
mod failure;
mod output;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // A server reports what it does; the other commands print results
    // and keep the log for warnings.
    let default_filter = match cli.command {
        cli::Command::Server(_) => "info,sqlx=warn,wasmtime=warn,cranelift=warn",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLOACINA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let json = cli.json;
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(json),
    }
}
