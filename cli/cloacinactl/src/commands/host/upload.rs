//! `cloacinactl package upload --home|--database-url`: the host's own
//! admission, run against its database, as its drop directory would.

use cloacina_package::SignaturePolicy;
use cloacina_registry::{Admission, Archive, Refusal, Registry, Tenants, TrustKeys};
use cloacina_runtime::TenantId;

use crate::cli::UploadArgs;
use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output::{self, out};

/// `package upload`: the host's admission (verify against its trust
/// store, then register), as an HTTP upload or the drop directory would.
pub fn upload(args: UploadArgs, json: bool) -> Result<(), Failure> {
    let tenant = super::tenant(&args.tenant)?;
    if !args.file.is_file() {
        return Err(anyhow::anyhow!("{} is not a file", args.file.display()))
            .classify(FailureKind::Usage);
    }
    let policy = if args.require_signatures {
        SignaturePolicy::Required
    } else {
        SignaturePolicy::Optional
    };
    let upload = super::block_on(async {
        let unavailable = |doing| move |error| Failure::from(Refusal::unavailable(doing, error));
        let main = args.host.open(&TenantId::public()).await?;
        Tenants::open(&main)
            .await
            .map_err(unavailable("opening the tenant list"))?
            .ensure(&tenant)
            .await
            .map_err(unavailable("recording the tenant"))?;
        let trust = TrustKeys::open(&main)
            .await
            .map_err(unavailable("opening the trust store"))?;
        let registry = Registry::open(&args.host.open(&tenant).await?)
            .await
            .map_err(unavailable("opening the registry"))?;
        Admission::new(trust, policy)
            .admit(Archive::File(args.file.clone()), &tenant, &registry, None)
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
