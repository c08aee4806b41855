//! Failures and the exit codes they map to. The codes are part of the
//! interface (documented in `--help` and the README): scripts branch on them.

use crate::output::out;
use cloacina_registry::Refusal;
use cloacina_wire::RefusalKind;
use std::process::ExitCode;

/// What went wrong, in the granularity scripts care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// 1: anything not listed below (I/O, unexpected states).
    Other,
    /// 3: the package is readable but failed verification: unsigned when a
    /// signature is required, bad signature, untrusted or revoked key, a file
    /// that differs from the manifest, an unlisted or a missing file.
    Verification,
    /// 4: the file is not a usable package: not an archive, refused by the
    /// safe reader, no manifest, an invalid manifest.
    InvalidPackage,
    /// 5: the plugin crate could not be built or declared.
    Build,
    /// 6: a key file is unusable (unreadable, malformed, readable by others).
    Key,
    /// 2: arguments that parse but make no sense (a context that is not a
    /// JSON object, an unknown workflow).
    Usage,
    /// 7: the workflow ran and failed, or was cancelled.
    WorkflowFailed,
    /// 8: the package could not be loaded or registered.
    Load,
    /// 9: the registry holds something else under that name (another
    /// package's bytes; a revoked key).
    Conflict,
    /// 10: the server refused the key (401) or its role or tenant (403).
    Denied,
    /// 11: the server has no such thing (404).
    NotFound,
    /// 75 (`EX_TEMPFAIL`): the host or server could not decide now (its
    /// database or disk failed, or it is busy); the same command may
    /// succeed later.
    Unavailable,
    /// 130 (128 + SIGINT, as shells report it): stopped by a second Ctrl-C.
    Interrupted,
}

impl FailureKind {
    pub fn exit_code(self) -> u8 {
        match self {
            FailureKind::Other => 1,
            FailureKind::Verification => 3,
            FailureKind::InvalidPackage => 4,
            FailureKind::Build => 5,
            FailureKind::Key => 6,
            FailureKind::Usage => 2,
            FailureKind::WorkflowFailed => 7,
            FailureKind::Load => 8,
            FailureKind::Conflict => 9,
            FailureKind::Denied => 10,
            FailureKind::NotFound => 11,
            FailureKind::Unavailable => 75,
            FailureKind::Interrupted => 130,
        }
    }

    /// The stable machine name printed in `--json` errors.
    pub fn code(self) -> &'static str {
        match self {
            FailureKind::Other => "error",
            FailureKind::Verification => "verification_failed",
            FailureKind::InvalidPackage => "invalid_package",
            FailureKind::Build => "build_failed",
            FailureKind::Key => "key_error",
            FailureKind::Usage => "usage",
            FailureKind::WorkflowFailed => "workflow_failed",
            FailureKind::Load => "load_failed",
            FailureKind::Conflict => "conflict",
            FailureKind::Denied => "denied",
            FailureKind::NotFound => "not_found",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Interrupted => "interrupted",
        }
    }

    /// A package refused, by why: the same code whether the refusal came
    /// from a local host's database or from a server.
    pub fn of_refusal(kind: RefusalKind) -> Self {
        match kind {
            RefusalKind::InvalidPackage => FailureKind::InvalidPackage,
            RefusalKind::VerificationFailed => FailureKind::Verification,
            RefusalKind::Conflict => FailureKind::Conflict,
            RefusalKind::Unavailable => FailureKind::Unavailable,
            RefusalKind::Internal | RefusalKind::Unknown => FailureKind::Other,
        }
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        let kind = FailureKind::of_refusal(refusal.kind());
        Failure {
            kind,
            hint: (kind == FailureKind::Verification)
                .then_some("trust the signer with `cloacinactl trust add KEY.pub`"),
            error: anyhow::Error::new(refusal),
        }
    }
}

/// An error with its kind.
#[derive(Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub error: anyhow::Error,
    /// What the user might do about it, printed on its own line.
    pub hint: Option<&'static str>,
}

impl Failure {
    /// Prints the error (as JSON on stdout too when asked) and returns the
    /// process exit code.
    pub fn report(self, json: bool) -> ExitCode {
        let chain = cloacina_contract::explain(self.error.as_ref());
        eprintln!("error: {chain}");
        if let Some(hint) = self.hint {
            eprintln!("hint: {hint}");
        }
        if json {
            let body = serde_json::json!({
                "error": chain,
                "code": self.kind.code(),
                "exit_code": self.kind.exit_code(),
                "hint": self.hint,
            });
            out!("{body}");
        }
        ExitCode::from(self.kind.exit_code())
    }
}

/// Attaches a [`FailureKind`] to any error.
pub trait Classify<T> {
    fn classify(self, kind: FailureKind) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> Classify<T> for Result<T, E> {
    fn classify(self, kind: FailureKind) -> Result<T, Failure> {
        self.map_err(|error| Failure {
            kind,
            error: error.into(),
            hint: None,
        })
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure {
            kind: FailureKind::Other,
            error,
            hint: None,
        }
    }
}
