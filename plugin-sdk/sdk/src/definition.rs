//! Tasks and the plugin as the exports see them: declarations to report,
//! functions to call, and the one place where a task's panic is caught.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use cloacina_contract::manifest::{Declaration, TaskDeclaration};
use serde_json::Value;

use crate::Context;
use crate::declare::{
    ComputationGraphBuilder, CronBuilder, InvokedGraphBuilder, TriggerBuilder, WorkflowBuilder,
};

/// How a failure should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Worth retrying, per the task's retry policy.
    Retryable,
    /// Never retried.
    Fatal,
}

/// A task's failure: a message and a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub kind: ErrorKind,
    pub message: String,
}

impl TaskError {
    pub fn retryable(message: impl Into<String>) -> Self {
        TaskError {
            kind: ErrorKind::Retryable,
            message: message.into(),
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        TaskError {
            kind: ErrorKind::Fatal,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TaskError {}

/// Data that does not parse will not parse on a retry: fatal.
impl From<serde_json::Error> for TaskError {
    fn from(error: serde_json::Error) -> Self {
        TaskError::fatal(error.to_string())
    }
}

/// I/O fails for reasons that pass (a busy disk, a dropped connection):
/// retryable. Map it yourself where a failure is permanent.
impl From<std::io::Error> for TaskError {
    fn from(error: std::io::Error) -> Self {
        TaskError::retryable(error.to_string())
    }
}

/// What a task returns: its output, merged into its dependants' context,
/// or an error. The output is any `Serialize` type that serializes to a
/// JSON object (a struct, a map, `json!({...})`), or `()` / `null` for
/// nothing; `TaskResult` alone means `json!` values.
pub type TaskResult<T = Value> = Result<T, TaskError>;

/// A task's return value as the host receives it: serialized, and checked
/// to be an object or null (anything else would be merged into nothing).
#[doc(hidden)]
pub fn into_output<T: serde::Serialize, E: Into<TaskError>>(
    task: &str,
    result: Result<T, E>,
) -> TaskResult {
    let output = result.map_err(Into::into)?;
    let value = serde_json::to_value(&output).map_err(|error| {
        TaskError::fatal(format!(
            "task `{task}`: its output does not serialize: {error}"
        ))
    })?;
    let Err(kind) = cloacina_contract::context::output_shape(&value) else {
        return Ok(value);
    };
    Err(TaskError::fatal(format!(
        "task `{task}` returned {kind} ({}); a task's output must be a JSON object (a struct, a map, json!({{..}})) or null",
        std::any::type_name::<T>()
    )))
}

/// A task function with its declaration; made by `#[task]`.
#[derive(Debug, Clone, Copy)]
pub struct TaskDefinition {
    id: &'static str,
    declaration_json: &'static str,
    run: fn(&Context<'_>) -> TaskResult,
}

impl TaskDefinition {
    #[doc(hidden)]
    pub fn new(
        id: &'static str,
        declaration_json: &'static str,
        run: fn(&Context<'_>) -> TaskResult,
    ) -> Self {
        TaskDefinition {
            id,
            declaration_json,
            run,
        }
    }

    fn declaration(&self) -> Result<TaskDeclaration, String> {
        serde_json::from_str(self.declaration_json)
            .map_err(|error| format!("task declaration is corrupt: {error}"))
    }
}

/// Everything a plugin offers; made by `plugin!`.
///
/// Calling a task touches only the task table: a WebAssembly host makes a
/// fresh instance per call, so the full declaration is assembled (and
/// validated) only when asked for.
#[derive(Debug)]
pub struct PluginDefinition {
    tasks: Vec<TaskDefinition>,
    extras: Extras,
    declaration: OnceLock<Result<Declaration, String>>,
}

#[derive(Debug)]
struct Extras {
    workflows: Vec<WorkflowBuilder>,
    cron_schedules: Vec<CronBuilder>,
    triggers: Vec<TriggerBuilder>,
    computation_graphs: Vec<ComputationGraphBuilder>,
    invoked_graphs: Vec<InvokedGraphBuilder>,
}

impl PluginDefinition {
    #[doc(hidden)]
    pub fn new(
        tasks: Vec<TaskDefinition>,
        workflows: Vec<WorkflowBuilder>,
        cron_schedules: Vec<CronBuilder>,
        triggers: Vec<TriggerBuilder>,
        computation_graphs: Vec<ComputationGraphBuilder>,
        invoked_graphs: Vec<InvokedGraphBuilder>,
    ) -> Self {
        PluginDefinition {
            tasks,
            extras: Extras {
                workflows,
                cron_schedules,
                triggers,
                computation_graphs,
                invoked_graphs,
            },
            declaration: OnceLock::new(),
        }
    }

    fn assemble(&self) -> Result<Declaration, String> {
        let extras = &self.extras;
        let declaration = Declaration {
            tasks: self
                .tasks
                .iter()
                .map(TaskDefinition::declaration)
                .collect::<Result<_, _>>()?,
            workflows: extras
                .workflows
                .iter()
                .cloned()
                .map(WorkflowBuilder::build)
                .collect::<Result<_, _>>()?,
            cron_schedules: extras
                .cron_schedules
                .iter()
                .cloned()
                .map(CronBuilder::build)
                .collect::<Result<_, _>>()?,
            triggers: extras
                .triggers
                .iter()
                .cloned()
                .map(TriggerBuilder::build)
                .collect::<Result<_, _>>()?,
            computation_graphs: extras
                .computation_graphs
                .iter()
                .cloned()
                .map(ComputationGraphBuilder::build)
                .collect::<Result<_, _>>()?,
            invoked_graphs: extras
                .invoked_graphs
                .iter()
                .cloned()
                .map(InvokedGraphBuilder::build)
                .collect::<Result<_, _>>()?,
        };
        declaration.validate().map_err(|error| error.to_string())?;
        Ok(declaration)
    }

    /// The declaration, or why the plugin's own declaration is invalid.
    pub fn declaration(&self) -> Result<&Declaration, &str> {
        self.declaration
            .get_or_init(|| self.assemble())
            .as_ref()
            .map_err(String::as_str)
    }

    /// The declaration as the wire carries it: the `Declaration` JSON, or
    /// `{"declaration_error": "..."}`.
    pub fn declaration_json(&self) -> String {
        match self.declaration() {
            Ok(declaration) => serde_json::to_string(declaration).unwrap_or_default(),
            Err(error) => serde_json::json!({ "declaration_error": error }).to_string(),
        }
    }

    /// Runs task `task` on a JSON context and returns its JSON output. A
    /// panic in the task becomes a fatal error carrying the panic message.
    pub fn call(
        &self,
        task: &str,
        context_json: &str,
        host: &dyn crate::Host,
    ) -> Result<String, TaskError> {
        let definition = self
            .tasks
            .iter()
            .find(|definition| definition.id == task)
            .ok_or_else(|| TaskError::fatal(format!("this plugin has no task `{task}`")))?;
        let data: Value = serde_json::from_str(context_json)
            .map_err(|error| TaskError::fatal(format!("the context is not valid JSON: {error}")))?;
        let context = Context::new(&data, host);
        let output = catch_unwind(AssertUnwindSafe(|| (definition.run)(&context))).map_err(
            |payload| {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic payload".to_owned());
                TaskError::fatal(format!("task `{task}` panicked: {message}"))
            },
        )??;
        serde_json::to_string(&output)
            .map_err(|error| TaskError::fatal(format!("task output is not serialisable: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(serde::Serialize)]
    struct Subtotal {
        subtotal: f64,
    }

    #[test]
    fn outputs_are_objects_or_null_and_others_are_named() {
        let typed = into_output("sum", Ok::<_, TaskError>(Subtotal { subtotal: 31.05 }));
        assert_eq!(typed, Ok(json!({"subtotal": 31.05})));
        assert_eq!(into_output("none", Ok::<_, TaskError>(())), Ok(Value::Null));
        let bare = into_output("subtotal", Ok::<_, TaskError>(31.05)).expect_err("a number");
        assert_eq!(bare.kind, ErrorKind::Fatal);
        assert!(
            bare.message.contains("`subtotal` returned a number (f64)"),
            "{bare}"
        );
        let list = into_output("l", Ok::<_, TaskError>(json!([1]))).expect_err("an array");
        assert!(list.message.contains("an array"), "{list}");
    }

    #[test]
    fn question_mark_works_on_common_errors_with_a_chosen_kind() {
        fn parse() -> TaskResult {
            let value: Value = serde_json::from_str("{not json")?;
            Ok(value)
        }
        fn read() -> TaskResult {
            std::fs::read("/definitely/not/here")?;
            Ok(Value::Null)
        }
        assert_eq!(parse().expect_err("bad json").kind, ErrorKind::Fatal);
        assert_eq!(read().expect_err("no file").kind, ErrorKind::Retryable);
    }
}
