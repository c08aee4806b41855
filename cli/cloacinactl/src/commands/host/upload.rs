//! `cloacinactl package upload --home|--database-url`: the host's own
//! admission, run against its database, as its drop directory would.

use cloacina_package::SignaturePolicy;
use cloacina_registry::admission::{self, ReadLimits};
use cloacina_registry::{Admission, Archive, Refusal, Registry, Tenants, TrustKeys};
use cloacina_runtime::TenantId;

use crate::cli::UploadArgs;
use crate::failure::{Failure, FailureKind};
use crate::output::{self, out};

/// `package upload`: the host's admission (verify against its trust
/// store, then register), as an HTTP upload or the drop directory would.
pub fn upload(args: UploadArgs, json: bool) -> Result<(), Failure> {
    let tenant = super::tenant(&args.tenant)?;
    let policy = if args.require_signatures {
        SignaturePolicy::Required
    } else {
        SignaturePolicy::Optional
    };
    // The file first, as a server reads it before anything else: a file
    // that is not a package is refused the same way whatever the database
    // is doing, and one that cannot be read is the caller's to fix.
    let bytes = admission::read(Archive::File(args.file.clone()), &ReadLimits::default()).map_err(
        |refusal| match refusal {
            Refusal::Unavailable { .. } | Refusal::Failed { .. } => Failure {
                kind: FailureKind::Usage,
                error: anyhow::Error::new(refusal)
                    .context(format!("cannot read {}", args.file.display())),
                hint: None,
            },
            refusal => Failure::from(refusal),
        },
    )?;
    let upload = super::block_on(async {
        let host_failed = |doing| move |error| Failure::from(Refusal::host(doing, error));
        let main = args.host.open(&TenantId::public()).await?;
        let trust = TrustKeys::open(&main)
            .await
            .map_err(host_failed("opening the trust store"))?;
        let admitted = Admission::new(trust, policy)
            .verify_bytes(bytes, &tenant)
            .await?;
        Tenants::open(&main)
            .await
            .map_err(host_failed("opening the tenant list"))?
            .ensure(&tenant)
            .await
            .map_err(host_failed("recording the tenant"))?;
        let registry = Registry::open(&args.host.open(&tenant).await?)
            .await
            .map_err(host_failed("opening the registry"))?;
        admitted
            .register(&registry, None)
            .await
            .map_err(Failure::from)
    })??;
    if json {
        output::json(&upload);
    } else {
        let record = &upload.record;
        let what = if upload.created {
            "registered"
        } else {
            "already registered"
        };
        out!(
            "{what} {} {} for tenant {tenant} (sha256 {}, {}, {})",
            record.name,
            record.version,
            record.sha256,
            output::size(record.size),
            record
                .signer_key_id
                .as_deref()
                .map_or("unsigned".to_owned(), |k| format!("signed by {k}"))
        );
    }
    Ok(())
}
