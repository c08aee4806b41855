//! Packages before and after verification.
//!
//! [`Package`] is what the safe reader produced: well-formed, but nothing in
//! it is trusted yet. [`Package::verify`] is the only constructor of
//! [`VerifiedPackage`], so code that takes a `VerifiedPackage` cannot be
//! handed bytes whose signature and hashes were not checked.

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use cloacina_contract::{ArtifactPath, Manifest, ManifestError, Sha256Digest};
use cloacina_signing::{EnvelopeError, SignatureEnvelope, TrustError, TrustStore, VerifiedSigner};
use sha2::{Digest as _, Sha256};

use crate::reader::{self, ArchiveContents, ArchiveFile, FileDigest, Keep, ReadError, ReadLimits};

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
    #[error("`{SIGNATURE_FILE}` is unreadable")]
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
    #[error("`{MANIFEST_FILE}` is invalid")]
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
        let digests = self
            .files
            .iter()
            .map(|(path, file)| {
                (
                    path.as_str(),
                    FileDigest {
                        size: file.bytes.len() as u64,
                        sha256: file.sha256,
                    },
                )
            })
            .collect::<Vec<_>>();
        let verified = check(
            self.manifest_bytes.clone(),
            signature,
            digests,
            trust,
            tenant,
            policy,
        )?;
        Ok(VerifiedPackage {
            verified,
            files: self
                .files
                .into_iter()
                .map(|(path, file)| (path, file.bytes))
                .collect(),
        })
    }

    /// Verifies an archive of `size` bytes as it streams past: only the
    /// manifest and the signature are held in memory; every other file is
    /// hashed and dropped. The same rules and checks as
    /// [`Package::read`] then [`Package::verify`], in bounded memory.
    pub fn verify_streaming<R: Read + Seek>(
        archive: R,
        size: u64,
        limits: &ReadLimits,
        trust: &TrustStore,
        tenant: Option<&str>,
        policy: SignaturePolicy,
    ) -> Result<VerifiedManifest, AdmitError> {
        let scanned = reader::scan_archive(archive, size, limits, Keep::Only(SMALL_FILES))?;
        verify_scanned(scanned, trust, tenant, policy)
    }

    /// As [`Package::verify_streaming`], writing the package into
    /// `cache_root/<content digest>` as it streams (through a temporary
    /// directory, renamed into place only once verified), so that nothing
    /// but the manifest and signature is ever held in memory. Returns the
    /// directory.
    pub fn verify_and_extract<R: Read + Seek>(
        archive: R,
        size: u64,
        limits: &ReadLimits,
        trust: &TrustStore,
        tenant: Option<&str>,
        policy: SignaturePolicy,
        cache_root: &Path,
    ) -> Result<(VerifiedManifest, PathBuf), AdmitError> {
        std::fs::create_dir_all(cache_root).map_err(AdmitError::Store)?;
        let staging = tempfile::Builder::new()
            .prefix(".extracting-")
            .tempdir_in(cache_root)
            .map_err(AdmitError::Store)?;
        let scanned = reader::scan_archive(
            archive,
            size,
            limits,
            Keep::OnlyAndWriteUnder(SMALL_FILES, staging.path()),
        )?;
        let verified = verify_scanned(scanned, trust, tenant, policy)?;
        let directory =
            crate::extract::install(staging, cache_root, &verified).map_err(AdmitError::Store)?;
        Ok((verified, directory))
    }

    /// The manifest of an archive, unauthenticated (for showing, never for
    /// loading), reading nothing else into memory.
    pub fn peek_manifest<R: Read + Seek>(
        archive: R,
        size: u64,
        limits: &ReadLimits,
    ) -> Result<Manifest, AdmitError> {
        let mut scanned =
            reader::scan_archive(archive, size, limits, Keep::Only(&[MANIFEST_FILE]))?;
        let manifest_bytes = scanned
            .kept
            .remove(MANIFEST_FILE)
            .ok_or(PackageError::MissingManifest)?;
        Manifest::from_canonical_json(&manifest_bytes)
            .map_err(|error| AdmitError::Verify(VerifyError::Manifest(error)))
    }
}

/// The files a streaming read keeps in memory: small, and read whole by
/// verification.
const SMALL_FILES: &[&str] = &[MANIFEST_FILE, SIGNATURE_FILE];

/// Why an archive was not admitted by a streaming verification.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error("not a usable package")]
    Read(#[from] PackageError),
    #[error("verification failed")]
    Verify(#[from] VerifyError),
    /// Not the package's fault: the cache could not be written.
    #[error("cannot store the package")]
    Store(#[source] std::io::Error),
}

impl From<ReadError> for AdmitError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Write { source, .. } => AdmitError::Store(source),
            other => AdmitError::Read(PackageError::Read(other)),
        }
    }
}

impl AdmitError {
    /// True when the package is at fault (refuse it); false when this host
    /// failed (try again later).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, AdmitError::Store(_))
    }
}

fn verify_scanned(
    mut scanned: reader::ScannedArchive,
    trust: &TrustStore,
    tenant: Option<&str>,
    policy: SignaturePolicy,
) -> Result<VerifiedManifest, AdmitError> {
    let manifest_bytes = scanned
        .kept
        .remove(MANIFEST_FILE)
        .ok_or(PackageError::MissingManifest)?;
    scanned.files.remove(MANIFEST_FILE);
    let signature = scanned
        .kept
        .remove(SIGNATURE_FILE)
        .map(|bytes| SignatureEnvelope::from_json(&bytes))
        .transpose()
        .map_err(PackageError::MalformedSignature)?;
    scanned.files.remove(SIGNATURE_FILE);
    let digests = scanned
        .files
        .iter()
        .map(|(path, digest)| (path.as_str(), *digest))
        .collect::<Vec<_>>();
    Ok(check(
        manifest_bytes,
        signature.as_ref(),
        digests,
        trust,
        tenant,
        policy,
    )?)
}

/// The one verification: the signature (authenticating the manifest's
/// bytes before they are interpreted), then the manifest, then every file
/// against it, then that nothing listed is missing.
fn check(
    manifest_bytes: Vec<u8>,
    signature: Option<&SignatureEnvelope>,
    files: Vec<(&str, FileDigest)>,
    trust: &TrustStore,
    tenant: Option<&str>,
    policy: SignaturePolicy,
) -> Result<VerifiedManifest, VerifyError> {
    let signer = match (signature, policy) {
        (Some(envelope), _) => {
            Some(trust.verify(envelope, &signed_message(&manifest_bytes), tenant)?)
        }
        (None, SignaturePolicy::Required) => return Err(VerifyError::Unsigned),
        (None, SignaturePolicy::Optional) => None,
    };
    let manifest = Manifest::from_canonical_json(&manifest_bytes).map_err(VerifyError::Manifest)?;
    for (path, file) in &files {
        let artifact = manifest
            .artifact(path)
            .ok_or_else(|| VerifyError::UnlistedFile {
                path: (*path).to_owned(),
            })?;
        if artifact.size != file.size {
            return Err(VerifyError::FileChanged {
                path: (*path).to_owned(),
                what: "its size differs",
            });
        }
        if artifact.sha256 != file.sha256 {
            return Err(VerifyError::FileChanged {
                path: (*path).to_owned(),
                what: "its SHA-256 differs",
            });
        }
    }
    if let Some(missing) = manifest.artifacts().iter().find(|artifact| {
        !files
            .iter()
            .any(|(path, _)| *path == artifact.path.as_str())
    }) {
        return Err(VerifyError::MissingFile {
            path: missing.path.to_string(),
        });
    }
    let manifest_digest = sha256(&manifest_bytes);
    Ok(VerifiedManifest {
        manifest,
        manifest_bytes,
        manifest_digest,
        signer,
        signature: signature.cloned(),
    })
}

/// A manifest authenticated against a package's content: the signature
/// (when present or required) checked, and every file's size and SHA-256
/// matched against it. Made only by verification; what the registry and
/// loaders need to know of a package.
#[derive(Debug, Clone)]
pub struct VerifiedManifest {
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    manifest_digest: Sha256Digest,
    signer: Option<VerifiedSigner>,
    signature: Option<SignatureEnvelope>,
}

impl VerifiedManifest {
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
}

/// A verified manifest with every file's verified bytes in memory. Only
/// [`Package::verify`] makes one. It is a [`VerifiedManifest`] with bytes,
/// so it derefs to one.
#[derive(Debug, Clone)]
pub struct VerifiedPackage {
    verified: VerifiedManifest,
    files: BTreeMap<String, Vec<u8>>,
}

impl std::ops::Deref for VerifiedPackage {
    type Target = VerifiedManifest;

    fn deref(&self) -> &VerifiedManifest {
        &self.verified
    }
}

impl VerifiedPackage {
    /// The verified bytes of the artifact at `path`.
    pub fn artifact_bytes(&self, path: &ArtifactPath) -> Option<&[u8]> {
        self.files.get(path.as_str()).map(Vec::as_slice)
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> Sha256Digest {
    Sha256Digest(Sha256::digest(bytes).into())
}
