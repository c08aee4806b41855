//! The package manifest: `manifest.json` at the root of every `.cloacina`.
//!
//! A manifest names the package, the ABI it was built for, every artifact with
//! its SHA-256, and everything the package declares. It is the one document a
//! package signature covers; because it carries the hash of every other file,
//! one signature covers the whole package.
//!
//! Manifests have one canonical byte form ([`Manifest::to_canonical_json`]):
//! compact JSON with fields in schema order. Writers store exactly those bytes,
//! and [`Manifest::from_canonical_json`] refuses any other spelling, so a
//! manifest and its signed bytes are the same thing.

mod artifact;
mod check;
mod declaration;
mod digest;
mod graph;
mod identifier;

pub use artifact::{Artifact, ArtifactKind, ArtifactPath, InvalidArtifactPath, MAX_PATH_LEN};
pub use check::DeclarationError;
pub use check::{WorkflowTasksError, topological_order};
pub use declaration::{
    AccumulatorDeclaration, AccumulatorKind, AttemptFailure, Backoff, CatchUp,
    ComputationGraphDeclaration, CronScheduleDeclaration, Declaration, GraphNodeDeclaration,
    InputStrategy, InvokedGraphDeclaration, ReactionMode, ReactorDeclaration, RetryCondition,
    RetryPolicy, SubscriptionDeclaration, TaskDeclaration, TriggerDeclaration, WorkflowDeclaration,
};
pub use digest::{InvalidDigest, Sha256Digest};
pub use graph::{GraphTopology, InputSource, MIN_POLL_INTERVAL_MS};
pub use identifier::{Identifier, InvalidIdentifier, MAX_IDENTIFIER_LEN};

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::AbiVersion;

/// The manifest format this crate reads and writes.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// The package's manifest. Build one with [`Manifest::new`], which validates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    format_version: u32,
    package: PackageInfo,
    abi_version: AbiVersion,
    artifacts: Vec<Artifact>,
    declaration: Declaration,
}

/// Who the package is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageInfo {
    pub name: Identifier,
    pub version: semver::Version,
    #[serde(default)]
    pub description: String,
}

/// A manifest that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON of the manifest schema")]
    Malformed(#[source] serde_json::Error),
    #[error("manifest format version {found} is not supported (this build reads {supported})")]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("manifest bytes are not in canonical form (compact JSON in schema order)")]
    NotCanonical,
    #[error("manifest lists no artifacts")]
    NoArtifacts,
    #[error("artifact `{path}` is listed twice")]
    DuplicateArtifact { path: ArtifactPath },
    #[error("artifact `{path}` of kind {kind} must sit directly in `{expected}/`")]
    MisplacedArtifact {
        path: ArtifactPath,
        kind: ArtifactKind,
        expected: String,
    },
    #[error("native target `{0}` is not a valid target triple")]
    InvalidTarget(String),
    #[error("more than one artifact for {0}")]
    DuplicateKind(ArtifactKind),
    #[error(transparent)]
    Declaration(#[from] DeclarationError),
}

impl Manifest {
    /// A validated manifest of the current format.
    pub fn new(
        package: PackageInfo,
        abi_version: AbiVersion,
        artifacts: Vec<Artifact>,
        declaration: Declaration,
    ) -> Result<Self, ManifestError> {
        let manifest = Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            package,
            abi_version,
            artifacts,
            declaration,
        };
        manifest.validate()?;
        Ok(manifest)
    }

    /// Parses and validates manifest bytes, which must be canonical.
    pub fn from_canonical_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest = Self::from_json(bytes)?;
        if manifest.to_canonical_json() != bytes {
            return Err(ManifestError::NotCanonical);
        }
        Ok(manifest)
    }

    /// Parses and validates a manifest in any JSON spelling.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        // Read the format first, so a future format gets a clear error rather
        // than a complaint about fields this build does not know.
        #[derive(Deserialize)]
        struct Format {
            format_version: u32,
        }
        let format: Format = serde_json::from_slice(bytes).map_err(ManifestError::Malformed)?;
        if format.format_version != MANIFEST_FORMAT_VERSION {
            return Err(ManifestError::UnsupportedFormat {
                found: format.format_version,
                supported: MANIFEST_FORMAT_VERSION,
            });
        }
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(ManifestError::Malformed)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The bytes that are stored as `manifest.json` and signed.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // Every field is a struct, a sequence, a string, an integer or a bool,
        // so serialisation is deterministic and cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The same content, indented for people.
    pub fn to_pretty_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn format_version(&self) -> u32 {
        self.format_version
    }

    pub fn package(&self) -> &PackageInfo {
        &self.package
    }

    pub fn abi_version(&self) -> AbiVersion {
        self.abi_version
    }

    pub fn artifacts(&self) -> &[Artifact] {
        &self.artifacts
    }

    pub fn declaration(&self) -> &Declaration {
        &self.declaration
    }

    /// The artifact at `path`, if the manifest lists one.
    pub fn artifact(&self, path: &str) -> Option<&Artifact> {
        self.artifacts
            .iter()
            .find(|artifact| artifact.path.as_str() == path)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        if self.artifacts.is_empty() {
            return Err(ManifestError::NoArtifacts);
        }
        let mut paths = BTreeSet::new();
        let mut kinds = BTreeSet::new();
        for artifact in &self.artifacts {
            if let ArtifactKind::Native { target } = &artifact.kind {
                check_target(target)?;
            }
            if !paths.insert(&artifact.path) {
                return Err(ManifestError::DuplicateArtifact {
                    path: artifact.path.clone(),
                });
            }
            let expected = artifact.kind.folder();
            if artifact.path.parent() != expected {
                return Err(ManifestError::MisplacedArtifact {
                    path: artifact.path.clone(),
                    kind: artifact.kind.clone(),
                    expected,
                });
            }
            if !kinds.insert(artifact.kind.folder()) {
                return Err(ManifestError::DuplicateKind(artifact.kind.clone()));
            }
        }
        self.declaration.validate()?;
        Ok(())
    }
}

fn check_target(target: &str) -> Result<(), ManifestError> {
    let valid = !target.is_empty()
        && target.len() <= 64
        && target.contains('-')
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !target.starts_with(['.', '-']);
    if valid {
        Ok(())
    } else {
        Err(ManifestError::InvalidTarget(target.to_owned()))
    }
}

#[cfg(test)]
mod tests;
