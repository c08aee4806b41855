//! A workflow run every five seconds by a cron schedule (six fields:
//! the first is seconds), so a host shows it working at once.

use cloacina_plugin::{CatchUp, Context, TaskResult, cron, json, task, workflow};

/// Records that the schedule fired.
#[task]
fn tick(ctx: &Context) -> TaskResult {
    ctx.log("tick");
    Ok(json!({ "ticked": true }))
}

cloacina_plugin::plugin! {
    tasks: [tick],
    workflows: [workflow("cron").description("runs every five seconds").tasks(["tick"])],
    cron_schedules: [
        cron("every_five_seconds", "cron", "*/5 * * * * *").catch_up(CatchUp::RunMissed { max_runs: 3 }),
    ],
}

#[cfg(test)]
mod tests {
    use cloacina_plugin::json;

    #[test]
    fn a_tick_records_itself() {
        let harness = crate::test_harness();
        let done = harness.run("cron", json!({})).expect("completes");
        assert_eq!(done["ticked"], true);
        assert_eq!(harness.logs(), ["tick (attempt 1): tick"]);
    }
}
