//! Writing packages.
//!
//! Archives are reproducible: entries in a fixed order (manifest, signature,
//! artifacts by path), every header with mtime 0, uid/gid 0 and mode 0644, so
//! packing the same artifacts twice gives the same bytes.

use std::io::Write as _;

use cloacina_contract::manifest::InvalidArtifactPath;
use cloacina_contract::{
    AbiVersion, Artifact, ArtifactKind, ArtifactPath, Declaration, Manifest, ManifestError,
    PackageInfo,
};
use cloacina_signing::{KeyId, KeyPair};
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::package::{MANIFEST_FILE, SIGNATURE_FILE, sha256, signed_message};

/// Collects what goes into a package.
#[derive(Debug)]
pub struct PackageBuilder {
    package: PackageInfo,
    abi_version: AbiVersion,
    declaration: Declaration,
    artifacts: Vec<(Artifact, Vec<u8>)>,
}

/// A package could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("artifact file name `{name}` is not usable")]
    ArtifactName {
        name: String,
        #[source]
        source: InvalidArtifactPath,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("writing the archive failed")]
    Io(#[from] std::io::Error),
}

/// A finished package.
#[derive(Debug)]
pub struct BuiltPackage {
    pub bytes: Vec<u8>,
    pub manifest: Manifest,
    pub signed_by: Option<KeyId>,
}

impl PackageBuilder {
    pub fn new(package: PackageInfo, abi_version: AbiVersion, declaration: Declaration) -> Self {
        PackageBuilder {
            package,
            abi_version,
            declaration,
            artifacts: Vec::new(),
        }
    }

    /// Adds an artifact as `native/<target>/<file_name>` or `wasm/<file_name>`.
    pub fn add_artifact(
        &mut self,
        kind: ArtifactKind,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Result<&mut Self, BuildError> {
        let path =
            ArtifactPath::new(format!("{}/{file_name}", kind.folder())).map_err(|source| {
                BuildError::ArtifactName {
                    name: file_name.to_owned(),
                    source,
                }
            })?;
        let artifact = Artifact {
            path,
            kind,
            sha256: sha256(&bytes),
            size: bytes.len() as u64,
        };
        self.artifacts.push((artifact, bytes));
        Ok(self)
    }

    /// Validates the manifest and writes the archive, signed by `key` if given.
    pub fn finish(mut self, key: Option<&KeyPair>) -> Result<BuiltPackage, BuildError> {
        self.artifacts.sort_by(|(a, _), (b, _)| a.path.cmp(&b.path));
        let manifest = Manifest::new(
            self.package,
            self.abi_version,
            self.artifacts
                .iter()
                .map(|(artifact, _)| artifact.clone())
                .collect(),
            self.declaration,
        )?;
        let manifest_bytes = manifest.to_canonical_json();
        let signature = key.map(|key| key.sign(&signed_message(&manifest_bytes)));

        let capacity = self
            .artifacts
            .iter()
            .map(|(_, bytes)| bytes.len())
            .sum::<usize>()
            / 2;
        let encoder = GzEncoder::new(Vec::with_capacity(capacity), Compression::default());
        let mut archive = tar::Builder::new(encoder);
        append(&mut archive, MANIFEST_FILE, &manifest_bytes)?;
        if let Some(signature) = &signature {
            append(&mut archive, SIGNATURE_FILE, &signature.to_json())?;
        }
        for (artifact, bytes) in &self.artifacts {
            append(&mut archive, artifact.path.as_str(), bytes)?;
        }
        let mut encoder = archive.into_inner()?;
        encoder.flush()?;
        let bytes = encoder.finish()?;
        Ok(BuiltPackage {
            bytes,
            manifest,
            signed_by: signature.map(|signature| signature.key_id()),
        })
    }
}

fn append<W: std::io::Write>(
    archive: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    archive.append_data(&mut header, path, bytes)
}
