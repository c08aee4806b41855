//! `cloacinactl package verify|inspect`: a package file checked and shown
//! on its own, no host involved.

use crate::output::out;
use std::path::Path;

use anyhow::Context as _;
use cloacina_contract::Manifest;
use cloacina_contract::manifest::Declaration;
use cloacina_package::{Package, ReadLimits, SignaturePolicy, VerifiedPackage, VerifyError};
use cloacina_signing::{KeyFile, KeyId, TrustError, TrustScope, TrustStore};
use serde::Serialize;

use crate::cli::{InspectArgs, TrustArgs, VerifyArgs};
use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output;

/// The trust store the flags describe.
fn trust_store(args: &TrustArgs) -> Result<TrustStore, Failure> {
    let mut store = TrustStore::new();
    for id in &args.revoked_keys {
        let id: KeyId = id.parse().classify(FailureKind::Key)?;
        store.revoke(id);
    }
    for path in &args.trusted_keys {
        let key = KeyFile::read(path).classify(FailureKind::Key)?;
        // A trusted key that is also revoked stays revoked; that is the
        // point of revocation, so it is not an error here.
        match store.add(key.name(), key.public_key(), TrustScope::Global) {
            Ok(_) | Err(TrustError::Revoked(_)) => {}
            Err(error) => return Err(error).classify(FailureKind::Key),
        }
    }
    Ok(store)
}

fn read_package(path: &Path) -> Result<Package, Failure> {
    let limits = ReadLimits::default();
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if size > limits.max_archive_size {
        return Err(anyhow::anyhow!(
            "{} is {size} bytes, over the package limit of {} bytes",
            path.display(),
            limits.max_archive_size
        ))
        .classify(FailureKind::InvalidPackage);
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Package::read(&bytes, &limits)
        .with_context(|| format!("{} is not a usable package", path.display()))
        .classify(FailureKind::InvalidPackage)
}

fn verify_package(
    package: Package,
    trust: &TrustStore,
    policy: SignaturePolicy,
    no_trusted_keys: bool,
) -> Result<VerifiedPackage, Failure> {
    package.verify(trust, None, policy).map_err(|error| {
        let kind = match error {
            VerifyError::Manifest(_) => FailureKind::InvalidPackage,
            _ => FailureKind::Verification,
        };
        let hint = match &error {
            VerifyError::Signature(TrustError::Untrusted(_)) if no_trusted_keys => {
                Some("no key is trusted: pass the signer's public key with --trusted-key")
            }
            VerifyError::Unsigned => {
                Some("pass --allow-unsigned to check an unsigned package's files")
            }
            _ => None,
        };
        Failure {
            kind,
            error: anyhow::Error::new(error).context("verification failed"),
            hint,
        }
    })
}

#[derive(Serialize)]
struct VerifyReport<'a> {
    verified: bool,
    name: &'a str,
    version: String,
    signer: Option<SignerReport>,
    files: usize,
}

#[derive(Serialize)]
struct SignerReport {
    key_id: String,
    name: String,
}

/// Reads `file` and verifies it against the trust the flags describe.
pub(super) fn read_verified(
    file: &Path,
    trust_args: &TrustArgs,
    allow_unsigned: bool,
) -> Result<VerifiedPackage, Failure> {
    let trust = trust_store(trust_args)?;
    let package = read_package(file)?;
    let policy = if allow_unsigned {
        SignaturePolicy::Optional
    } else {
        SignaturePolicy::Required
    };
    verify_package(package, &trust, policy, trust_args.trusted_keys.is_empty())
}

pub fn verify(args: VerifyArgs, json: bool) -> Result<(), Failure> {
    let verified = read_verified(&args.file, &args.trust, args.allow_unsigned)?;
    let manifest = verified.manifest();
    let report = VerifyReport {
        verified: true,
        name: manifest.package().name.as_str(),
        version: manifest.package().version.to_string(),
        signer: verified.signer().map(|signer| SignerReport {
            key_id: signer.key_id.to_string(),
            name: signer.name.clone(),
        }),
        files: manifest.artifacts().len(),
    };
    if json {
        output::json(&report);
    } else {
        let signed = match &report.signer {
            Some(signer) => format!("signed by `{}` ({})", signer.name, signer.key_id),
            None => "UNSIGNED (allowed by --allow-unsigned)".to_owned(),
        };
        let files = match report.files {
            1 => "1 file matches".to_owned(),
            n => format!("{n} files match"),
        };
        out!(
            "verified {} {}: {signed}; {files} the manifest",
            report.name,
            report.version
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct InspectReport<'a> {
    manifest: &'a Manifest,
    signature: Option<ClaimedSignature>,
    verification: Verification,
}

#[derive(Serialize)]
struct ClaimedSignature {
    key_id: String,
}

#[derive(Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Verification {
    NotChecked,
    Verified { signer: Option<SignerReport> },
    Failed { error: String },
}

pub fn inspect(args: InspectArgs, json: bool) -> Result<(), Failure> {
    let trust = trust_store(&args.trust)?;
    let package = read_package(&args.file)?;
    let manifest = package
        .unverified_manifest()
        .with_context(|| format!("{} has an invalid manifest", args.file.display()))
        .classify(FailureKind::InvalidPackage)?;
    let signature = package.signature().map(|signature| ClaimedSignature {
        key_id: signature.key_id().to_string(),
    });
    let verification = if args.trust.trusted_keys.is_empty() {
        Verification::NotChecked
    } else {
        match package.verify(&trust, None, SignaturePolicy::Required) {
            Ok(verified) => Verification::Verified {
                signer: verified.signer().map(|signer| SignerReport {
                    key_id: signer.key_id.to_string(),
                    name: signer.name.clone(),
                }),
            },
            Err(error) => Verification::Failed {
                error: cloacina_contract::explain(&error),
            },
        }
    };
    let report = InspectReport {
        manifest: &manifest,
        signature,
        verification,
    };
    if json {
        output::json(&report);
    } else {
        print_inspection(&report);
    }
    Ok(())
}

fn print_inspection(report: &InspectReport<'_>) {
    let manifest = report.manifest;
    let package = manifest.package();
    out!("{} {}", package.name, package.version);
    if !package.description.is_empty() {
        out!("  {}", package.description);
    }
    out!(
        "  manifest format {}, ABI {}",
        manifest.format_version(),
        manifest.abi_version()
    );
    out!("artifacts:");
    for artifact in manifest.artifacts() {
        out!(
            "  {}  {}  {}  sha256 {}",
            artifact.path,
            artifact.kind,
            output::size(artifact.size),
            artifact.sha256
        );
    }
    print_declaration(manifest.declaration());
    match (&report.signature, &report.verification) {
        (None, _) => out!("signature: none (unsigned package)"),
        (Some(claimed), Verification::NotChecked) => out!(
            "signature: key {} (not checked; pass --trusted-key to verify)",
            claimed.key_id
        ),
        (
            Some(_),
            Verification::Verified {
                signer: Some(signer),
            },
        ) => out!("signature: valid, by `{}` ({})", signer.name, signer.key_id),
        (Some(claimed), Verification::Verified { signer: None }) => {
            out!("signature: key {}", claimed.key_id)
        }
        (Some(claimed), Verification::Failed { error }) => {
            out!("signature: key {}: FAILED: {error}", claimed.key_id)
        }
    }
}

fn print_declaration(declaration: &Declaration) {
    if !declaration.tasks.is_empty() {
        out!("tasks:");
    }
    for task in &declaration.tasks {
        let mut line = format!("  {}", task.id);
        if !task.dependencies.is_empty() {
            let dependencies: Vec<&str> = task.dependencies.iter().map(|d| d.as_str()).collect();
            line.push_str(&format!(" <- {}", dependencies.join(", ")));
        }
        let retry = &task.retry;
        if retry.max_attempts > 1 {
            line.push_str(&format!(
                "  [{} attempts, {} backoff from {} ms]",
                retry.max_attempts, retry.backoff, retry.delay_ms
            ));
        }
        if let Some(timeout) = task.timeout_ms {
            line.push_str(&format!("  [timeout {timeout} ms]"));
        }
        out!("{line}");
    }
    if !declaration.workflows.is_empty() {
        out!("workflows:");
    }
    for workflow in &declaration.workflows {
        let tasks: Vec<&str> = workflow.tasks.iter().map(|t| t.as_str()).collect();
        out!("  {}: {}", workflow.name, tasks.join(", "));
    }
    for cron in &declaration.cron_schedules {
        out!(
            "cron {}: {} runs `{}` ({})",
            cron.name,
            cron.expression,
            cron.workflow,
            cron.timezone
        );
    }
    for trigger in &declaration.triggers {
        out!(
            "trigger {}: polled every {} ms, runs `{}`",
            trigger.name,
            trigger.poll_interval_ms,
            trigger.workflow
        );
    }
    for graph in &declaration.computation_graphs {
        out!(
            "computation graph {}: {} accumulators, {} nodes",
            graph.name,
            graph.accumulators.len(),
            graph.nodes.len()
        );
    }
}
