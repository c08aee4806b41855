//! Native plugins: shared libraries exporting the abi_stable root module,
//! loaded into this process.
//!
//! abi_stable checks the ABI major and every type layout at load. It never
//! unloads a library: a replaced version stays mapped until the process
//! exits (the isolated worker mode, which will make unload and hard timeouts
//! real, is not built yet). Timeouts here are cooperative: the task sees
//! `is_cancelled()` turn true at its deadline.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::path::Path;

use abi_stable::library::{LibraryError, lib_header_from_path};
use abi_stable::std_types::{RResult, RStr};
use cloacina_contract::native::{FfiErrorKind, FfiHost, PluginModuleRef};
use cloacina_contract::{AbiMismatch, AbiVersion, Declaration, HOST_ABI_VERSION};

use crate::{CallControl, LoadError, Plugin, TaskFailure};

/// A loaded native plugin.
pub struct NativePlugin {
    module: PluginModuleRef,
    declaration: Declaration,
    abi: AbiVersion,
}

impl std::fmt::Debug for NativePlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativePlugin")
            .field("abi", &self.abi)
            .field("tasks", &self.declaration.tasks.len())
            .finish_non_exhaustive()
    }
}

impl NativePlugin {
    /// Loads the library at `path` and reads its declaration.
    pub fn load(path: &Path) -> Result<NativePlugin, LoadError> {
        let shown = path.display().to_string();
        // `lib_header_from_path`, not `RootModule::load_from`: the latter
        // caches one library per module type for the whole process.
        let header = lib_header_from_path(path).map_err(|error| classify(&shown, error))?;
        let module = header
            .init_root_module::<PluginModuleRef>()
            .map_err(|error| classify(&shown, error))?;
        let abi = AbiVersion {
            major: HOST_ABI_VERSION.major,
            minor: module.abi_minor(),
        };
        let json = (module.declaration())().into_string();
        let declaration =
            parse_declaration(&json).map_err(|reason| LoadError::InvalidDeclaration {
                path: shown.clone(),
                reason,
            })?;
        tracing::debug!(path = %shown, %abi, tasks = declaration.tasks.len(), "loaded native plugin");
        Ok(NativePlugin {
            module,
            declaration,
            abi,
        })
    }

    /// The ABI version the plugin was built for.
    pub fn abi_version(&self) -> AbiVersion {
        self.abi
    }
}

pub(crate) fn parse_declaration(json: &str) -> Result<Declaration, String> {
    #[derive(serde::Deserialize)]
    struct Refusal {
        declaration_error: String,
    }
    if let Ok(refusal) = serde_json::from_str::<Refusal>(json) {
        return Err(refusal.declaration_error);
    }
    let declaration: Declaration = serde_json::from_str(json).map_err(|error| error.to_string())?;
    declaration.validate().map_err(|error| error.to_string())?;
    Ok(declaration)
}

fn classify(path: &str, error: LibraryError) -> LoadError {
    let path = path.to_owned();
    match error {
        LibraryError::OpenError { err, .. } => LoadError::NotALibrary {
            path,
            reason: err.to_string(),
        },
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin { path },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadError::Abi {
            path,
            source: AbiMismatch {
                plugin: AbiVersion {
                    major: u16::try_from(actual_version.major).unwrap_or(u16::MAX),
                    minor: u16::try_from(actual_version.minor).unwrap_or(u16::MAX),
                },
                host: AbiVersion {
                    major: u16::try_from(expected_version.major).unwrap_or(u16::MAX),
                    minor: HOST_ABI_VERSION.minor,
                },
            },
        },
        other => LoadError::LayoutMismatch {
            path,
            reason: other.to_string(),
        },
    }
}

impl Plugin for NativePlugin {
    fn declaration(&self) -> &Declaration {
        &self.declaration
    }

    fn call(
        &self,
        task: &str,
        context: &str,
        control: &CallControl,
    ) -> Result<String, TaskFailure> {
        let host = FfiHost {
            state: (control as *const CallControl).cast::<c_void>(),
            attempt: control.attempt(),
            log: host_log,
            is_cancelled: host_is_cancelled,
        };
        let outcome =
            (self.module.call_task())(RStr::from_str(task), RStr::from_str(context), &host);
        if let Some(stopped) = control.stop_reason() {
            return Err(stopped);
        }
        match outcome {
            RResult::ROk(output) => crate::checked_output(output.into_string()),
            RResult::RErr(error) => {
                let message = error.message.into_string();
                Err(match error.kind {
                    FfiErrorKind::Retryable => TaskFailure::Retryable(message),
                    FfiErrorKind::Fatal => TaskFailure::Fatal(message),
                })
            }
        }
    }
}

extern "C" fn host_log(state: *const c_void, message: RStr<'_>) {
    // SAFETY: as in `host_is_cancelled`: `state` is the `&CallControl` of
    // the call in progress, alive for as long as the plugin may call back.
    let control = unsafe { &*state.cast::<CallControl>() };
    control.log(message.as_str());
}

extern "C" fn host_is_cancelled(state: *const c_void) -> bool {
    // SAFETY: `state` is the `&CallControl` that `NativePlugin::call` put in
    // the `FfiHost` it passed to the plugin; the plugin may only use it
    // during that call, while the reference is alive, and only by handing
    // it back to these functions.
    let control = unsafe { &*state.cast::<CallControl>() };
    control.should_stop()
}

#[cfg(test)]
mod tests {
    use abi_stable::sabi_types::VersionNumber;

    use super::*;

    #[test]
    fn an_abi_major_mismatch_names_both_versions() {
        let error = classify(
            "libold.so",
            LibraryError::IncompatibleVersionNumber {
                library_name: "cloacina_plugin",
                expected_version: VersionNumber {
                    major: 1,
                    minor: 0,
                    patch: 0,
                },
                actual_version: VersionNumber {
                    major: 2,
                    minor: 0,
                    patch: 0,
                },
            },
        );
        let message = format!(
            "{error}: {}",
            std::error::Error::source(&error)
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        assert!(matches!(error, LoadError::Abi { .. }), "{message}");
        assert!(
            message.contains("libold.so") && message.contains("2.0") && message.contains("1.0"),
            "{message}"
        );
    }
}
