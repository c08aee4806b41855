//! From stored bytes to a loaded plugin, each step checked.

use std::path::Path;
use std::sync::Arc;

use cloacina_contract::{ArtifactKind, HOST_ABI_VERSION};
use cloacina_loader::isolated::IsolatedPlugin;
use cloacina_loader::native::NativePlugin;
use cloacina_loader::wasm::WasmRuntime;
use cloacina_loader::{Plugin, check_declaration};
use cloacina_package::{Package, ReadLimits, SignaturePolicy, VerifiedPackage};
use cloacina_signing::TrustStore;

/// The target triple this host runs native artifacts for.
pub(crate) const HOST_TARGET: &str = env!("CLOACINA_HOST_TARGET");

/// Verifies `bytes` for `tenant`: the signature (when present, or always
/// when `require_signatures`) and every file.
pub(crate) fn verify(
    bytes: &[u8],
    trust: &TrustStore,
    tenant: &str,
    require_signatures: bool,
) -> Result<VerifiedPackage, String> {
    let policy = if require_signatures {
        SignaturePolicy::Required
    } else {
        SignaturePolicy::Optional
    };
    Package::read(bytes, &ReadLimits::default())
        .map_err(|error| format!("not a usable package: {error}"))?
        .verify(trust, Some(tenant), policy)
        .map_err(|error| format!("verification failed: {error}"))
}

/// Loads the package's artifact for this host and checks it declares what
/// the manifest does.
pub(crate) fn load(
    package: &VerifiedPackage,
    cache: &Path,
    worker_binary: Option<&Path>,
    wasm: &WasmRuntime,
) -> Result<Arc<dyn Plugin>, String> {
    HOST_ABI_VERSION
        .accepts(package.manifest().abi_version())
        .map_err(|error| {
            format!("the manifest asks for an ABI this host does not speak: {error}")
        })?;
    let artifacts = package.manifest().artifacts();
    let native = artifacts
        .iter()
        .find(|a| matches!(&a.kind, ArtifactKind::Native { target } if target == HOST_TARGET));
    let wasm_artifact = artifacts.iter().find(|a| a.kind == ArtifactKind::Wasm);
    let plugin: Arc<dyn Plugin> = match (native, wasm_artifact) {
        (Some(native), _) => {
            let root = package
                .extract_into(cache)
                .map_err(|error| format!("cannot extract into the cache: {error}"))?;
            let library = root.join(native.path.as_str());
            match worker_binary {
                Some(worker) => Arc::new(
                    IsolatedPlugin::load(worker, &library).map_err(|error| error.to_string())?,
                ),
                None => Arc::new(NativePlugin::load(&library).map_err(|error| error.to_string())?),
            }
        }
        (None, Some(component)) => {
            let bytes = package
                .artifact_bytes(&component.path)
                .ok_or("the verified package lacks its own component")?;
            Arc::new(
                wasm.load(bytes, Some(&component.sha256.to_hex()))
                    .map_err(|error| error.to_string())?,
            )
        }
        (None, None) => {
            return Err(format!(
                "no artifact this host can run (no native library for {HOST_TARGET}, no WebAssembly component)"
            ));
        }
    };
    check_declaration(package.manifest().declaration(), plugin.declaration()).map_err(|error| {
        format!("the artifact does not declare what the manifest does: {error}")
    })?;
    Ok(plugin)
}
