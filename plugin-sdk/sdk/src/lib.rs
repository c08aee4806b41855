//! Write cloacina workflow plugins.
//!
//! ```ignore
//! use cloacina_plugin::{Context, TaskResult, json, task, workflow};
//!
//! /// Produce the raw numbers.
//! #[task(timeout_ms = 5000)]
//! fn extract(_ctx: &Context) -> TaskResult {
//!     Ok(json!({ "numbers": [1, 2, 3] }))
//! }
//!
//! #[task(dependencies = [extract], retry(max_attempts = 3, backoff = "exponential", delay_ms = 100))]
//! fn sum(ctx: &Context) -> TaskResult {
//!     let numbers = ctx.get("numbers").and_then(|n| n.as_array()).cloned().unwrap_or_default();
//!     Ok(json!({ "sum": numbers.iter().filter_map(|n| n.as_i64()).sum::<i64>() }))
//! }
//!
//! cloacina_plugin::plugin! {
//!     tasks: [extract, sum],
//!     workflows: [workflow("numbers").tasks(["extract", "sum"])],
//! }
//! ```
//!
//! The same source builds a native plugin (a cdylib exporting the abi_stable
//! root module, for the host triple) or a WebAssembly component (for wasm32),
//! selected by the build target alone. [`testing`] runs it in tests without
//! either: `crate::test_harness()`, defined by `plugin!`.

mod context;
mod declare;
mod definition;
#[cfg(not(target_family = "wasm"))]
#[doc(hidden)]
pub mod native;
#[cfg(not(target_family = "wasm"))]
pub mod testing;
#[cfg(target_family = "wasm")]
#[doc(hidden)]
pub mod wasm;

pub use cloacina_contract::firing::FiringOutcome;
pub use cloacina_contract::manifest::{AccumulatorKind, CatchUp, InputStrategy, ReactionMode};
pub use cloacina_plugin_macros::task;
pub use context::{Context, Host};
pub use declare::{
    BatchFlush, ComputationGraphBuilder, CronBuilder, InvokedGraphBuilder, TriggerBuilder,
    WorkflowBuilder, computation_graph, cron, invoked_graph, trigger, workflow,
};
#[doc(hidden)]
pub use definition::into_output;

/// Compile-time string equality, for `#[task]`'s dependency check.
#[doc(hidden)]
pub const fn __same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut at = 0;
    while at < a.len() {
        if a[at] != b[at] {
            return false;
        }
        at += 1;
    }
    true
}
pub use definition::{ErrorKind, PluginDefinition, TaskDefinition, TaskError, TaskResult};
pub use serde_json::{Value, json};

#[doc(hidden)]
pub mod __private {
    #[cfg(not(target_family = "wasm"))]
    pub use abi_stable::library::LibHeader;
}

/// Declares the plugin: its tasks (functions marked `#[task]`) and what it
/// offers besides (workflows, cron schedules, triggers, computation graphs).
/// Invoke once, at the crate root.
#[macro_export]
macro_rules! plugin {
    (
        tasks: [$($($task:ident)::+),* $(,)?]
        $(, workflows: [$($workflow:expr),* $(,)?])?
        $(, cron_schedules: [$($cron:expr),* $(,)?])?
        $(, triggers: [$($trigger:expr),* $(,)?])?
        $(, computation_graphs: [$($graph:expr),* $(,)?])?
        $(, invoked_graphs: [$($invoked:expr),* $(,)?])?
        $(,)?
    ) => {
        /// The plugin's definition, read by the SDK's native and WebAssembly
        /// exports. Defined by `plugin!`; do not call.
        /// The abi_stable library header of this native plugin; its name is
        /// `cloacina_plugin::native::LIB_HEADER_SYMBOL`.
        #[cfg(not(target_family = "wasm"))]
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::__private::LibHeader =
            $crate::native::LIB_HEADER;

        #[cfg(target_family = "wasm")]
        const _: () = {
            use $crate::wasm::Component as CloacinaComponent;
            $crate::wasm::bindings::export_plugin!(CloacinaComponent with_types_in $crate::wasm::bindings);
        };

        /// This plugin in the SDK's test harness: call a task, or run a
        /// workflow's DAG, in process, by the host's rules.
        #[cfg(not(target_family = "wasm"))]
        pub fn test_harness() -> $crate::testing::Harness {
            $crate::testing::Harness::new(__cloacina_plugin_definition())
        }

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub fn __cloacina_plugin_definition() -> &'static $crate::PluginDefinition {
            static DEFINITION: ::std::sync::OnceLock<$crate::PluginDefinition> =
                ::std::sync::OnceLock::new();
            DEFINITION.get_or_init(|| {
                $crate::PluginDefinition::new(
                    ::std::vec![$($($task)::+::definition()),*],
                    ::std::vec![$($($crate::WorkflowBuilder::from($workflow)),*)?],
                    ::std::vec![$($($crate::CronBuilder::from($cron)),*)?],
                    ::std::vec![$($($crate::TriggerBuilder::from($trigger)),*)?],
                    ::std::vec![$($($crate::ComputationGraphBuilder::from($graph)),*)?],
                    ::std::vec![$($($crate::InvokedGraphBuilder::from($invoked)),*)?],
                )
            })
        }
    };
}
