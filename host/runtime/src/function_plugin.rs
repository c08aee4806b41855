//! Tasks written as Rust closures: for embedding the runtime in a Rust
//! program, for tests and for benchmarks. They run through the same
//! [`Plugin`] trait as loaded packages.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use cloacina_contract::Declaration;
use cloacina_loader::{CallControl, Plugin, TaskFailure};
use serde_json::Value;

type TaskFn = dyn Fn(Value, &CallControl) -> Result<Value, TaskFailure> + Send + Sync;

/// A set of named closures, each `fn(context, control) -> output`.
#[derive(Default)]
pub struct FunctionPlugin {
    tasks: HashMap<String, Arc<TaskFn>>,
    declaration: Declaration,
}

impl fmt::Debug for FunctionPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.tasks.keys().collect();
        names.sort();
        f.debug_struct("FunctionPlugin")
            .field("tasks", &names)
            .finish()
    }
}

impl FunctionPlugin {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds task `name`.
    pub fn task(
        mut self,
        name: &str,
        run: impl Fn(Value, &CallControl) -> Result<Value, TaskFailure> + Send + Sync + 'static,
    ) -> Self {
        self.tasks.insert(name.to_owned(), Arc::new(run));
        self
    }
}

impl Plugin for FunctionPlugin {
    fn declaration(&self) -> &Declaration {
        &self.declaration
    }

    fn call(
        &self,
        task: &str,
        context: &str,
        control: &CallControl,
    ) -> Result<String, TaskFailure> {
        let run = self
            .tasks
            .get(task)
            .ok_or_else(|| TaskFailure::Fatal(format!("no task named `{task}`")))?;
        let context: Value = serde_json::from_str(context)
            .map_err(|error| TaskFailure::Fatal(format!("invalid context: {error}")))?;
        let output = run(context, control)?;
        Ok(output.to_string())
    }
}
