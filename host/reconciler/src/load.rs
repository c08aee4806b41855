//! From stored bytes to a loaded plugin, each step checked.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cloacina_contract::{ArtifactKind, HOST_ABI_VERSION};
use cloacina_loader::isolated::IsolatedPlugin;
use cloacina_loader::native::NativePlugin;
use cloacina_loader::wasm::WasmRuntime;
use cloacina_loader::{Plugin, check_declaration};
use cloacina_package::{Package, ReadLimits, SignaturePolicy, VerifiedManifest};
use cloacina_signing::TrustStore;
use sha2::{Digest as _, Sha256};

/// The target triple this host runs native artifacts for.
pub(crate) const HOST_TARGET: &str = env!("CLOACINA_HOST_TARGET");

/// The largest WebAssembly component loaded: it is read into memory and
/// compiled, so a hostile manifest must not make the host hold more.
pub(crate) const MAX_COMPONENT_BYTES: u64 = 128 << 20;

/// Verifies `bytes` for `tenant` (the signature when present, or always
/// when `require_signatures`, and every file) while extracting them into
/// the cache, holding nothing but the manifest and signature in memory.
/// Returns the verified manifest and the package's cache directory.
pub(crate) fn verify_and_extract(
    bytes: &[u8],
    trust: &TrustStore,
    tenant: &str,
    require_signatures: bool,
    cache: &Path,
) -> Result<(VerifiedManifest, PathBuf), String> {
    let policy = if require_signatures {
        SignaturePolicy::Required
    } else {
        SignaturePolicy::Optional
    };
    Package::verify_and_extract(
        std::io::Cursor::new(bytes),
        bytes.len() as u64,
        &ReadLimits::default(),
        trust,
        Some(tenant),
        policy,
        cache,
    )
    .map_err(|error| cloacina_contract::explain(&error))
}

/// Loads the package's artifact for this host from its verified cache
/// directory and checks it declares what the manifest does.
pub(crate) fn load(
    package: &VerifiedManifest,
    root: &Path,
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
            let library = root.join(native.path.as_str());
            match worker_binary {
                Some(worker) => Arc::new(
                    IsolatedPlugin::load(worker, &library)
                        .map_err(|error| cloacina_contract::explain(&error))?,
                ),
                None => Arc::new(
                    NativePlugin::load(&library)
                        .map_err(|error| cloacina_contract::explain(&error))?,
                ),
            }
        }
        (None, Some(component)) => {
            if component.size > MAX_COMPONENT_BYTES {
                return Err(format!(
                    "its WebAssembly component is {} MiB, over this host's limit of {} MiB",
                    component.size >> 20,
                    MAX_COMPONENT_BYTES >> 20
                ));
            }
            let path = root.join(component.path.as_str());
            let bytes = std::fs::read(&path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            // The cache is only as trustworthy as the disk: the bytes
            // compiled are the bytes the manifest pins.
            if <[u8; 32]>::from(Sha256::digest(&bytes)) != component.sha256.0 {
                return Err(format!(
                    "{} in the cache differs from the verified package",
                    component.path
                ));
            }
            Arc::new(
                wasm.load(&bytes, Some(&component.sha256.to_hex()))
                    .map_err(|error| cloacina_contract::explain(&error))?,
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
