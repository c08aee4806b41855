//! The WebAssembly export: the component side of `contract/wit/plugin.wit`,
//! built once here so plugin crates need no bindings of their own.
//!
//! wasm32 has no unwinding: a panic traps the instance. The hook installed
//! here reports the panic's message to the host first (`host.panicked`), so
//! the trap still becomes a fatal error that says why.
#![allow(unsafe_code)]

/// Bindings generated from the WIT world.
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../contract/wit",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "cloacina_plugin::wasm::bindings",
    });
}

use bindings::cloacina::plugin::host;
use bindings::{ErrorKind as WitErrorKind, Guest, TaskError as WitTaskError};
use cloacina_contract::HOST_ABI_VERSION;

use crate::{ErrorKind, Host, PluginDefinition};

unsafe extern "Rust" {
    /// Defined by `plugin!` in the plugin crate, with exactly this signature.
    fn __cloacina_plugin_definition() -> &'static PluginDefinition;
}

fn definition() -> &'static PluginDefinition {
    // SAFETY: as in the native export: `plugin!` defines this symbol with
    // the declared signature, in the same library, by the same compiler.
    unsafe { __cloacina_plugin_definition() }
}

/// The component's implementation of the world's exports.
#[derive(Debug)]
pub struct Component;

impl Guest for Component {
    fn abi_minor() -> u16 {
        HOST_ABI_VERSION.minor
    }

    fn declaration() -> String {
        definition().declaration_json()
    }

    fn call_task(task: String, context: String) -> Result<String, WitTaskError> {
        static REPORT_PANICS: std::sync::Once = std::sync::Once::new();
        REPORT_PANICS.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic payload".to_owned());
                host::panicked(&message);
            }));
        });
        definition()
            .call(&task, &context, &WasmHost)
            .map_err(|error| WitTaskError {
                kind: match error.kind {
                    ErrorKind::Retryable => WitErrorKind::Retryable,
                    ErrorKind::Fatal => WitErrorKind::Fatal,
                },
                message: error.message,
            })
    }
}

struct WasmHost;

impl Host for WasmHost {
    fn log(&self, message: &str) {
        host::log(message);
    }

    fn is_cancelled(&self) -> bool {
        host::is_cancelled()
    }

    fn attempt(&self) -> u32 {
        host::attempt()
    }
}
