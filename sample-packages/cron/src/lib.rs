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
