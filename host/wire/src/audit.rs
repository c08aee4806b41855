//! The audit log: every change to keys, tenants and packages, with who
//! made it, when and from where.

use crate::ListResponse;

crate::wire! {
    /// One change.
    pub struct AuditEntry {
        /// The entry's id (a UUID).
        pub id: String,
        /// When it was made (RFC 3339).
        pub at: String,
        /// The key that made it; none for changes made offline
        /// (`cloacinactl api-key create --home`).
        pub actor_key_id: Option<String>,
        /// That key's name.
        pub actor_name: Option<String>,
        /// The client address the request came from.
        pub address: Option<String>,
        /// What was done: `key.create`, `key.revoke`, `tenant.create`,
        /// `tenant.remove`, `package.upload`, `package.delete`.
        pub action: String,
        /// The tenant it concerns, if any.
        pub tenant: Option<String>,
        /// What it was done to: a key's id, a tenant's name, a package's
        /// `name@version`.
        pub target: String,
        /// More about it (a new key's name and role, an upload's digest...).
        pub detail: Option<serde_json::Value>,
    }
}

/// `GET /v1/audit`: the newest entries first.
pub type AuditListResponse = ListResponse<AuditEntry>;
