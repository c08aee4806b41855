//! A flaky task: attempts 1 and 2 fail with a retryable error, attempt 3
//! succeeds. The attempt number comes from the host, so the behaviour is
//! the same in a native library and in a fresh WebAssembly instance.

use cloacina_plugin::{Context, TaskError, TaskResult, json, task, workflow};

/// Fails twice, then succeeds.
#[task(retry(max_attempts = 3, backoff = "fixed", delay_ms = 10))]
fn flaky(ctx: &Context) -> TaskResult {
    let attempt = ctx.attempt();
    if attempt < 3 {
        return Err(TaskError::retryable(format!("attempt {attempt}: the service is not ready")));
    }
    Ok(json!({ "succeeded_on_attempt": attempt }))
}

cloacina_plugin::plugin! {
    tasks: [flaky],
    workflows: [workflow("retry").description("a task that succeeds on its third attempt").tasks(["flaky"])],
}

#[cfg(test)]
mod tests {
    use cloacina_plugin::json;

    #[test]
    fn the_third_attempt_succeeds_by_the_retry_policy() {
        let harness = crate::test_harness();
        let done = harness.run("retry", json!({})).expect("completes");
        assert_eq!(done["succeeded_on_attempt"], 3);
        let first = harness.call("flaky", json!({})).expect_err("attempt 1 fails");
        assert_eq!(first.kind, cloacina_plugin::ErrorKind::Retryable);
    }
}
