//! Every failure's body, and why a package was refused.

use serde::{Deserialize, Serialize};

crate::wire! {
    /// The body of every failed request: a message for people and a code for
    /// programs. `reason` says why a package was not admitted (upload routes).
    pub struct ErrorBody {
        pub error: String,
        pub code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<RefusalKind>,
    }
}

/// Why a package was not admitted. The first three are the package's
/// fault (the same bytes will never be admitted); the others the host's:
/// `unavailable` passes (try the same bytes again shortly), `internal`
/// needs someone to look. A client that meets a reason it does not know
/// reads `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// Not a usable package: not an archive, refused by the safe reader,
    /// no manifest or an invalid one.
    InvalidPackage,
    /// Readable, but not authentic: unsigned where a signature is required,
    /// a bad signature, an untrusted or revoked key, a file that differs
    /// from the manifest.
    VerificationFailed,
    /// The registry holds something else under its name: other bytes under
    /// the same version, or a workflow another package declares.
    Conflict,
    /// The host could not decide now: its database is unreachable or busy.
    Unavailable,
    /// The host failed in a way that retrying soon will not fix.
    Internal,
    /// A reason this build does not know (a newer server).
    #[serde(other)]
    Unknown,
}

impl RefusalKind {
    /// True when the package itself is at fault.
    pub fn is_package_fault(self) -> bool {
        matches!(
            self,
            RefusalKind::InvalidPackage | RefusalKind::VerificationFailed | RefusalKind::Conflict
        )
    }

    /// The machine name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::InvalidPackage => "invalid_package",
            RefusalKind::VerificationFailed => "verification_failed",
            RefusalKind::Conflict => "conflict",
            RefusalKind::Unavailable => "unavailable",
            RefusalKind::Internal => "internal",
            RefusalKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for RefusalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
