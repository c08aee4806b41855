//! How contexts flow through a DAG.
//!
//! - A root task (no dependencies) receives the execution's input context.
//! - Every task's *result* is its input context with its output merged in.
//! - A task with dependencies receives the merge of its dependencies'
//!   results, taken in the order the dependencies are declared: objects are
//!   merged key by key, recursively; on any other conflict the later
//!   dependency's value wins.
//! - The execution's final context is the merge, in topological order, of
//!   the results of its final tasks (those nothing depends on).
//!
//! So data flows downstream the way it would through one shared context,
//! and a later-declared dependency wins where two branches disagree.

use serde_json::{Map, Value};

/// Merges `overlay` into `base` by the rule above.
pub fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => merge_objects(base, overlay),
        (base, overlay) => *base = overlay,
    }
}

fn merge_objects(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match base.get_mut(&key) {
            Some(existing) => merge(existing, value),
            None => {
                base.insert(key, value);
            }
        }
    }
}

/// The merge of several results, in order, starting from an empty object.
pub fn merge_all(results: impl IntoIterator<Item = Value>) -> Value {
    let mut merged = Value::Object(Map::new());
    for result in results {
        merge(&mut merged, result);
    }
    merged
}

/// A task's result: its input with its output merged in. An output that is
/// not an object (say `null`) leaves the input as it was.
pub fn task_result(mut input: Value, output: Value) -> Value {
    if output.is_object() {
        merge(&mut input, output);
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_merge_recursively_and_later_wins() {
        let merged = merge_all([
            json!({"a": 1, "nested": {"x": 1, "y": 1}, "list": [1]}),
            json!({"b": 2, "nested": {"y": 2}, "list": [2, 3]}),
        ]);
        assert_eq!(
            merged,
            json!({"a": 1, "b": 2, "nested": {"x": 1, "y": 2}, "list": [2, 3]})
        );
    }

    #[test]
    fn a_result_keeps_the_input() {
        assert_eq!(
            task_result(json!({"in": 1}), json!({"out": 2})),
            json!({"in": 1, "out": 2})
        );
        assert_eq!(task_result(json!({"in": 1}), Value::Null), json!({"in": 1}));
    }
}
