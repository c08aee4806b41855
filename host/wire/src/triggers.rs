//! Cron schedules and poll triggers of a tenant's loaded packages.

crate::wire! {
    pub struct TriggerScheduleSummary {
        pub id: String,
        /// `cron` or `trigger`.
        pub schedule_type: String,
        pub workflow_name: String,
        pub enabled: bool,
        pub cron_expression: Option<String>,
        pub trigger_name: Option<String>,
        pub schedule_name: String,
        pub poll_interval_ms: Option<u64>,
        pub next_run_at: Option<String>,
        pub last_run_at: Option<String>,
        pub created_at: String,
    }

    pub struct TriggerScheduleInfo {
        pub id: String,
        pub schedule_type: String,
        pub workflow_name: String,
        pub enabled: bool,
        pub cron_expression: Option<String>,
        pub trigger_name: Option<String>,
        pub poll_interval_ms: Option<u64>,
    }

    pub struct TriggerExecution {
        pub id: String,
        pub scheduled_time: Option<String>,
        pub started_at: String,
        pub completed_at: Option<String>,
    }

    pub struct TriggerDetailResponse {
        pub tenant_id: String,
        pub schedule: TriggerScheduleInfo,
        pub recent_executions: Vec<TriggerExecution>,
    }
}
