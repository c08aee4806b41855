//! The sample ETL chain: extract numbers, double them, load their sum. Data
//! passes through the context: each task's output is merged into the
//! context of the tasks that depend on it.

use cloacina_plugin::{Context, TaskError, TaskResult, json, task, workflow};

fn numbers(ctx: &Context, key: &str) -> Result<Vec<i64>, TaskError> {
    ctx.get(key)
        .and_then(|value| value.as_array())
        .map(|values| values.iter().filter_map(|n| n.as_i64()).collect())
        .ok_or_else(|| TaskError::fatal(format!("the context has no `{key}` array")))
}

/// Produce the raw numbers (from `input`, or 1 to 10).
#[task(timeout_ms = 5000)]
fn extract(ctx: &Context) -> TaskResult {
    let raw = numbers(ctx, "input").unwrap_or_else(|_| (1..=10).collect());
    ctx.log(format!("extracted {} numbers", raw.len()));
    Ok(json!({ "raw": raw }))
}

/// On a native host, a `pause_marker` path in the context makes the first
/// run of `transform` create that file and then sleep for a minute: the
/// crash-recovery test kills the host during that sleep, and the rerun
/// (which finds the file) goes straight on.
#[cfg(not(target_arch = "wasm32"))]
fn pause_once(ctx: &Context) {
    let Some(marker) = ctx.get("pause_marker").and_then(|m| m.as_str()) else {
        return;
    };
    if std::fs::OpenOptions::new().write(true).create_new(true).open(marker).is_ok() {
        ctx.log("pausing for the crash-recovery test");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

#[cfg(target_arch = "wasm32")]
fn pause_once(_ctx: &Context) {}

/// `transform`'s output: a struct serializes to the object merged into
/// its dependants' context.
#[derive(serde::Serialize)]
struct Doubled {
    doubled: Vec<i64>,
}

/// Double every number.
#[task(
    dependencies = [extract],
    retry(max_attempts = 3, backoff = "exponential", delay_ms = 100, max_delay_ms = 2000, jitter = true)
)]
fn transform(ctx: &Context) -> TaskResult<Doubled> {
    pause_once(ctx);
    let raw: Vec<i64> = ctx.get_as("raw")?;
    Ok(Doubled {
        doubled: raw.iter().map(|n| n * 2).collect(),
    })
}

#[derive(serde::Serialize)]
struct Total {
    total: i64,
}

/// Sum the doubled numbers.
#[task(dependencies = [transform])]
fn load(ctx: &Context) -> TaskResult<Total> {
    Ok(Total {
        total: numbers(ctx, "doubled")?.iter().sum(),
    })
}

cloacina_plugin::plugin! {
    tasks: [extract, transform, load],
    workflows: [
        workflow("etl")
            .description("extract -> transform -> load")
            .tasks(["extract", "transform", "load"]),
    ],
}

#[cfg(test)]
mod tests {
    use cloacina_plugin::json;

    #[test]
    fn the_chain_sums_the_doubled_numbers() {
        let harness = crate::test_harness();
        let done = harness
            .run("etl", json!({ "input": [1, 2, 3] }))
            .expect("completes");
        assert_eq!(done["doubled"], json!([2, 4, 6]));
        assert_eq!(done["total"], 12);
        assert_eq!(harness.logs(), ["extract (attempt 1): extracted 3 numbers"]);
    }

    #[test]
    fn transform_needs_the_raw_numbers() {
        let error = crate::test_harness()
            .call("transform", json!({}))
            .expect_err("nothing to double");
        assert!(error.message.contains("`raw`"), "{error}");
    }
}
