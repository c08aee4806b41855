//! Names of packages, tasks, workflows, triggers and graphs.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest identifier accepted, in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 128;

/// A validated name: 1 to 128 ASCII letters, digits, `_`, `-` or `.`, not
/// starting with `.` or `-`. Anything a manifest names (package, task,
/// workflow, trigger, graph) is an `Identifier`, so a name that could break a
/// path, a URL or a log line cannot get past the parser.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Identifier(String);

/// Why a text is not an [`Identifier`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a valid name: {reason} (names are 1-{MAX_IDENTIFIER_LEN} of A-Z a-z 0-9 _ - ., not starting with . or -)"
)]
pub struct InvalidIdentifier {
    pub text: String,
    pub reason: &'static str,
}

impl Identifier {
    pub fn new(text: impl Into<String>) -> Result<Self, InvalidIdentifier> {
        let text = text.into();
        let reason = if text.is_empty() {
            Some("it is empty")
        } else if text.len() > MAX_IDENTIFIER_LEN {
            Some("it is too long")
        } else if text.starts_with(['.', '-']) {
            Some("it starts with . or -")
        } else if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            Some("it contains a character outside the allowed set")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InvalidIdentifier { text, reason }),
            None => Ok(Identifier(text)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Identifier {
    type Error = InvalidIdentifier;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Identifier::new(text)
    }
}

impl From<Identifier> for String {
    fn from(identifier: Identifier) -> Self {
        identifier.0
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for good in ["etl", "fan_out", "load-2", "v1.extract", "A"] {
            assert!(Identifier::new(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn refuses_names_that_could_escape_a_path_or_a_line() {
        for bad in [
            "",
            ".hidden",
            "-flag",
            "a/b",
            "..",
            "a b",
            "tab\t",
            "é",
            &"x".repeat(129),
        ] {
            assert!(Identifier::new(bad).is_err(), "{bad:?}");
        }
    }
}
