//! The contract between cloacina plugins and the host.
//!
//! Everything both sides must agree on lives here and only here: the package
//! manifest schema (what a package declares about itself), and the ABI version
//! rule. The host depends on this crate, never on the authoring SDK, so a
//! plugin built against any SDK that speaks this contract can be loaded.

pub mod abi;
pub mod context;
pub mod firing;
pub mod manifest;
#[cfg(feature = "native")]
pub mod native;
pub mod ownership;
pub mod report;

pub use abi::{AbiMismatch, AbiVersion, HOST_ABI_VERSION};
pub use manifest::{
    Artifact, ArtifactKind, ArtifactPath, Declaration, Identifier, Manifest, ManifestError,
    PackageInfo, Sha256Digest,
};
pub use report::explain;
