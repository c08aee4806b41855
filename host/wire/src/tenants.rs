//! Tenants (god mode).

crate::wire! {
    /// `POST /v1/tenants`. The reference's spelling `schema_name` is
    /// accepted for `name`; `username` names the PostgreSQL login role
    /// (default: the tenant's name).
    pub struct CreateTenantRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub schema_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub username: Option<String>,
        /// The PostgreSQL login role's password; generated when absent and
        /// never returned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub password: Option<String>,
    }

    pub struct TenantSummary {
        pub name: String,
    }

    pub struct TenantCreatedResponse {
        pub name: String,
        pub schema_name: String,
        pub username: String,
        pub description: Option<String>,
    }

    pub struct TenantRemovedResponse {
        /// `removed`.
        pub status: String,
        pub schema_name: String,
        pub revoked_keys: u64,
        pub runner_evicted: bool,
        pub db_cache_evicted: bool,
    }
}
