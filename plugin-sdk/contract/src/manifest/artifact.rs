//! The compiled files a package carries, and where they sit in the archive.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Sha256Digest;

/// One compiled artifact: a native library for one target triple, or the
/// package's WebAssembly component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub path: ArtifactPath,
    pub kind: ArtifactKind,
    pub sha256: Sha256Digest,
    /// Size in bytes; checked along with the digest.
    pub size: u64,
}

/// What runs an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ArtifactKind {
    /// A shared library for one target triple, loaded through the native ABI.
    Native { target: String },
    /// A WebAssembly component implementing the package WIT world.
    Wasm,
}

impl ArtifactKind {
    /// The folder of the archive this kind of artifact must live in.
    pub fn folder(&self) -> String {
        match self {
            ArtifactKind::Native { target } => format!("native/{target}"),
            ArtifactKind::Wasm => "wasm".to_owned(),
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArtifactKind::Native { target } => write!(f, "native ({target})"),
            ArtifactKind::Wasm => f.write_str("wasm"),
        }
    }
}

/// A path inside a package: `/`-separated, relative, every component made of
/// A-Z a-z 0-9 `_` `-` `.` and none of them `.` or `..`. Such a path can be
/// joined onto an extraction directory without escaping it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArtifactPath(String);

/// The longest package path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 512;

/// Why a text is not an [`ArtifactPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a valid package path: {reason}")]
pub struct InvalidArtifactPath {
    pub text: String,
    pub reason: &'static str,
}

impl ArtifactPath {
    pub fn new(text: impl Into<String>) -> Result<Self, InvalidArtifactPath> {
        let text = text.into();
        match Self::problem(&text) {
            Some(reason) => Err(InvalidArtifactPath { text, reason }),
            None => Ok(ArtifactPath(text)),
        }
    }

    fn problem(text: &str) -> Option<&'static str> {
        if text.is_empty() {
            return Some("it is empty");
        }
        if text.len() > MAX_PATH_LEN {
            return Some("it is too long");
        }
        if text.starts_with('/') {
            return Some("it is absolute");
        }
        for component in text.split('/') {
            match component {
                "" => return Some("it has an empty component"),
                "." | ".." => return Some("it has a `.` or `..` component"),
                _ if !component
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) =>
                {
                    return Some("it has a character outside A-Z a-z 0-9 _ - .");
                }
                _ => {}
            }
        }
        None
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The folder part (everything before the last `/`), empty at the root.
    pub fn parent(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(parent, _)| parent)
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, name)| name)
    }
}

impl TryFrom<String> for ArtifactPath {
    type Error = InvalidArtifactPath;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        ArtifactPath::new(text)
    }
}

impl From<ArtifactPath> for String {
    fn from(path: ArtifactPath) -> Self {
        path.0
    }
}

impl fmt::Display for ArtifactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_relative_clean_paths() {
        let path = ArtifactPath::new("native/x86_64-unknown-linux-gnu/libetl.so").expect("valid");
        assert_eq!(path.parent(), "native/x86_64-unknown-linux-gnu");
        assert_eq!(path.file_name(), "libetl.so");
    }

    #[test]
    fn refuses_paths_that_escape_or_hide() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/./b",
            "a\\b",
            "a/b c",
        ] {
            assert!(ArtifactPath::new(bad).is_err(), "{bad:?}");
        }
    }
}
