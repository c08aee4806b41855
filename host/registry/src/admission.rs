//! Admission: the one path from an archive to a registered package, taken
//! by every entry point (the HTTP upload, the drop directory,
//! `cloacinactl package upload --home`).
//!
//! Read within the reader's limits, verify under the trust policy (both
//! off the async workers, in bounded memory), then register. A [`Refusal`]
//! says whose fault a failure is: the package's (never admit these bytes),
//! or the host's: passing (its database is unreachable or busy: try the
//! same bytes again shortly) or not (a failure retrying soon will not fix).

use std::io::{Read, Seek};
use std::path::PathBuf;

use cloacina_database::TenantId;
pub use cloacina_package::ReadLimits;
use cloacina_package::{
    AdmitError, PackageError, ReadError, SignaturePolicy, VerifiedManifest, VerifyError,
};
use cloacina_wire::RefusalKind;

use crate::{Registry, RegistryError, TrustKeys, Upload};

/// Where an archive to admit is.
#[derive(Debug)]
pub enum Archive {
    /// A file, read whole once its size is within the limit.
    File(PathBuf),
    /// An open file of this many bytes (an upload spooled to disk), read
    /// from its start.
    Spooled(std::fs::File),
}

/// The admission policy of a host: its trust store and whether packages
/// must be signed.
#[derive(Debug, Clone)]
pub struct Admission {
    trust: TrustKeys,
    policy: SignaturePolicy,
    limits: ReadLimits,
}

/// A package verified for a tenant, with the archive bytes to store.
#[derive(Debug)]
pub struct Admitted {
    verified: VerifiedManifest,
    bytes: Vec<u8>,
}

/// Why a package was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("not a usable package")]
    Invalid(#[source] PackageError),
    #[error("verification failed")]
    Unverified(#[source] VerifyError),
    #[error("refused by the registry")]
    Conflict(#[source] RegistryError),
    #[error("the host cannot decide now ({doing}); try again later")]
    Unavailable {
        doing: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the host failed while {doing}")]
    Failed {
        doing: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Refusal {
    /// The host failed while `doing`, not the package: [`Refusal::Unavailable`]
    /// when the database is unreachable or busy (it passes), else
    /// [`Refusal::Failed`].
    pub fn host(
        doing: &'static str,
        error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        let source = error.into();
        if cloacina_database::is_unavailable(source.as_ref()) {
            Refusal::Unavailable { doing, source }
        } else {
            Refusal::Failed { doing, source }
        }
    }

    pub fn kind(&self) -> RefusalKind {
        match self {
            Refusal::Invalid(_) => RefusalKind::InvalidPackage,
            Refusal::Unverified(VerifyError::Manifest(_)) => RefusalKind::InvalidPackage,
            Refusal::Unverified(_) => RefusalKind::VerificationFailed,
            Refusal::Conflict(_) => RefusalKind::Conflict,
            Refusal::Unavailable { .. } => RefusalKind::Unavailable,
            Refusal::Failed { .. } => RefusalKind::Internal,
        }
    }

    /// The refusal and every cause, one sentence: what a reply, a log line
    /// or a `.reason` file says.
    pub fn explain(&self) -> String {
        cloacina_contract::explain(self)
    }
}

impl From<AdmitError> for Refusal {
    fn from(error: AdmitError) -> Self {
        match error {
            AdmitError::Read(error) => Refusal::Invalid(error),
            AdmitError::Verify(error) => Refusal::Unverified(error),
            AdmitError::Store(error) => Refusal::host("storing the package", error),
        }
    }
}

impl Admission {
    pub fn new(trust: TrustKeys, policy: SignaturePolicy) -> Self {
        Admission {
            trust,
            policy,
            limits: ReadLimits::default(),
        }
    }

    /// Reads `archive` within the limits and verifies it for `tenant`
    /// against the trust store, off the async workers.
    pub async fn verify(&self, archive: Archive, tenant: &TenantId) -> Result<Admitted, Refusal> {
        let limits = self.limits.clone();
        let bytes = tokio::task::spawn_blocking(move || read(archive, &limits))
            .await
            .map_err(|error| Refusal::host("reading the package", error))??;
        self.verify_bytes(bytes, tenant).await
    }

    /// Verifies an archive already read with [`read`].
    pub async fn verify_bytes(
        &self,
        bytes: ArchiveBytes,
        tenant: &TenantId,
    ) -> Result<Admitted, Refusal> {
        let trust = self
            .trust
            .store()
            .await
            .map_err(|error| Refusal::host("reading the trust store", error))?;
        let (limits, policy, tenant) = (self.limits.clone(), self.policy, tenant.to_string());
        tokio::task::spawn_blocking(move || {
            let bytes = bytes.0;
            let verified = cloacina_package::Package::verify_streaming(
                std::io::Cursor::new(&bytes),
                bytes.len() as u64,
                &limits,
                &trust,
                Some(&tenant),
                policy,
            )?;
            Ok(Admitted { verified, bytes })
        })
        .await
        .map_err(|error| Refusal::host("verifying the package", error))?
    }
}

/// An archive's bytes, within the size limit and starting like an archive.
#[derive(Debug)]
pub struct ArchiveBytes(Vec<u8>);

impl Admitted {
    pub fn verified(&self) -> &VerifiedManifest {
        &self.verified
    }

    /// Registers the verified package (idempotent for the same bytes).
    pub async fn register(
        self,
        registry: &Registry,
        source: Option<&str>,
    ) -> Result<Upload, Refusal> {
        registry
            .upload_from(&self.verified, &self.bytes, source)
            .await
            .map_err(|error| match error {
                RegistryError::Conflict { .. } | RegistryError::WorkflowOwned(_) => {
                    Refusal::Conflict(error)
                }
                error => Refusal::host("registering the package", error),
            })
    }
}

/// Reads an archive (blocking): its size checked before a byte is read,
/// its first bytes checked to start an archive. Reading a file may fail
/// for the host's reasons (a refusal of the host's kind).
pub fn read(archive: Archive, limits: &ReadLimits) -> Result<ArchiveBytes, Refusal> {
    let unreadable = |error| Refusal::host("reading the archive", error);
    let mut file = match archive {
        Archive::File(path) => std::fs::File::open(&path).map_err(unreadable)?,
        Archive::Spooled(mut file) => {
            file.rewind().map_err(unreadable)?;
            file
        }
    };
    let size = file.metadata().map_err(unreadable)?.len();
    if size > limits.max_archive_size {
        return Err(Refusal::Invalid(PackageError::Read(
            ReadError::ArchiveTooLarge {
                size,
                limit: limits.max_archive_size,
            },
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(unreadable)?;
    if cloacina_package::reader::detect(&bytes).is_none() {
        return Err(Refusal::Invalid(PackageError::Read(
            ReadError::NotAnArchive,
        )));
    }
    Ok(ArchiveBytes(bytes))
}
