//! Two computation graphs.
//!
//! `climate` fires when both a temperature and a humidity batch have news:
//! `assess` weighs them (with a window of its own past verdicts) and
//! answers either `hot` or `mild`, which routes the firing to `raise_alert`
//! or `note_mild`; the other is skipped. Every successful firing starts the
//! `notify` workflow, whose context is the firing's inputs and outputs.
//!
//! `counter` fires once per tick, in order: it echoes the count, squares
//! it and says both in words (three nodes, one of them a fan-in).

use cloacina_plugin::{
    BatchFlush, Context, InputStrategy, ReactionMode, TaskError, TaskResult, Value,
    computation_graph, invoked_graph, json, task, workflow,
};

/// At or above this, a reading is hot.
const HOT_CELSIUS: f64 = 30.0;

/// `assess`'s verdict, under `hot` or `mild`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Reading {
    celsius: f64,
    humidity: f64,
}

/// An accumulator's value, or a fatal error saying it has not reported.
fn reported<'c>(ctx: &'c Context, source: &str, shape: &str) -> Result<&'c Value, TaskError> {
    ctx.get(source)
        .filter(|value| !value.is_null())
        .ok_or_else(|| {
            TaskError::fatal(format!(
                "no `{source}` value: the accumulator has not reported yet (expected {shape})"
            ))
        })
}

/// The temperature event's `celsius`.
fn celsius(ctx: &Context) -> Result<f64, TaskError> {
    reported(ctx, "temperature", r#"{"celsius": <number>}"#)?
        .get("celsius")
        .and_then(Value::as_f64)
        .ok_or_else(|| TaskError::fatal("the `temperature` event has no numeric `celsius`"))
}

/// The mean `percent` of the humidity batch.
fn mean_humidity(ctx: &Context) -> Result<f64, TaskError> {
    let batch = reported(ctx, "humidity", r#"an array of {"percent": <number>}"#)?
        .as_array()
        .filter(|batch| !batch.is_empty())
        .ok_or_else(|| TaskError::fatal("`humidity` is not a non-empty array of events"))?;
    let mut sum = 0.0;
    for (index, event) in batch.iter().enumerate() {
        sum += event
            .get("percent")
            .and_then(Value::as_f64)
            .ok_or_else(|| {
                TaskError::fatal(format!(
                    "humidity event {index} has no numeric `percent`: {event}"
                ))
            })?;
    }
    Ok(sum / batch.len() as f64)
}

/// How many past verdicts the `history` window holds (null: none yet).
fn readings(ctx: &Context) -> Result<usize, TaskError> {
    match ctx.get("history") {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Array(past)) => Ok(past.len()),
        Some(other) => Err(TaskError::fatal(format!(
            "`history` is neither null nor an array: {other}"
        ))),
    }
}

/// Classify the latest temperature and humidity: `hot` or `mild`.
#[task]
fn assess(ctx: &Context) -> TaskResult {
    let reading = Reading {
        celsius: celsius(ctx)?,
        humidity: mean_humidity(ctx)?,
    };
    let verdict = if reading.celsius >= HOT_CELSIUS {
        "hot"
    } else {
        "mild"
    };
    Ok(json!({ verdict: reading, "readings": readings(ctx)? }))
}

/// Raise an alert for a hot reading.
#[task]
fn raise_alert(ctx: &Context) -> TaskResult {
    let hot: Reading = ctx.get_as("assess.hot")?;
    Ok(json!({
        "alert": format!("too hot: {} C at {}% humidity", hot.celsius, hot.humidity),
    }))
}

/// Note a mild reading.
#[task]
fn note_mild(ctx: &Context) -> TaskResult {
    let mild: Reading = ctx.get_as("assess.mild")?;
    Ok(json!({ "note": format!("mild: {} C", mild.celsius) }))
}

/// Tell the operator what the climate firing concluded.
#[task]
fn notify_operator(ctx: &Context) -> TaskResult {
    let text = [("raise_alert", "alert"), ("note_mild", "note")]
        .iter()
        .find_map(|(node, field)| ctx.get(node)?.get(field)?.as_str())
        .ok_or_else(|| {
            TaskError::fatal(
                "the context has neither `raise_alert.alert` nor `note_mild.note`: \
                 not a firing of the climate graph",
            )
        })?;
    ctx.log(format!("notifying the operator: {text}"));
    Ok(json!({ "notified": text }))
}

/// Echo the tick's count.
#[task]
fn count(ctx: &Context) -> TaskResult {
    let n = ctx
        .get("ticks")
        .and_then(|tick| tick.get("n"))
        .filter(|n| n.is_i64() || n.is_u64())
        .ok_or_else(|| TaskError::fatal(r#"`ticks` must be an event like {"n": <integer>}"#))?;
    Ok(json!({ "n": n }))
}

/// Square the count.
#[task]
fn square(ctx: &Context) -> TaskResult {
    let n: i64 = ctx
        .get("count")
        .and_then(|count| count.get("n"))
        .and_then(|n| n.as_i64())
        .ok_or_else(|| TaskError::fatal("`count.n` must be an integer"))?;
    Ok(json!({ "square": n.saturating_mul(n) }))
}

/// Say it in words, from the count and its square (a fan-in).
#[task]
fn describe(ctx: &Context) -> TaskResult {
    let n = ctx.get("count").and_then(|count| count.get("n")).cloned();
    let square = ctx.get("square").and_then(|s| s.get("square")).cloned();
    match (n, square) {
        (Some(n), Some(square)) => Ok(json!({ "text": format!("{n} squared is {square}") })),
        _ => Err(TaskError::fatal("`describe` needs `count` and `square`")),
    }
}

/// Read a temperature for the `convert` workflow; the `fahrenheit` graph it
/// invokes then converts it.
#[task(invokes = "fahrenheit")]
fn read_temperature(ctx: &Context) -> TaskResult {
    let celsius = ctx
        .get("celsius")
        .and_then(|c| c.as_f64())
        .ok_or_else(|| TaskError::fatal("the context needs a number `celsius`"))?;
    Ok(json!({ "reading": { "celsius": celsius } }))
}

/// Node of the invoked `fahrenheit` graph.
#[task]
fn to_fahrenheit(ctx: &Context) -> TaskResult {
    let celsius = ctx
        .get("reading")
        .and_then(|r| r.get("celsius"))
        .and_then(|c| c.as_f64())
        .ok_or_else(|| TaskError::fatal("`reading.celsius` must be a number"))?;
    Ok(json!({ "fahrenheit": celsius * 9.0 / 5.0 + 32.0 }))
}

cloacina_plugin::plugin! {
    tasks: [assess, raise_alert, note_mild, notify_operator, count, square, describe, read_temperature, to_fahrenheit],
    workflows: [
        workflow("notify")
            .description("tells the operator what a climate firing concluded")
            .tasks(["notify_operator"]),
        workflow("convert")
            .description("reads a temperature; the graph it invokes converts it")
            .tasks(["read_temperature"]),
    ],
    computation_graphs: [
        computation_graph("climate", ReactionMode::WhenAll, InputStrategy::Latest)
            .description("temperature and humidity -> hot (alert) or mild (note)")
            .passthrough("temperature")
            .batch("humidity", BatchFlush::EveryOrAtSize { ms: 500, size: 3 })
            .state("history", 5, "assess")
            .node("assess", ["temperature", "humidity", "history"])
            .node("raise_alert", ["assess.hot"])
            .node("note_mild", ["assess.mild"])
            .subscribe("notify"),
        computation_graph("counter", ReactionMode::WhenAny, InputStrategy::Sequential)
            .description("one firing per tick, in order: count -> square -> describe")
            .passthrough("ticks")
            .node("count", ["ticks"])
            .node("square", ["count"])
            .node("describe", ["count", "square"]),
    ],
    invoked_graphs: [
        invoked_graph("fahrenheit")
            .description("celsius to fahrenheit, run inside the task that invokes it")
            .inputs(["reading"])
            .node("to_fahrenheit", ["reading"]),
    ],
}

#[cfg(test)]
mod tests {
    use cloacina_plugin::{ErrorKind, json};

    #[test]
    fn a_hot_reading_raises_an_alert_and_skips_the_note() {
        let fired = crate::test_harness()
            .fire(
                "climate",
                json!({
                    "temperature": {"celsius": 31.5},
                    "humidity": [{"percent": 40}, {"percent": 50}],
                    "history": null,
                }),
            )
            .expect("fires");
        assert_eq!(
            fired.outputs["assess"],
            json!({"hot": {"celsius": 31.5, "humidity": 45.0}, "readings": 0})
        );
        assert_eq!(
            fired.outputs["raise_alert"],
            json!({"alert": "too hot: 31.5 C at 45% humidity"})
        );
        assert!(!fired.outputs.contains_key("note_mild"));
        assert_eq!(fired.skipped, ["note_mild"]);
    }

    #[test]
    fn a_mild_reading_is_noted_and_counts_its_history() {
        let fired = crate::test_harness()
            .fire(
                "climate",
                json!({
                    "temperature": {"celsius": 21.5},
                    "humidity": [{"percent": 60}],
                    "history": [{"mild": {"celsius": 20.0, "humidity": 55.0}, "readings": 0},
                                {"hot": {"celsius": 30.0, "humidity": 50.0}, "readings": 1}],
                }),
            )
            .expect("fires");
        assert_eq!(
            fired.outputs["assess"],
            json!({"mild": {"celsius": 21.5, "humidity": 60.0}, "readings": 2})
        );
        assert_eq!(fired.outputs["note_mild"], json!({"note": "mild: 21.5 C"}));
        assert!(!fired.outputs.contains_key("raise_alert"));
        assert_eq!(fired.skipped, ["raise_alert"]);
    }

    #[test]
    fn a_firing_without_humidity_fails_in_assess() {
        let failed = crate::test_harness()
            .fire("climate", json!({"temperature": {"celsius": 25}}))
            .expect_err("no humidity");
        assert_eq!(failed.task, "assess");
        assert_eq!(failed.error.kind, ErrorKind::Fatal);
        assert!(failed.error.message.contains("`humidity`"), "{failed}");
    }

    #[test]
    fn the_invoked_graph_runs_inside_its_task() {
        let done = crate::test_harness()
            .run("convert", json!({"celsius": 100}))
            .expect("converts");
        assert_eq!(done["reading"], json!({"celsius": 100.0}));
        assert_eq!(done["to_fahrenheit"], json!({"fahrenheit": 212.0}));
    }

    #[test]
    fn the_counter_echoes_each_tick() {
        let harness = crate::test_harness();
        let fired = harness
            .fire("counter", json!({"ticks": {"n": 3}}))
            .expect("fires");
        assert_eq!(fired.outputs["count"], json!({"n": 3}));
        assert_eq!(fired.outputs["describe"], json!({"text": "3 squared is 9"}));
        let failed = harness
            .fire("counter", json!({"ticks": {"n": "three"}}))
            .expect_err("not an integer");
        assert_eq!(
            (failed.task.as_str(), failed.error.kind),
            ("count", ErrorKind::Fatal)
        );
    }

    #[test]
    fn notify_tells_the_operator_what_the_firing_concluded() {
        let harness = crate::test_harness();
        let done = harness
            .run(
                "notify",
                json!({
                    "temperature": {"celsius": 31.5},
                    "humidity": [{"percent": 45}],
                    "history": null,
                    "assess": {"hot": {"celsius": 31.5, "humidity": 45.0}, "readings": 0},
                    "raise_alert": {"alert": "too hot: 31.5 C at 45% humidity"},
                    "$firing": {"graph": "climate", "id": 7, "manual": false},
                }),
            )
            .expect("completes");
        assert_eq!(done["notified"], "too hot: 31.5 C at 45% humidity");
        assert_eq!(
            harness.logs(),
            [
                "notify_operator (attempt 1): notifying the operator: too hot: 31.5 C at 45% humidity"
            ]
        );
        let failed = harness
            .run("notify", json!({"assess": {}}))
            .expect_err("neither an alert nor a note");
        assert_eq!(failed.task, "notify_operator");
        assert_eq!(failed.error.kind, ErrorKind::Fatal);
    }
}
