//! A task that would run for a minute, declared with a 200 ms timeout. It
//! checks `is_cancelled()` as a well-behaved long task should, so a native
//! host can stop it cooperatively; a WebAssembly host interrupts it anyway.

use std::time::{Duration, Instant};

use cloacina_plugin::{Context, TaskError, TaskResult, json, task, workflow};

/// Works for up to a minute, stopping when the host says so.
#[task(timeout_ms = 200)]
fn sleepy(ctx: &Context) -> TaskResult {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if ctx.is_cancelled() {
            return Err(TaskError::fatal("stopped by the host"));
        }
        std::hint::spin_loop();
    }
    Ok(json!({ "slept_ms": start.elapsed().as_millis() as u64 }))
}

cloacina_plugin::plugin! {
    tasks: [sleepy],
    workflows: [workflow("timeout").description("a task that outlives its timeout").tasks(["sleepy"])],
}
