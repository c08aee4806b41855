//! Ten tasks in a line, `s0` -> `s1` -> ... -> `s9`, that do nothing and
//! leave the context as it is: the workflow `chain10`, which the external
//! load generator (`cargo bench -p cloacina-tests --bench load`) runs, so
//! that what it measures is the host's scheduling, persistence and calls,
//! not the tasks.

use cloacina_plugin::{Context, TaskResult, task, workflow};

/// Step 1 of 10.
#[task]
fn s0(_ctx: &Context) -> TaskResult<()> {
    Ok(())
}

/// Step 2 of 10.
#[task(dependencies = [s0])]
fn s1(_ctx: &Context) -> TaskResult<()> {
    Ok(())
}

/// Step 3 of 10.
#[task(dependencies = [s1])]
fn s2(_ctx: &Context) -> TaskResult<()> {
    Ok(())
}

/// Step 4 of 10.
#[task(dependencies = [s2])]
fn s3(_ctx: &Context) -> TaskResult<()> {
    Ok(())
}

/// Step 5 of 10.
#[task(dependencies = [s3])]
fn s4(_ctx: &Context) -> TaskResult<()> {
    Ok(())
}

/// Step 6 of 10.
#[task(dependencies = [s4])]
fn s5(_ctx: &Context) -> TaskResult<()> {
    Ok(())
}

/// Step 7 of 10.
#[task(dependencies = [s5])]
fn s6(_ctx: &Context) -> TaskResult<()> {
    Ok(())
}

/// Step 8 of 10.
#[task(dependencies = [s6])]
fn s7(_ctx: &Context) -> TaskResult<()> {
    Ok(())
}

/// Step 9 of 10.
#[task(dependencies = [s7])]
fn s8(_ctx: &Context) -> TaskResult<()> {
    Ok(())
}

/// Step 10 of 10.
#[task(dependencies = [s8])]
fn s9(_ctx: &Context) -> TaskResult<()> {
    Ok(())
}

cloacina_plugin::plugin! {
    tasks: [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9],
    workflows: [
        workflow("chain10")
            .description("s0 -> s1 -> ... -> s9, ten no-op tasks")
            .tasks(["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"]),
    ],
}

#[cfg(test)]
mod tests {
    use cloacina_plugin::json;

    #[test]
    fn the_chain_completes_and_changes_nothing() {
        let harness = crate::test_harness();
        let done = harness.run("chain10", json!({})).expect("completes");
        assert_eq!(done, json!({}));
        let done = harness
            .run("chain10", json!({ "n": 1 }))
            .expect("completes");
        assert_eq!(done, json!({ "n": 1 }));
        assert!(harness.logs().is_empty());
    }
}
