//! Packages before and after verification.
//!
//! [`Package`] is what the safe reader produced: well-formed, but nothing in
//! it is trusted yet. [`Package::verify`] is the only constructor of
//! [`VerifiedPackage`], so code that takes a `VerifiedPackage` cannot be
//! handed bytes whose signature and hashes were not checked.

use std::collections::BTreeMap;

use cloacina_contract::{ArtifactPath, Manifest, ManifestError, Sha256Digest};
use cloacina_signing::{EnvelopeError, SignatureEnvelope, TrustError, TrustStore, VerifiedSigner};
use sha2::{Digest as _, Sha256};

use crate::reader::{self, ArchiveContents, ArchiveFile, ReadError, ReadLimits};

/// The manifest's path in every package.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The embedded signature's path in a signed package.
pub const SIGNATURE_FILE: &str = "signature.json";

/// Domain separation: a package signature can never be mistaken for a
/// signature over anything else the same key signs.
const SIGNING_DOMAIN: &[u8] = b"cloacina-package-manifest-v1\n";

/// The exact bytes a package signature is made over.
pub fn signed_message(manifest_bytes: &[u8]) -> Vec<u8> {
    [SIGNING_DOMAIN, manifest_bytes].concat()
}

/// Whether a package without a signature may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignaturePolicy {
    /// Unsigned packages are refused.
    Required,
    /// Unsigned packages pass (their hashes are still checked); signed ones
    /// must still verify.
    Optional,
}

/// A package that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("package has no `{MANIFEST_FILE}` at its root")]
    MissingManifest,
    #[error("`{SIGNATURE_FILE}` is unreadable: {0}")]
    MalformedSignature(#[source] EnvelopeError),
}

/// Why a package failed verification. Each failure has its own variant, and
/// each message names the file or key concerned.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("package is not signed, and a signature is required")]
    Unsigned,
    #[error(transparent)]
    Signature(#[from] TrustError),
    #[error("`{MANIFEST_FILE}` is invalid: {0}")]
    Manifest(#[source] ManifestError),
    #[error("file `{path}` differs from the manifest: {what}")]
    FileChanged { path: String, what: &'static str },
    #[error("file `{path}` is in the package but not listed in the manifest")]
    UnlistedFile { path: String },
    #[error("file `{path}` is listed in the manifest but missing from the package")]
    MissingFile { path: String },
}

/// A read, unverified package.
#[derive(Debug, Clone)]
pub struct Package {
    manifest_bytes: Vec<u8>,
    signature: Option<SignatureEnvelope>,
    files: BTreeMap<String, ArchiveFile>,
}

impl Package {
    /// Reads untrusted archive bytes through the safe reader.
    pub fn read(bytes: &[u8], limits: &ReadLimits) -> Result<Package, PackageError> {
        Self::from_contents(reader::read_archive(bytes, limits)?)
    }

    /// Reads a package extracted by [`VerifiedPackage::extract_into`], to be
    /// verified again before it is loaded.
    pub fn read_extracted(
        dir: &std::path::Path,
        limits: &ReadLimits,
    ) -> Result<Package, PackageError> {
        Self::from_contents(reader::read_directory(dir, limits)?)
    }

    fn from_contents(contents: ArchiveContents) -> Result<Package, PackageError> {
        let mut files = contents.files;
        let manifest_bytes = files
            .remove(MANIFEST_FILE)
            .ok_or(PackageError::MissingManifest)?
            .bytes;
        let signature = files
            .remove(SIGNATURE_FILE)
            .map(|file| SignatureEnvelope::from_json(&file.bytes))
            .transpose()
            .map_err(PackageError::MalformedSignature)?;
        Ok(Package {
            manifest_bytes,
            signature,
            files,
        })
    }

    /// The embedded signature, if any. Not verified.
    pub fn signature(&self) -> Option<&SignatureEnvelope> {
        self.signature.as_ref()
    }

    /// The manifest, parsed but not authenticated: for showing to people,
    /// never for loading.
    pub fn unverified_manifest(&self) -> Result<Manifest, ManifestError> {
        Manifest::from_canonical_json(&self.manifest_bytes)
    }

    /// The paths of every file besides the manifest and the signature.
    pub fn file_paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Checks the embedded signature against `trust` (for `tenant`, `None`
    /// for a package not scoped to one), then the manifest, then every file
    /// against the manifest.
    pub fn verify(
        self,
        trust: &TrustStore,
        tenant: Option<&str>,
        policy: SignaturePolicy,
    ) -> Result<VerifiedPackage, VerifyError> {
        let signature = self.signature.clone();
        self.verify_with(signature.as_ref(), trust, tenant, policy)
    }

    /// As [`Package::verify`], with a detached signature in place of (or
    /// besides) the embedded one.
    pub fn verify_detached(
        self,
        signature: &SignatureEnvelope,
        trust: &TrustStore,
        tenant: Option<&str>,
    ) -> Result<VerifiedPackage, VerifyError> {
        self.verify_with(Some(signature), trust, tenant, SignaturePolicy::Required)
    }

    fn verify_with(
        self,
        signature: Option<&SignatureEnvelope>,
        trust: &TrustStore,
        tenant: Option<&str>,
        policy: SignaturePolicy,
    ) -> Result<VerifiedPackage, VerifyError> {
        // Authenticate the bytes before interpreting them.
        let signer = match (signature, policy) {
            (Some(envelope), _) => {
                Some(trust.verify(envelope, &signed_message(&self.manifest_bytes), tenant)?)
            }
            (None, SignaturePolicy::Required) => return Err(VerifyError::Unsigned),
            (None, SignaturePolicy::Optional) => None,
        };
        let manifest =
            Manifest::from_canonical_json(&self.manifest_bytes).map_err(VerifyError::Manifest)?;
        for (path, file) in &self.files {
            let artifact = manifest
                .artifact(path)
                .ok_or_else(|| VerifyError::UnlistedFile { path: path.clone() })?;
            if artifact.size != file.bytes.len() as u64 {
                return Err(VerifyError::FileChanged {
                    path: path.clone(),
                    what: "its size differs",
                });
            }
            if artifact.sha256 != file.sha256 {
                return Err(VerifyError::FileChanged {
                    path: path.clone(),
                    what: "its SHA-256 differs",
                });
            }
        }
        if let Some(missing) = manifest
            .artifacts()
            .iter()
            .find(|artifact| !self.files.contains_key(artifact.path.as_str()))
        {
            return Err(VerifyError::MissingFile {
                path: missing.path.to_string(),
            });
        }
        let digest = sha256(&self.manifest_bytes);
        Ok(VerifiedPackage {
            manifest,
            manifest_bytes: self.manifest_bytes,
            manifest_digest: digest,
            signer,
            signature: signature.cloned(),
            files: self
                .files
                .into_iter()
                .map(|(path, file)| (path, file.bytes))
                .collect(),
        })
    }
}

/// A package whose signature (when present or required), manifest and
/// every file were checked. Only [`Package::verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedPackage {
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    manifest_digest: Sha256Digest,
    signer: Option<VerifiedSigner>,
    signature: Option<SignatureEnvelope>,
    files: BTreeMap<String, Vec<u8>>,
}

impl VerifiedPackage {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// SHA-256 of the canonical manifest. The manifest pins every file, so
    /// this identifies the package's whole content.
    pub fn content_digest(&self) -> Sha256Digest {
        self.manifest_digest
    }

    /// Who signed it; `None` for an unsigned package admitted by policy.
    pub fn signer(&self) -> Option<&VerifiedSigner> {
        self.signer.as_ref()
    }

    pub fn signature(&self) -> Option<&SignatureEnvelope> {
        self.signature.as_ref()
    }

    /// The verified bytes of the artifact at `path`.
    pub fn artifact_bytes(&self, path: &ArtifactPath) -> Option<&[u8]> {
        self.files.get(path.as_str()).map(Vec::as_slice)
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> Sha256Digest {
    Sha256Digest(Sha256::digest(bytes).into())
}
