//! A task that panics. The SDK turns the panic into a fatal task error with
//! the panic message; nothing unwinds into the host.

use cloacina_plugin::{Context, TaskResult, task, workflow};

/// Panics, every time.
#[task]
fn explode(ctx: &Context) -> TaskResult {
    let reason = ctx.get("reason").and_then(|r| r.as_str()).unwrap_or("boom");
    panic!("deliberate panic: {reason}");
}

/// Aborts the whole process: what a segfault looks like to a host. Only an
/// isolated host (a worker process per plugin) survives it.
#[task]
fn crash(_ctx: &Context) -> TaskResult {
    std::process::abort();
}

cloacina_plugin::plugin! {
    tasks: [explode, crash],
    workflows: [
        workflow("panic").description("a task that panics").tasks(["explode"]),
        workflow("crash").description("a task that aborts its process").tasks(["crash"]),
    ],
}

#[cfg(test)]
mod tests {
    use cloacina_plugin::{ErrorKind, json};

    #[test]
    fn a_panic_is_a_fatal_error_with_its_message() {
        let failed = crate::test_harness()
            .run("panic", json!({ "reason": "testing" }))
            .expect_err("panics");
        assert_eq!((failed.task.as_str(), failed.attempts), ("explode", 1));
        assert_eq!(failed.error.kind, ErrorKind::Fatal);
        assert!(failed.error.message.contains("deliberate panic: testing"), "{failed}");
    }
}
