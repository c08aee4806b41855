//! Loading plugin artifacts and calling their tasks.
//!
//! One trait, [`Plugin`], whatever runs the code: load an artifact, read
//! what it declares, call a task with a JSON context under a
//! [`CallControl`] (cancellation and deadline), drop it. Implementations:
//! [`native::NativePlugin`] (abi_stable, in process),
//! [`isolated::IsolatedPlugin`] (the same, in a worker process of its own) and
//! [`wasm::WasmPlugin`] (wasmtime components, sandboxed, a fresh instance per
//! call).
//!
//! Loaders take artifacts from verified packages only; they do not check
//! signatures themselves. [`check_declaration`] is the cross-check between
//! what a manifest declares and what the artifact reports.

mod control;
mod declaration;
pub mod isolated;
pub mod native;
pub mod wasm;

pub use control::{CallControl, LogSink, MAX_LOG_LINE};
pub use declaration::{DeclarationMismatch, check_declaration};

use cloacina_contract::{AbiMismatch, Declaration};

/// A loaded artifact whose tasks can be called.
pub trait Plugin: Send + Sync {
    /// What the artifact itself reports it offers.
    fn declaration(&self) -> &Declaration;

    /// Runs `task` with the JSON `context`, returning its JSON output.
    fn call(&self, task: &str, context: &str, control: &CallControl)
    -> Result<String, TaskFailure>;
}

/// A task's output, once checked to be JSON: plugins are not trusted to
/// keep the contract.
pub(crate) fn checked_output(output: String) -> Result<String, TaskFailure> {
    serde_json::from_str::<serde::de::IgnoredAny>(&output)
        .map_err(|error| TaskFailure::InvalidOutput(format!("not JSON: {error}")))?;
    Ok(output)
}

/// How a task call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskFailure {
    #[error("retryable error: {0}")]
    Retryable(String),
    #[error("fatal error: {0}")]
    Fatal(String),
    #[error("timed out after {0} ms")]
    TimedOut(u64),
    #[error("cancelled")]
    Cancelled,
    #[error("invalid output: {0}")]
    InvalidOutput(String),
}

/// An artifact that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot be opened as a shared library: {reason}")]
    NotALibrary { path: String, reason: String },
    #[error(
        "{path}: not a cloacina plugin (no plugin root module; build it with the cloacina-plugin SDK)"
    )]
    NotAPlugin { path: String },
    #[error("{path}: built for another plugin ABI")]
    Abi {
        path: String,
        #[source]
        source: AbiMismatch,
    },
    #[error("{path}: the plugin's types do not match the host's ABI: {reason}")]
    LayoutMismatch { path: String, reason: String },
    #[error("{path}: the isolated plugin worker failed: {reason}")]
    Worker { path: String, reason: String },
    #[error("the WebAssembly engine failed: {0}")]
    Engine(String),
    #[error("not a valid WebAssembly component: {0}")]
    InvalidComponent(String),
    #[error("the component imports what the host does not grant: {0}")]
    ForbiddenImport(String),
    #[error("{path}: the plugin reports an invalid declaration: {reason}")]
    InvalidDeclaration { path: String, reason: String },
}
