//! What a task sees while it runs.

use serde_json::Value;

/// The host's services, as the SDK's exports adapt them.
pub trait Host {
    fn log(&self, message: &str);
    fn is_cancelled(&self) -> bool;
    /// Which attempt this call is, counting from 1.
    fn attempt(&self) -> u32;
}

/// A task's input: the JSON context (the execution's input for a root
/// task, the merged outputs of its dependencies otherwise), and the host.
pub struct Context<'a> {
    data: &'a Value,
    host: &'a dyn Host,
}

impl<'a> Context<'a> {
    pub fn new(data: &'a Value, host: &'a dyn Host) -> Self {
        Context { data, host }
    }

    /// The whole context.
    pub fn data(&self) -> &Value {
        self.data
    }

    /// One top-level key of the context.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    /// Writes a line to the task's log on the host.
    pub fn log(&self, message: impl AsRef<str>) {
        self.host.log(message.as_ref());
    }

    /// Which attempt at this task this is, counting from 1.
    pub fn attempt(&self) -> u32 {
        self.host.attempt()
    }

    /// Whether the host asks this task to stop (its timeout passed, or the
    /// execution was cancelled). Long tasks should check it and return.
    pub fn is_cancelled(&self) -> bool {
        self.host.is_cancelled()
    }
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("data", self.data)
            .finish_non_exhaustive()
    }
}
