//! A registered package, as stored.

use serde::Serialize;

/// Where a package stands with the hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "error", rename_all = "snake_case")]
pub enum PackageStatus {
    /// Registered; not loaded yet.
    Pending,
    /// Loaded and registered with the runtime.
    Loaded,
    /// Could not be loaded, with the reason.
    Failed(String),
}

impl PackageStatus {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            PackageStatus::Pending => "pending",
            PackageStatus::Loaded => "loaded",
            PackageStatus::Failed(_) => "failed",
        }
    }

    pub(crate) fn from_columns(status: &str, error: Option<String>) -> Option<Self> {
        match status {
            "pending" => Some(PackageStatus::Pending),
            "loaded" => Some(PackageStatus::Loaded),
            "failed" => Some(PackageStatus::Failed(error.unwrap_or_default())),
            _ => None,
        }
    }
}

/// One registered package version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageRecord {
    pub name: String,
    pub version: semver::Version,
    /// SHA-256 of the archive's bytes, hex.
    pub sha256: String,
    pub size: u64,
    /// `native:<target-triple>` and/or `wasm`.
    pub runtimes: Vec<String>,
    /// The key that signed it, if it was signed.
    pub signer_key_id: Option<String>,
    pub status: PackageStatus,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Where it came from, when recorded: `drop:<path>` for a file in a
    /// drop directory.
    pub source: Option<String>,
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upload {
    pub record: PackageRecord,
    /// False when these exact bytes were already registered.
    pub created: bool,
}
