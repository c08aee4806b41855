//! The JSON context merge: the input is a sequence of JSON values
//! (whitespace between them, as in the corpus files), taken as the results
//! a task's dependencies returned, in order. The merge must do what
//! `cloacina_contract::context` documents, checked here against the rule as
//! written rather than against the code.

use cloacina_contract::context::{
    Join, Output, check_output, merge, merge_all, merge_all_with, output_shape, task_result,
    task_result_with,
};
use serde_json::{Map, Value};

/// Values read from one input: enough for any pairing, bounded so a long
/// input does not make the quadratic checks slow.
const MAX_VALUES: usize = 8;

pub fn check(bytes: &[u8]) {
    let values: Vec<Value> = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .take(MAX_VALUES)
        .collect();

    for pair in values.windows(2) {
        let (base, overlay) = (&pair[0], &pair[1]);
        let mut merged = base.clone();
        merge(&mut merged, overlay.clone());
        assert_merged(base, overlay, &merged);

        // Joined from an empty context, the first result is itself.
        let united = merge_all_with([base.clone(), overlay.clone()], Join::UniteArrays);
        assert_united(base, overlay, &united);

        check_task_result(base, overlay);
    }

    for value in &values {
        // Merging a value into itself changes nothing.
        let mut same = value.clone();
        merge(&mut same, value.clone());
        assert_eq!(&same, value, "merging a value into itself changed it");
        // Into an empty context, an object is itself.
        if value.is_object() {
            assert_eq!(&merge_all([value.clone()]), value);
        }
        // The output contract: objects and null only, as text or as a value.
        let text = value.to_string();
        assert_eq!(
            check_output("fuzz", &text).is_ok(),
            output_shape(value).is_ok(),
            "check_output and output_shape disagree on {text}"
        );
        assert_eq!(
            output_shape(value).is_ok(),
            value.is_object() || value.is_null()
        );
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = check_output("fuzz", text);
    }

    // Several results: objects merge key by key, so no key of any is lost.
    if !values.is_empty() && values.iter().all(Value::is_object) {
        let merged = merge_all(values.clone());
        let keys = merged.as_object().expect("objects merge into an object");
        for key in values
            .iter()
            .filter_map(Value::as_object)
            .flat_map(Map::keys)
        {
            assert!(keys.contains_key(key), "key `{key}` lost in the merge");
        }
    }
}

/// `merged` is `overlay` merged into `base` by the documented rule:
/// objects key by key, recursively; on any other pair the overlay wins.
fn assert_merged(base: &Value, overlay: &Value, merged: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            let merged = merged
                .as_object()
                .expect("two objects merge into an object");
            assert_eq!(
                merged.len(),
                base.keys()
                    .chain(overlay.keys().filter(|k| !base.contains_key(*k)))
                    .count(),
                "the merge has keys of neither side"
            );
            for (key, value) in merged {
                match (base.get(key), overlay.get(key)) {
                    (Some(base), Some(overlay)) => assert_merged(base, overlay, value),
                    (Some(only), None) | (None, Some(only)) => {
                        assert_eq!(value, only, "key `{key}` of one side changed in the merge");
                    }
                    (None, None) => panic!("key `{key}` came from neither side"),
                }
            }
        }
        _ => assert_eq!(merged, overlay, "the later value does not win"),
    }
}

/// `united` is `overlay` joined to `base` uniting arrays: as the merge,
/// except that two arrays give the base's items, then the overlay's that
/// were not there yet, each once.
fn assert_united(base: &Value, overlay: &Value, united: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            let united = united
                .as_object()
                .expect("two objects unite into an object");
            for (key, value) in united {
                match (base.get(key), overlay.get(key)) {
                    (Some(base), Some(overlay)) => assert_united(base, overlay, value),
                    (Some(only), None) | (None, Some(only)) => assert_eq!(value, only),
                    (None, None) => panic!("key `{key}` came from neither side"),
                }
            }
            assert!(
                base.keys()
                    .chain(overlay.keys())
                    .all(|k| united.contains_key(k))
            );
        }
        (Value::Array(base), Value::Array(overlay)) => {
            let united = united.as_array().expect("two arrays unite into an array");
            assert_eq!(
                &united[..base.len()],
                &base[..],
                "uniting changed the base's items"
            );
            let added = &united[base.len()..];
            for (at, item) in added.iter().enumerate() {
                assert!(!base.contains(item), "an item added twice");
                assert!(!added[..at].contains(item), "an item added twice");
            }
            assert!(
                overlay.iter().all(|item| united.contains(item)),
                "an item lost"
            );
        }
        _ => assert_eq!(united, overlay, "the later value does not win"),
    }
}

/// A task's result: its input with an object output merged in (or replacing
/// it, cloaca's rule); any other output leaves the input as it was.
fn check_task_result(input: &Value, output: &Value) {
    let merged = task_result(input.clone(), output.clone());
    let replaced = task_result_with(input.clone(), output.clone(), Output::ReplacesInput);
    if output.is_object() {
        let mut expected = input.clone();
        merge(&mut expected, output.clone());
        assert_eq!(merged, expected);
        assert_eq!(&replaced, output);
    } else {
        assert_eq!(&merged, input, "a non-object output changed the input");
        assert_eq!(&replaced, input, "a non-object output changed the input");
    }
}
