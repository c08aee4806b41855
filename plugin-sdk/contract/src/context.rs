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
//! - A task's output is a JSON object (merged in) or `null` (nothing); any
//!   other value fails the attempt ([`check_output`]).
//!
//! So data flows downstream the way it would through one shared context,
//! and a later-declared dependency wins where two branches disagree. The
//! host's runtime and the SDK's test harness both run by these functions.

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
    merge_all_with(results, Join::LaterWins)
}

/// How a task's dependencies' results are joined into its input (and the
/// final tasks' results into the final context). Objects always merge key
/// by key; the rules differ on arrays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Join {
    /// The later dependency's array replaces the earlier's, like any value.
    #[default]
    LaterWins,
    /// Arrays are united: the earlier's items, then the later's that are
    /// not already there. Parallel branches that each append to a list
    /// join with every entry (cloaca's rule).
    UniteArrays,
}

/// [`merge_all`] under the rule `join`.
pub fn merge_all_with(results: impl IntoIterator<Item = Value>, join: Join) -> Value {
    let mut merged = Value::Object(Map::new());
    for result in results {
        match join {
            Join::LaterWins => merge(&mut merged, result),
            Join::UniteArrays => unite(&mut merged, result),
        }
    }
    merged
}

fn unite(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => unite(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(overlay)) => {
            for item in overlay {
                if !base.contains(&item) {
                    base.push(item);
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Checks a task's output against the contract: a JSON object (merged into
/// the context) or `null` (nothing to add). Anything else would be dropped
/// by the merge, silently losing the task's result, so it fails the
/// attempt instead, naming what came back.
pub fn check_output(task: &str, output: &str) -> Result<(), String> {
    let value = serde_json::from_str::<Value>(output)
        .map_err(|error| format!("task `{task}` returned invalid JSON: {error}"))?;
    let Err(kind) = output_shape(&value) else {
        return Ok(());
    };
    let shown: String = output.chars().take(60).collect();
    Err(format!(
        "task `{task}` returned {kind} ({shown}); a task's output must be a JSON object, merged into the context (or null for nothing): return {{\"name\": value}}"
    ))
}

/// Whether `value` may be a task's output: `Ok` for an object or null,
/// else what it is instead ("a number", ...).
pub fn output_shape(value: &Value) -> Result<(), &'static str> {
    match value {
        Value::Object(_) | Value::Null => Ok(()),
        Value::Bool(_) => Err("a boolean"),
        Value::Number(_) => Err("a number"),
        Value::String(_) => Err("a string"),
        Value::Array(_) => Err("an array"),
    }
}

/// A task's result: its input with its output merged in. A `null` output
/// leaves the input as it was.
pub fn task_result(input: Value, output: Value) -> Value {
    task_result_with(input, output, Output::MergedIntoInput)
}

/// What an object a task returns does to its input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Output {
    /// It is merged into the input (a task adds to the context).
    #[default]
    MergedIntoInput,
    /// It replaces the input: the task returns the whole context, and a
    /// key it removed stays removed (cloaca's rule).
    ReplacesInput,
}

/// [`task_result`] under the rule `rule`; a `null` output is the input.
pub fn task_result_with(mut input: Value, output: Value, rule: Output) -> Value {
    match (output, rule) {
        (output @ Value::Object(_), Output::ReplacesInput) => output,
        (output @ Value::Object(_), Output::MergedIntoInput) => {
            merge(&mut input, output);
            input
        }
        _ => input,
    }
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
    fn uniting_keeps_every_branch_entry_once_in_order() {
        let joined = merge_all_with(
            [
                json!({"seen": ["in", "a"], "n": 1, "deep": {"l": [1]}}),
                json!({"seen": ["in", "b"], "n": 2, "deep": {"l": [2, 1]}}),
            ],
            Join::UniteArrays,
        );
        assert_eq!(
            joined,
            json!({"seen": ["in", "a", "b"], "n": 2, "deep": {"l": [1, 2]}})
        );
    }

    #[test]
    fn only_objects_and_null_are_outputs() {
        assert!(check_output("t", r#"{"a": 1}"#).is_ok());
        assert!(check_output("t", "null").is_ok());
        for (output, kind) in [
            ("31.05", "a number"),
            ("[1]", "an array"),
            ("\"x\"", "a string"),
            ("true", "a boolean"),
        ] {
            let error = check_output("subtotal", output).expect_err("refused");
            assert!(
                error.contains("`subtotal`") && error.contains(kind),
                "{error}"
            );
        }
    }

    #[test]
    fn a_replacing_output_drops_what_the_task_removed() {
        assert_eq!(
            task_result_with(
                json!({"in": 1, "secret": 2}),
                json!({"in": 1, "out": 3}),
                Output::ReplacesInput
            ),
            json!({"in": 1, "out": 3})
        );
        assert_eq!(
            task_result_with(json!({"in": 1}), Value::Null, Output::ReplacesInput),
            json!({"in": 1})
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
