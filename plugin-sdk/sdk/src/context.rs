//! What a task sees while it runs.

use serde_json::Value;

use crate::TaskError;

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

    /// One top-level key of the context as a `T`: a fatal error naming the
    /// key when it is missing or of another shape, so `?` is enough.
    ///
    /// ```ignore
    /// let orders: Vec<Order> = ctx.get_as("orders")?;
    /// ```
    pub fn get_as<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T, TaskError> {
        let value = self
            .get(key)
            .ok_or_else(|| TaskError::fatal(format!("the context has no `{key}`")))?;
        T::deserialize(value).map_err(|error| {
            TaskError::fatal(format!(
                "`{key}` in the context is not a {}: {error}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// The whole context as a `T` (a struct of the keys the task reads;
    /// unknown keys are ignored unless `T` denies them).
    pub fn input<T: serde::de::DeserializeOwned>(&self) -> Result<T, TaskError> {
        T::deserialize(self.data).map_err(|error| {
            TaskError::fatal(format!(
                "the context is not a {}: {error}",
                std::any::type_name::<T>()
            ))
        })
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ErrorKind;

    struct Quiet;

    impl Host for Quiet {
        fn log(&self, _: &str) {}
        fn is_cancelled(&self) -> bool {
            false
        }
        fn attempt(&self) -> u32 {
            1
        }
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Order {
        id: u32,
        total: f64,
    }

    #[test]
    fn typed_reads_name_the_key_and_the_type() {
        let data = json!({"orders": [{"id": 1, "total": 2.5}], "count": "three"});
        let ctx = Context::new(&data, &Quiet);
        let orders: Vec<Order> = ctx.get_as("orders").expect("typed");
        assert_eq!(orders, vec![Order { id: 1, total: 2.5 }]);
        let missing = ctx.get_as::<u32>("nothing").expect_err("missing");
        assert_eq!(missing.kind, ErrorKind::Fatal);
        assert!(missing.message.contains("`nothing`"), "{missing}");
        let wrong = ctx.get_as::<u32>("count").expect_err("a string");
        assert!(
            wrong.message.contains("`count`") && wrong.message.contains("u32"),
            "{wrong}"
        );
        #[derive(serde::Deserialize)]
        struct Input {
            count: String,
        }
        assert_eq!(ctx.input::<Input>().expect("whole").count, "three");
    }
}
