//! The `.cloacina` package: a gzip'd tar (zip is also read) holding
//! `manifest.json`, `signature.json` and the compiled artifacts under
//! `native/<target>/` and `wasm/`.
//!
//! The life of a package, one module each:
//! - [`writer`]: [`PackageBuilder`] assembles artifacts and a declaration
//!   into an archive, signing the canonical manifest when given a key.
//! - [`reader`]: turns untrusted bytes into an [`ArchiveContents`], refusing
//!   anything unsafe (paths that escape, links, devices, bombs) with an
//!   error naming the entry and the rule. See [`ReadLimits`].
//! - [`package`]: [`Package`] is read but unverified; [`Package::verify`] is
//!   the only way to get a [`VerifiedPackage`], which is what loaders accept.
//! - [`extract`]: writes a verified package into a content-addressed cache,
//!   atomically.
//!
//! What is signed: the bytes `cloacina-package-manifest-v1\n` followed by the
//! canonical manifest. The manifest lists every other file with its SHA-256
//! and size, so one signature covers every byte of the package.

pub mod extract;
pub mod package;
pub mod reader;
pub mod writer;

pub use package::{
    AdmitError, MANIFEST_FILE, Package, PackageError, SIGNATURE_FILE, SignaturePolicy,
    VerifiedManifest, VerifiedPackage, VerifyError, signed_message,
};
pub use reader::{ArchiveContents, ArchiveFormat, FileDigest, Keep, ReadError, ReadLimits};
pub use writer::{BuildError, BuiltPackage, PackageBuilder};
