//! `cloacina-server`: the same server as `cloacinactl server start`, as a
//! program of its own (for containers and service managers).

use std::process::ExitCode;

use clap::Parser as _;

/// The cloacina host and its HTTP + WebSocket API.
#[derive(Debug, clap::Parser)]
#[command(name = "cloacina-server", version, long_about = cloacina_server::SERVE_ABOUT)]
struct Cli {
    #[command(flatten)]
    serve: cloacina_server::ServeArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLOACINA_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,wasmtime=warn,cranelift=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cloacina_server::run(&cli.serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
