//! A workflow run every minute by a cron schedule.

use cloacina_plugin::{CatchUp, Context, TaskResult, cron, json, task, workflow};

/// Records that the schedule fired.
#[task]
fn tick(ctx: &Context) -> TaskResult {
    ctx.log("tick");
    Ok(json!({ "ticked": true }))
}

cloacina_plugin::plugin! {
    tasks: [tick],
    workflows: [workflow("cron").description("runs every minute").tasks(["tick"])],
    cron_schedules: [
        cron("every_minute", "cron", "* * * * *").catch_up(CatchUp::RunMissed { max_runs: 3 }),
    ],
}
