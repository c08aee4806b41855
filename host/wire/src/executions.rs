//! Executions: start, list, read, events, tasks.

crate::wire! {
    /// `POST .../workflows/{name}/execute`; the body is optional.
    pub struct ExecuteRequest {
        /// The input context: a JSON object.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub context: Option<serde_json::Value>,
        /// A registered package version to run instead of the latest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub version: Option<String>,
    }

    /// 202: started.
    pub struct ExecuteResponse {
        pub execution_id: String,
        pub workflow_name: String,
        pub tenant_id: String,
        /// `scheduled`.
        pub status: String,
    }

    pub struct ExecutionSummary {
        pub id: String,
        pub workflow_name: String,
        pub package_name: String,
        pub package_version: String,
        /// `Running`, `Completed`, `Failed` or `Cancelled`.
        pub status: String,
        pub started_at: String,
        pub completed_at: Option<String>,
    }

    pub struct ExecutionDetail {
        pub tenant_id: String,
        pub execution_id: String,
        pub status: String,
        pub workflow_name: String,
        pub package_name: String,
        pub package_version: String,
        pub started_at: String,
        pub completed_at: Option<String>,
        pub final_context: Option<serde_json::Value>,
        /// The context it started with.
        #[serde(default)]
        pub input_context: Option<serde_json::Value>,
        pub error: Option<String>,
        pub failed_task: Option<String>,
    }

    /// `POST .../executions/{exec_id}/cancel`: what the cancel did.
    pub struct ExecutionCancelResponse {
        pub tenant_id: String,
        pub execution_id: String,
        /// Whether this request cancelled it (false: it had ended before).
        pub cancelled: bool,
        /// The execution's status now: `Cancelled`, or how it had ended.
        pub status: String,
    }

    /// One event, as the events route and the delivery socket show it.
    pub struct ExecutionEvent {
        /// `<execution id>-<sequence number>`.
        pub id: String,
        pub execution_id: String,
        pub event_type: String,
        pub task_name: Option<String>,
        /// The event's data, as a JSON text.
        pub event_data: Option<String>,
        pub sequence_num: i64,
        pub created_at: String,
    }

    pub struct ExecutionEventsResponse {
        pub tenant_id: String,
        pub execution_id: String,
        pub events: Vec<ExecutionEvent>,
    }

    pub struct TaskExecutionDetail {
        /// `<execution id>-<task name>`.
        pub id: String,
        pub task_name: String,
        pub status: String,
        pub attempt: i64,
        pub max_attempts: i64,
        pub created_at: String,
        pub updated_at: String,
        pub started_at: Option<String>,
        pub completed_at: Option<String>,
        pub last_error: Option<String>,
        pub error_details: Option<String>,
        pub sub_status: Option<String>,
        pub output: Option<serde_json::Value>,
        pub package_version: String,
    }

    pub struct ExecutionTasksResponse {
        pub tenant_id: String,
        pub execution_id: String,
        pub tasks: Vec<TaskExecutionDetail>,
    }
}
