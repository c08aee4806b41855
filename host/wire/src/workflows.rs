//! Workflow packages: upload, list, detail, delete.

use serde::{Deserialize, Serialize};

/// Where a package stands with the hosts: `{"status": "pending" |
/// "loaded"}` or `{"status": "failed", "error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", content = "error", rename_all = "snake_case")]
pub enum LoadStatus {
    Pending,
    Loaded,
    Failed(String),
}

crate::wire! {
    /// A task of a workflow with what it waits for.
    pub struct WorkflowTaskNode {
        pub id: String,
        pub dependencies: Vec<String>,
        pub description: Option<String>,
        /// Attempts in all (1: never retried).
        #[serde(default)]
        pub max_attempts: u32,
        /// `fixed`, `linear` or `exponential`.
        #[serde(default)]
        pub backoff: String,
        /// The first delay between attempts.
        #[serde(default)]
        pub retry_delay_ms: u64,
        /// How long one attempt may run, if bounded.
        #[serde(default)]
        pub timeout_ms: Option<u64>,
    }

    /// What a package version is made of and where it came from.
    pub struct PackageFacts {
        /// The key that signed it, if signed.
        pub signer_key_id: Option<String>,
        /// That key's name in the host's trust store, if it is there.
        #[serde(default)]
        pub signer_name: Option<String>,
        /// The archive's size.
        pub size_bytes: u64,
        /// `native:<target triple>` and/or `wasm`.
        pub artifacts: Vec<String>,
        /// `upload`, or `drop:<path>` for a file in a drop directory.
        pub source: String,
    }

    /// One workflow of one registered package version.
    pub struct WorkflowSummary {
        /// The package's id: its archive digest, shaped as a UUID.
        pub id: String,
        pub package_name: String,
        pub version: String,
        pub workflow_name: String,
        pub description: Option<String>,
        pub tasks: Vec<String>,
        pub task_graph: Vec<WorkflowTaskNode>,
        pub created_at: String,
        pub status: LoadStatus,
        /// Whether new executions of this workflow start on this version.
        pub live: bool,
        #[serde(default)]
        pub package: Option<PackageFacts>,
    }

    /// The highest registered version of a workflow.
    pub struct WorkflowDetail {
        pub tenant_id: String,
        pub id: String,
        pub package_name: String,
        pub version: String,
        pub workflow_name: String,
        pub description: Option<String>,
        pub tasks: Vec<String>,
        pub task_graph: Vec<WorkflowTaskNode>,
        /// `pending`, `loaded` or `failed`.
        pub build_status: String,
        pub build_error: Option<String>,
        pub created_at: String,
        pub signer_key_id: Option<String>,
        pub sha256: String,
        #[serde(default)]
        pub package: Option<PackageFacts>,
    }

    /// `POST /v1/tenants/{tenant_id}/workflows` (201).
    pub struct WorkflowUploadedResponse {
        pub package_id: String,
        pub tenant_id: String,
        pub package_name: String,
        pub version: String,
        /// False when these exact bytes were registered already.
        pub created: bool,
    }

    /// `DELETE /v1/tenants/{tenant_id}/workflows/{name}/{version}`.
    pub struct WorkflowDeletedResponse {
        /// `deleted`.
        pub status: String,
        pub package_name: String,
        pub version: String,
        pub was_registered: bool,
        /// Executions still running on the version (they finish there).
        pub running_executions: Vec<String>,
        /// Whether they were cancelled (`?cancel=true`).
        pub cancelled: bool,
    }
}

/// The multipart form of an upload (documentation only).
#[cfg(feature = "openapi")]
#[derive(Debug, utoipa::ToSchema)]
pub struct PackageUploadForm {
    /// The `.cloacina` archive.
    #[schema(format = Binary, value_type = String)]
    pub file: Vec<u8>,
}
