//! Extraction into a content-addressed cache.
//!
//! A verified package is written to `<cache>/<content digest>/` through a
//! temporary sibling directory and one rename, so a reader of the cache sees
//! either nothing or the whole package, never half of it, and two hosts
//! extracting the same package at once both end with the same directory.
//! The signature is extracted too, so that [`crate::Package::read_extracted`]
//! can verify the directory again at every load.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::package::{MANIFEST_FILE, SIGNATURE_FILE, VerifiedManifest, VerifiedPackage};

impl VerifiedPackage {
    /// Extracts into `cache_root/<content digest>` unless already there, and
    /// returns that directory.
    pub fn extract_into(&self, cache_root: &Path) -> io::Result<PathBuf> {
        let target = cache_root.join(self.content_digest().to_hex());
        if target.join(MANIFEST_FILE).is_file() {
            complete_signature(self, &target)?;
            return Ok(target);
        }
        fs::create_dir_all(cache_root)?;
        let staging = tempfile::Builder::new()
            .prefix(".extracting-")
            .tempdir_in(cache_root)?;
        for artifact in self.manifest().artifacts() {
            let bytes = self.artifact_bytes(&artifact.path).ok_or_else(|| {
                io::Error::other(format!("verified package lacks `{}`", artifact.path))
            })?;
            // ArtifactPath admits only clean relative components, so the
            // join stays inside the staging directory.
            let destination = staging.path().join(artifact.path.as_str());
            if let Some(parent) = destination.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&destination, bytes)?;
        }
        install(staging, cache_root, self)
    }
}

/// Moves a staged, verified package directory to `cache_root/<content
/// digest>` (one rename), unless that content is there already.
pub(crate) fn install(
    staging: tempfile::TempDir,
    cache_root: &Path,
    verified: &VerifiedManifest,
) -> io::Result<PathBuf> {
    let target = cache_root.join(verified.content_digest().to_hex());
    if target.join(MANIFEST_FILE).is_file() {
        complete_signature(verified, &target)?;
        return Ok(target);
    }
    fs::write(
        staging.path().join(MANIFEST_FILE),
        verified.manifest_bytes(),
    )?;
    if let Some(signature) = verified.signature() {
        fs::write(staging.path().join(SIGNATURE_FILE), signature.to_json())?;
    }
    let staged = staging.keep();
    match fs::rename(&staged, &target) {
        Ok(()) => Ok(target),
        // Another extraction of the same content won the race.
        Err(_) if target.join(MANIFEST_FILE).is_file() => {
            fs::remove_dir_all(&staged)?;
            complete_signature(verified, &target)?;
            Ok(target)
        }
        Err(error) => {
            let _ = fs::remove_dir_all(&staged);
            Err(error)
        }
    }
}

/// The same content may first arrive unsigned and later signed (the
/// manifest, hence the directory, is the same): add the signature.
fn complete_signature(verified: &VerifiedManifest, target: &Path) -> io::Result<()> {
    let Some(signature) = verified.signature() else {
        return Ok(());
    };
    if target.join(SIGNATURE_FILE).is_file() {
        return Ok(());
    }
    let mut staged = tempfile::NamedTempFile::new_in(target)?;
    io::Write::write_all(&mut staged, &signature.to_json())?;
    staged
        .persist(target.join(SIGNATURE_FILE))
        .map_err(|error| error.error)?;
    Ok(())
}
