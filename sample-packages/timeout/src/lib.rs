//! A task that would run for hours, declared with a 200 ms timeout. It
//! checks `is_cancelled()` as a well-behaved long task should, so a native
//! host can stop it cooperatively; a WebAssembly host interrupts it anyway.
//! (No clock: wasm32-unknown-unknown has none, and the host grants none.)

use cloacina_plugin::{Context, TaskError, TaskResult, json, task, workflow};

/// Works for a very long time, stopping when the host says so.
#[task(timeout_ms = 200)]
fn sleepy(ctx: &Context) -> TaskResult {
    let mut rounds: u64 = 0;
    while rounds < 1 << 40 {
        if ctx.is_cancelled() {
            return Err(TaskError::fatal("stopped by the host"));
        }
        rounds = std::hint::black_box(rounds + 1);
    }
    Ok(json!({ "rounds": rounds }))
}

cloacina_plugin::plugin! {
    tasks: [sleepy],
    workflows: [workflow("timeout").description("a task that outlives its timeout").tasks(["sleepy"])],
}

#[cfg(test)]
mod tests {
    use cloacina_plugin::{ErrorKind, json};

    #[test]
    fn the_task_stops_when_the_host_says_so() {
        let error = crate::test_harness()
            .cancelling()
            .call("sleepy", json!({}))
            .expect_err("stops");
        assert_eq!(error.kind, ErrorKind::Fatal);
        assert_eq!(error.message, "stopped by the host");
    }
}
