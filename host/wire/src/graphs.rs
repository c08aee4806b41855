//! Computation graphs, agents and the compiler: the routes exist for the
//! SDK; this server has none of them yet, so lists are empty.

crate::wire! {
    pub struct CompilerStatus {
        /// `not_used`.
        pub status: String,
        pub pending: i64,
        pub building: i64,
        pub last_success_at: Option<String>,
        pub last_failure_at: Option<String>,
        pub seconds_since_heartbeat: Option<i64>,
    }

    /// `/health`, `/ready`.
    pub struct HealthStatus {
        /// `ok`, `ready` or `not ready`.
        pub status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
    }
}
