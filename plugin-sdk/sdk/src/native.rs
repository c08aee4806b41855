//! The native export: the abi_stable root module every native plugin
//! carries, built once here so plugin crates need no FFI code of their own.
//!
//! The module's functions reach the plugin's tasks through
//! `__cloacina_plugin_definition`, which the `plugin!` macro defines in the
//! plugin crate. A plugin that forgets `plugin!` fails to link, naming it.
//!
//! The library header abi_stable looks for must be a symbol of the plugin
//! crate itself (a cdylib exports only its own crate's `#[no_mangle]`
//! items), so `plugin!` defines the static, with the value [`LIB_HEADER`]
//! built here.
#![allow(unsafe_code)]

use abi_stable::library::{
    __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
};
use abi_stable::prefix_type::PrefixTypeTrait as _;
use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};
use cloacina_contract::HOST_ABI_VERSION;
use cloacina_contract::native::{
    FfiErrorKind, FfiHost, FfiTaskError, PluginModule, PluginModuleRef,
};

use crate::{ErrorKind, Host, PluginDefinition};

unsafe extern "Rust" {
    /// Defined by `plugin!` in the plugin crate, with exactly this signature.
    fn __cloacina_plugin_definition() -> &'static PluginDefinition;
}

fn definition() -> &'static PluginDefinition {
    // SAFETY: `plugin!` is the only definer of this symbol and declares it
    // `pub fn __cloacina_plugin_definition() -> &'static PluginDefinition`,
    // the signature declared above; both are compiled by the same compiler
    // into the same library, so the Rust ABI matches.
    unsafe { __cloacina_plugin_definition() }
}

/// The name abi_stable looks the header up by
/// (`abi_stable::library::ROOT_MODULE_LOADER_NAME`); `plugin!` spells it out.
pub const LIB_HEADER_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// The value of the exported library header. A `const`, not a `static`, on
/// purpose: each plugin copies it into a static of its own crate, which is
/// what gets exported.
#[allow(clippy::declare_interior_mutable_const)]
pub const LIB_HEADER: LibHeader =
    // SAFETY: `erased_root_module` returns what `__call_root_module_loader`
    // makes of a `PluginModuleRef`, which is the erased form of the module
    // type named here: the contract `from_constructor` requires. This is the
    // expansion of abi_stable's own `#[export_root_module]`.
    unsafe {
        LibHeader::from_constructor::<PluginModuleRef>(erased_root_module, CheckTypeLayout::Yes)
    };

extern "C" fn erased_root_module() -> RootModuleResult {
    __call_root_module_loader(root_module)
}

fn root_module() -> PluginModuleRef {
    PluginModule {
        abi_minor: HOST_ABI_VERSION.minor,
        declaration,
        call_task,
    }
    .leak_into_prefix()
}

extern "C" fn declaration() -> RString {
    // Never unwind across the boundary, even from the plugin's own init.
    std::panic::catch_unwind(|| definition().declaration_json())
        .unwrap_or_else(|_| {
            r#"{"declaration_error":"building the declaration panicked"}"#.to_owned()
        })
        .into()
}

extern "C" fn call_task(
    task: RStr<'_>,
    context: RStr<'_>,
    host: &FfiHost,
) -> RResult<RString, FfiTaskError> {
    // A task's panic reaches the host as an error carrying its message; the
    // default hook would also print it, with a backtrace, on the host's
    // stderr. This library has its own copy of std, so the hook set here
    // concerns this plugin's panics only.
    static QUIET_PANICS: std::sync::Once = std::sync::Once::new();
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let host = NativeHost(host);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        definition().call(task.as_str(), context.as_str(), &host)
    }));
    match outcome {
        Ok(Ok(output)) => ROk(output.into()),
        Ok(Err(error)) => RErr(FfiTaskError {
            kind: match error.kind {
                ErrorKind::Retryable => FfiErrorKind::Retryable,
                ErrorKind::Fatal => FfiErrorKind::Fatal,
            },
            message: error.message.into(),
        }),
        Err(_) => RErr(FfiTaskError {
            kind: FfiErrorKind::Fatal,
            message: "the plugin panicked outside a task".into(),
        }),
    }
}

struct NativeHost<'a>(&'a FfiHost);

impl Host for NativeHost<'_> {
    fn log(&self, message: &str) {
        (self.0.log)(self.0.state, message.into());
    }

    fn is_cancelled(&self) -> bool {
        (self.0.is_cancelled)(self.0.state)
    }

    fn attempt(&self) -> u32 {
        self.0.attempt
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_header_symbol_is_the_one_abi_stable_loads() {
        assert_eq!(
            super::LIB_HEADER_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
