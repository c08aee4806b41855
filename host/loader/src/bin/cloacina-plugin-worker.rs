//! `cloacina-plugin-worker LIBRARY`: runs one native plugin library for an
//! isolated host (see `cloacina_loader::isolated`). Reads requests from
//! stdin, one JSON per line, answers on stdout (the task's log lines, then
//! its outcome).

use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cloacina_loader::isolated::{WorkerReply, WorkerRequest};
use cloacina_loader::native::NativePlugin;
use cloacina_loader::{CallControl, Plugin, TaskFailure};

fn send(reply: &WorkerReply) -> bool {
    let Ok(line) = serde_json::to_string(reply) else {
        return false;
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_ok()
}

fn main() {
    let Some(library) = std::env::args_os().nth(1) else {
        eprintln!("usage: cloacina-plugin-worker LIBRARY");
        std::process::exit(2);
    };
    let plugin = match NativePlugin::load(Path::new(&library)) {
        Ok(plugin) => plugin,
        Err(error) => {
            send(&WorkerReply::LoadError(cloacina_contract::explain(&error)));
            std::process::exit(1);
        }
    };
    let declaration = serde_json::to_string(plugin.declaration()).unwrap_or_default();
    if !send(&WorkerReply::Declaration(declaration)) {
        return;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let reply = match serde_json::from_str::<WorkerRequest>(&line) {
            Ok(request) => {
                let control = match request.timeout_ms {
                    Some(ms) => CallControl::with_timeout(Duration::from_millis(ms)),
                    None => CallControl::new(),
                }
                .attempt_number(request.attempt)
                // The task's log lines go to the host, ahead of its outcome.
                .with_log(Arc::new(|message: &str| {
                    send(&WorkerReply::Log(message.to_owned()));
                }));
                WorkerReply::from_outcome(plugin.call(&request.task, &request.context, &control))
            }
            Err(error) => WorkerReply::from_outcome(Err(TaskFailure::Fatal(format!(
                "unreadable request: {error}"
            )))),
        };
        if !send(&reply) {
            break;
        }
    }
}
