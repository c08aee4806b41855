//! 1 -> N -> 1: `split` hands work to three workers that run independently;
//! `gather` depends on all three and sees their merged outputs.

use cloacina_plugin::{Context, TaskResult, json, task, workflow};

fn base(ctx: &Context) -> i64 {
    ctx.get("base").and_then(|b| b.as_i64()).unwrap_or(1)
}

/// On a native host, `work_ms` in the context makes every task take that
/// long (the test of two hosts sharing one database uses it).
fn work(ctx: &Context) {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(ms) = ctx.get("work_ms").and_then(|ms| ms.as_u64()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    #[cfg(target_arch = "wasm32")]
    let _ = ctx;
}

/// Choose the base every worker multiplies.
#[task]
fn split(ctx: &Context) -> TaskResult {
    work(ctx);
    Ok(json!({ "base": base(ctx) }))
}

/// Multiply by two.
#[task(dependencies = [split])]
fn worker_a(ctx: &Context) -> TaskResult {
    work(ctx);
    Ok(json!({ "a": base(ctx) * 2 }))
}

/// Multiply by three.
#[task(dependencies = [split])]
fn worker_b(ctx: &Context) -> TaskResult {
    work(ctx);
    Ok(json!({ "b": base(ctx) * 3 }))
}

/// Multiply by five.
#[task(dependencies = [split])]
fn worker_c(ctx: &Context) -> TaskResult {
    work(ctx);
    Ok(json!({ "c": base(ctx) * 5 }))
}

/// Add up what the workers made.
#[task(dependencies = [worker_a, worker_b, worker_c])]
fn gather(ctx: &Context) -> TaskResult {
    work(ctx);
    let sum: i64 = ["a", "b", "c"]
        .iter()
        .filter_map(|key| ctx.get(key).and_then(|v| v.as_i64()))
        .sum();
    Ok(json!({ "sum": sum }))
}

cloacina_plugin::plugin! {
    tasks: [split, worker_a, worker_b, worker_c, gather],
    workflows: [
        workflow("fan_out")
            .description("split -> (a, b, c) -> gather")
            .tasks(["split", "worker_a", "worker_b", "worker_c", "gather"]),
    ],
}

#[cfg(test)]
mod tests {
    use cloacina_plugin::json;

    #[test]
    fn gather_sees_every_worker() {
        let done = crate::test_harness()
            .run("fan_out", json!({ "base": 2 }))
            .expect("completes");
        assert_eq!(
            (&done["a"], &done["b"], &done["c"], &done["sum"]),
            (&json!(4), &json!(6), &json!(10), &json!(20))
        );
    }
}
