//! The package registry: which packages a tenant's hosts should run.
//!
//! Rows (name, semver version, SHA-256 and size of the archive, runtime
//! kinds, signer, status: pending / loaded / failed with its error,
//! timestamps) and the archive bytes live in the tenant's own database,
//! beside its executions. Keeping the bytes there (rather than in a
//! directory) means every host on one PostgreSQL sees the same packages
//! with nothing else to share or back up, and a package row and its bytes
//! appear in one transaction; archives are capped by the package reader's
//! limits, and hosts keep their extracted, content-addressed copies locally.
//!
//! Uploading the same bytes again is idempotent; the same name and version
//! with other bytes is a [`RegistryError::Conflict`]. Versions of one name
//! live side by side; [`Registry::latest_loaded`] is the highest loaded one.

//!
//! On PostgreSQL every change (a package registered or removed, a key
//! revoked) is announced on [`changes::CHANNEL`] in its own transaction, so
//! other hosts reconcile at once ([`changes::listen`]).

pub mod admission;
pub mod changes;
mod error;
mod record;
mod registry;
mod tenants;
mod trust;

pub use admission::{Admission, Admitted, Archive, Refusal};
pub use error::RegistryError;
pub use record::{PackageRecord, PackageStatus, Upload};
pub use registry::Registry;
pub use tenants::Tenants;
pub use trust::{TrustEntry, TrustKeys};
