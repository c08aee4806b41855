//! The native plugin ABI: an abi_stable root module.
//!
//! A native plugin is a cdylib exporting [`PluginModuleRef`] (the authoring
//! SDK does the exporting). abi_stable checks, at load, that the plugin was
//! built for the same ABI major (the root module's version string is
//! `MAJOR.0.0`, see [`ROOT_MODULE_VERSION`]) and that every type reachable
//! from the module has the layout the host expects.
//!
//! The module is a prefix type: later minors append fields after
//! `call_task`, and a host reading an older plugin sees them as absent rather
//! than reading garbage.
//!
//! Values cross as JSON text (`RString`/`RStr`), errors as [`FfiTaskError`]
//! with a kind, never as a bare string; panics never cross (the SDK catches
//! them and returns a fatal error).

use std::ffi::c_void;

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString};
use abi_stable::{StableAbi, declare_root_module_statics};

/// abi_stable's version for the root module. Only the major is compared
/// in practice (see the module docs); it must equal `HOST_ABI_VERSION.major`.
pub const ROOT_MODULE_VERSION: &str = "1.0.0";

/// How a task failed, as the retry policy sees it.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfiErrorKind {
    /// Worth another attempt (subject to the task's retry policy).
    Retryable,
    /// Never retried.
    Fatal,
}

/// A task's failure.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiTaskError {
    pub kind: FfiErrorKind,
    pub message: RString,
}

/// Services the host offers a running task. `state` is the host's own
/// pointer, passed back to each function unchanged; the plugin never
/// dereferences it.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct FfiHost {
    pub state: *const c_void,
    /// Which attempt this call is, counting from 1.
    pub attempt: u32,
    /// Appends a line to the task's log.
    pub log: extern "C" fn(state: *const c_void, message: RStr<'_>),
    /// Whether the host asks the task to stop (timeout or cancellation).
    pub is_cancelled: extern "C" fn(state: *const c_void) -> bool,
}

/// The root module every native plugin exports.
#[repr(C)]
#[derive(StableAbi, Debug)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// The plugin's ABI minor (its major is checked by abi_stable).
    pub abi_minor: u16,
    /// The plugin's declaration as JSON (`cloacina_contract::Declaration`).
    pub declaration: extern "C" fn() -> RString,
    /// Runs task `task` with the JSON `context`; the output is JSON.
    #[sabi(last_prefix_field)]
    pub call_task: extern "C" fn(
        task: RStr<'_>,
        context: RStr<'_>,
        host: &FfiHost,
    ) -> RResult<RString, FfiTaskError>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "cloacina_plugin";
    const NAME: &'static str = "cloacina_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ROOT_MODULE_VERSION);
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_module_major_is_the_host_abi_major() {
        let major: u16 = super::ROOT_MODULE_VERSION
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .expect("numeric major");
        assert_eq!(major, crate::HOST_ABI_VERSION.major);
    }
}
