//! Hosts: the processes serving a tenant, one per lease row in its
//! database, with the work each holds there.

use crate::TenantListResponse;

crate::wire! {
    /// One host serving the tenant.
    pub struct HostInfo {
        /// The id its task claims and leases carry (a UUID).
        pub id: String,
        /// Where it serves its API (`127.0.0.1:8080`); none for an embedded
        /// runner (`cloacinactl run`, Python) or a host of an earlier
        /// version.
        pub address: Option<String>,
        /// The version it runs; none for a host of an earlier version.
        pub version: Option<String>,
        pub started_at: String,
        /// Its lease's last renewal.
        pub last_heartbeat: String,
        /// Milliseconds since that renewal, by the answering server's
        /// clock. Renewed every third of the lease TTL (30 s by default);
        /// past the TTL the host is presumed dead, its running tasks run
        /// again elsewhere, and its row is removed once it has been silent
        /// for ten TTLs (on SQLite, by the next start after that).
        pub heartbeat_age_ms: i64,
        /// The tenant's tasks it runs now (claimed, not yet finished).
        pub running_tasks: u64,
        /// The tenant's computation graphs it owns (holds the lease of).
        pub owned_graphs: Vec<String>,
        /// Whether it is the server that answered.
        pub this_host: bool,
    }
}

/// `GET /v1/tenants/{tenant_id}/hosts`: every host, oldest first.
pub type HostListResponse = TenantListResponse<HostInfo>;
