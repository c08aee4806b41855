//! ABI versions and the one rule that decides whether a plugin loads.
//!
//! The rule: a plugin loads when its ABI major equals the host's. A plugin
//! built for a newer minor may call optional functions the host does not
//! offer; the loader probes those individually, so minors never refuse a load.
//! Any other difference is refused, and the error names both versions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The ABI this host speaks. Bump the major on any breaking change to the
/// native root module or the WIT world; bump the minor when adding optional
/// functions.
pub const HOST_ABI_VERSION: AbiVersion = AbiVersion { major: 1, minor: 0 };

/// A `major.minor` ABI version, written `"1.0"` in manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbiVersion {
    pub major: u16,
    pub minor: u16,
}

/// A plugin's ABI cannot be served by this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "plugin ABI {plugin} is incompatible with host ABI {host}: the major versions must be equal"
)]
pub struct AbiMismatch {
    pub plugin: AbiVersion,
    pub host: AbiVersion,
}

impl AbiVersion {
    /// Whether a host speaking `self` can load a plugin built for `plugin`.
    pub fn accepts(self, plugin: AbiVersion) -> Result<(), AbiMismatch> {
        if self.major == plugin.major {
            Ok(())
        } else {
            Err(AbiMismatch { plugin, host: self })
        }
    }
}

impl fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The text is not a `major.minor` version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ABI version of the form MAJOR.MINOR (for example 1.0)")]
pub struct InvalidAbiVersion(String);

impl FromStr for AbiVersion {
    type Err = InvalidAbiVersion;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidAbiVersion(text.to_owned());
        let (major, minor) = text.split_once('.').ok_or_else(invalid)?;
        let number = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            part.parse::<u16>().map_err(|_| invalid())
        };
        Ok(AbiVersion {
            major: number(major)?,
            minor: number(minor)?,
        })
    }
}

impl Serialize for AbiVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AbiVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_loads_whatever_the_minor() {
        let host = AbiVersion { major: 1, minor: 0 };
        assert!(host.accepts(AbiVersion { major: 1, minor: 3 }).is_ok());
        assert!(host.accepts(AbiVersion { major: 1, minor: 0 }).is_ok());
    }

    #[test]
    fn another_major_is_refused_naming_both_versions() {
        let host = AbiVersion { major: 1, minor: 2 };
        let error = host
            .accepts(AbiVersion { major: 2, minor: 0 })
            .expect_err("major 2 must be refused by a major-1 host");
        let message = error.to_string();
        assert!(
            message.contains("2.0") && message.contains("1.2"),
            "{message}"
        );
    }

    #[test]
    fn parses_and_prints_major_dot_minor() {
        assert_eq!(
            "3.14".parse(),
            Ok(AbiVersion {
                major: 3,
                minor: 14
            })
        );
        assert_eq!(
            AbiVersion {
                major: 3,
                minor: 14
            }
            .to_string(),
            "3.14"
        );
        for bad in ["1", "1.", ".1", "1.0.0", "a.b", "+1.0", "99999.0"] {
            assert!(bad.parse::<AbiVersion>().is_err(), "{bad} should not parse");
        }
    }
}
