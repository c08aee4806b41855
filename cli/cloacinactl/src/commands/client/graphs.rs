//! `graph list|show|push|fire|pause|resume|firings`: computation graphs
//! on a server.

use std::collections::BTreeSet;
use std::io::{IsTerminal as _, Read as _};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use cloacina_client::{AccumulatorSocket, ClientError, MAX_EVENT_BYTES, Rejection};
use cloacina_wire::graphs::{AccumulatorStatus, FireRequest, Firing, GraphStatus};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::Value;

use super::{connect, or_dash, print};
use crate::cli::{ClientArgs, GraphCommand};
use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output::{self, out};

/// Columns of summaries (outputs, errors) in tables.
const SUMMARY_WIDTH: usize = 60;

pub fn run(command: GraphCommand, json: bool) -> Result<(), Failure> {
    match command {
        GraphCommand::List(client) => list(&client, json),
        GraphCommand::Show { name, client } => show(&name, &client, json),
        GraphCommand::Push {
            accumulator,
            file,
            client,
        } => push(&accumulator, &file, &client, json),
        GraphCommand::Fire {
            name,
            with_inputs,
            client,
        } => fire(&name, with_inputs.as_deref(), &client, json),
        GraphCommand::Pause { name, client } => {
            let paused = connect(&client)?.pause(&name)?;
            print(&paused, json, |v| {
                out!("paused {}: it takes events but does not fire", v.reactor)
            });
            Ok(())
        }
        GraphCommand::Resume { name, client } => {
            let resumed = connect(&client)?.resume(&name)?;
            print(&resumed, json, |v| out!("resumed {}", v.reactor));
            Ok(())
        }
        GraphCommand::Firings {
            name,
            limit,
            client,
        } => firings(&name, limit, &client, json),
    }
}

fn list(client: &ClientArgs, json: bool) -> Result<(), Failure> {
    let listed = connect(client)?.graphs()?;
    print(&listed, json, |v| {
        // A key of no tenant sees every tenant's graphs: say whose.
        let tenants: BTreeSet<Option<&str>> =
            v.items.iter().map(|g| g.tenant_id.as_deref()).collect();
        let tenant_column = tenants.len() > 1;
        let tenant = |g: &GraphStatus| {
            if tenant_column {
                format!("{:<16} ", or_dash(g.tenant_id.as_deref()))
            } else {
                String::new()
            }
        };
        out!(
            "{:<24} {}{:<10} {:<6} {:>7} {:>7}  {:<30} PACKAGE",
            "NAME",
            if tenant_column {
                format!("{:<16} ", "TENANT")
            } else {
                String::new()
            },
            "HEALTH",
            "PAUSED",
            "FIRES",
            "PENDING",
            "LAST FIRED"
        );
        for graph in &v.items {
            out!(
                "{:<24} {}{:<10} {:<6} {:>7} {:>7}  {:<30} {}",
                graph.name,
                tenant(graph),
                health_state(&graph.health),
                yes_no(graph.paused),
                graph.fires,
                graph
                    .pending_events
                    .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                or_dash(graph.last_fired_at.as_deref()),
                package(graph)
            );
        }
        if v.items.is_empty() {
            out!("(no computation graphs: upload a package that declares some)");
        }
    });
    Ok(())
}

/// `graph show --json`: the graph with its accumulators' status.
#[derive(Debug, Serialize)]
struct Shown {
    #[serde(flatten)]
    graph: GraphStatus,
    accumulator_statuses: Vec<AccumulatorStatus>,
}

fn show(name: &str, client: &ClientArgs, json: bool) -> Result<(), Failure> {
    let client = connect(client)?;
    let graph = client.graph(name)?;
    let accumulator_statuses = client
        .accumulators()?
        .items
        .into_iter()
        .filter(|a| {
            let ours = match &a.graph {
                Some(owner) => owner == &graph.name,
                None => graph.accumulators.contains(&a.name),
            };
            ours && (a.tenant_id.is_none() || a.tenant_id == graph.tenant_id)
        })
        .collect();
    let shown = Shown {
        graph,
        accumulator_statuses,
    };
    print(&shown, json, |v| {
        let graph = &v.graph;
        let tenant = graph
            .tenant_id
            .as_deref()
            .map(|t| format!(", tenant {t}"))
            .unwrap_or_default();
        out!(
            "{}: {} (package {}{tenant})",
            graph.name,
            health_state(&graph.health),
            package(graph)
        );
        let details = health_details(&graph.health);
        if !details.is_empty() {
            out!("  health: {details}");
        }
        out!(
            "  reactor {}: {}, {}{}",
            graph.reactor.as_deref().unwrap_or(&graph.name),
            or_dash(graph.reaction_mode.as_deref()),
            or_dash(graph.input_strategy.as_deref()),
            if graph.paused { " (paused)" } else { "" }
        );
        out!(
            "  fires: {}, last {}; events waiting: {}{}",
            graph.fires,
            or_dash(graph.last_fired_at.as_deref()),
            graph
                .pending_events
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            graph
                .restarts
                .filter(|n| *n > 0)
                .map(|n| format!("; restarts: {n}"))
                .unwrap_or_default()
        );
        if let Some(subscriptions) = graph.subscriptions.as_ref().filter(|s| !s.is_empty()) {
            out!("  starts per firing: {}", subscriptions.join(", "));
        }
        out!("  accumulators:");
        for accumulator in &graph.accumulators {
            let status = v
                .accumulator_statuses
                .iter()
                .find(|a| &a.name == accumulator);
            out!(
                "    {:<24} {:<12} {}",
                accumulator,
                or_dash(status.and_then(|a| a.kind.as_deref())),
                status.map_or("-", |a| a.status.as_str())
            );
        }
        if let Some(topology) = &graph.topology {
            out!("  nodes:");
            for node in &topology.nodes {
                if node.inputs.is_empty() {
                    out!("    {}", node.id);
                } else {
                    out!("    {} <- {}", node.id, node.inputs.join(", "));
                }
            }
        }
    });
    Ok(())
}

/// One event of the input: its line (from 1) and its JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line<'a> {
    number: usize,
    text: &'a str,
}

/// The events of a JSON-lines input, every line checked: blank lines are
/// skipped; a line that is not UTF-8, not one JSON document, or over the
/// event limit is an error naming it.
fn json_lines(input: &[u8]) -> anyhow::Result<Vec<Line<'_>>> {
    let mut events = Vec::new();
    for (index, raw) in input.split(|byte| *byte == b'\n').enumerate() {
        let number = index + 1;
        let line = std::str::from_utf8(raw)
            .map_err(|error| anyhow!("line {number}: not UTF-8 text ({error})"))?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text.len() > MAX_EVENT_BYTES {
            return Err(anyhow!(
                "line {number}: {} is over the server's {} event limit",
                output::size(text.len() as u64),
                output::size(MAX_EVENT_BYTES as u64)
            ));
        }
        if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
            // The position is within the line: say the column only, in
            // the line as written.
            let said = error.to_string();
            let said = said
                .rsplit_once(" at line ")
                .map_or(said.as_str(), |(message, _)| message);
            let indent = line.len() - line.trim_start().len();
            return Err(anyhow!(
                "line {number}, column {}: not a JSON document ({said})",
                error.column() + indent
            ));
        }
        events.push(Line { number, text });
    }
    Ok(events)
}

/// `graph push --json`.
#[derive(Debug, Serialize)]
struct Pushed {
    sent: u64,
    acked: u64,
    rejected: Vec<Rejected>,
}

#[derive(Debug, Serialize)]
struct Rejected {
    /// The input line.
    line: usize,
    #[serde(flatten)]
    rejection: Rejection,
}

fn push(accumulator: &str, file: &Path, client: &ClientArgs, json: bool) -> Result<(), Failure> {
    let input = read_input(file, json)?;
    let events = json_lines(&input)
        .with_context(|| format!("{} is not JSON lines", shown_path(file)))
        .classify(FailureKind::Usage)?;
    let client = connect(client)?;
    let mut socket = client.accumulator_socket(accumulator)?;
    let bar = progress(json, events.len() as u64);
    let line_of = |seq: u64| {
        usize::try_from(seq)
            .ok()
            .and_then(|seq| events.get(seq.wrapping_sub(1)))
            .map_or(0, |line| line.number)
    };
    let mut rejected = Vec::new();
    let mut note = |socket: &mut AccumulatorSocket, bar: &ProgressBar| {
        for rejection in socket.take_rejections() {
            let line = line_of(rejection.seq);
            if !json {
                bar.suspend(|| {
                    eprintln!(
                        "line {line}: rejected ({}): {}",
                        rejection.code,
                        output::printable(&rejection.message)
                    )
                });
            }
            rejected.push(Rejected { line, rejection });
        }
        bar.set_position(socket.acked());
    };
    let pushed = (|| {
        for event in &events {
            socket.send(event.text)?;
            note(&mut socket, &bar);
        }
        socket.finish(|acked| bar.set_position(acked))?;
        note(&mut socket, &bar);
        Ok::<_, ClientError>(())
    })();
    bar.finish_and_clear();
    let result = Pushed {
        sent: socket.sent(),
        acked: socket.acked(),
        rejected,
    };
    if let Err(error) = pushed {
        // Scripts learn what is durable (events 1..=acked) before the error.
        if json {
            output::json(&result);
        }
        let durable = match (socket.sent(), socket.acked()) {
            (0, _) => "nothing sent".to_owned(),
            (sent, 0) => format!("none of {sent} events sent acknowledged"),
            (sent, acked) => format!(
                "{acked} of {sent} events sent acknowledged (through line {})",
                line_of(acked)
            ),
        };
        let failure = Failure::from(error);
        return Err(Failure {
            error: failure
                .error
                .context(format!("pushing to {accumulator}: {durable}")),
            ..failure
        });
    }
    let events = |n: u64| {
        if n == 1 {
            "1 event".to_owned()
        } else {
            format!("{n} events")
        }
    };
    print(&result, json, |v| match v.rejected.len() {
        0 => out!("acked {}", events(v.acked)),
        n => out!("acked {}; {n} rejected (not processed)", events(v.acked)),
    });
    if result.rejected.is_empty() {
        return Ok(());
    }
    // Events the server cannot read are the input's fault; a name gone
    // meanwhile is not found.
    let kind = if result
        .rejected
        .iter()
        .any(|r| r.rejection.code == "unknown_accumulator")
    {
        FailureKind::NotFound
    } else if result
        .rejected
        .iter()
        .all(|r| matches!(r.rejection.code.as_str(), "invalid_json" | "too_large"))
    {
        FailureKind::Usage
    } else {
        FailureKind::Other
    };
    Err(anyhow!(
        "the server rejected {} of {} events (lines {})",
        result.rejected.len(),
        result.sent,
        result
            .rejected
            .iter()
            .map(|r| r.line.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .classify(kind)
}

fn read_input(file: &Path, json: bool) -> Result<Vec<u8>, Failure> {
    let mut input = Vec::new();
    if file == Path::new("-") {
        let mut stdin = std::io::stdin().lock();
        if stdin.is_terminal() && !json {
            eprintln!(
                "reading events from standard input, one JSON document per line (Ctrl-D ends)"
            );
        }
        stdin
            .read_to_end(&mut input)
            .context("cannot read standard input")?;
    } else {
        input = std::fs::read(file)
            .with_context(|| format!("cannot read {}", file.display()))
            .classify(FailureKind::Usage)?;
    }
    Ok(input)
}

fn shown_path(file: &Path) -> String {
    if file == Path::new("-") {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    }
}

/// Acked events of `total`, on stderr; hidden with --json (indicatif
/// draws nothing when stderr is not a terminal).
fn progress(json: bool, total: u64) -> ProgressBar {
    let target = if json {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let progress = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} events acked [{elapsed}]")
    {
        progress.set_style(style);
    }
    progress.enable_steady_tick(Duration::from_millis(100));
    progress
}

fn fire(
    name: &str,
    with_inputs: Option<&str>,
    client: &ClientArgs,
    json: bool,
) -> Result<(), Failure> {
    let request = match with_inputs {
        None => FireRequest {
            mode: Some("force_fire".to_owned()),
            inputs: None,
        },
        Some(text) => FireRequest {
            mode: Some("fire_with".to_owned()),
            inputs: Some(fire_inputs(text).classify(FailureKind::Usage)?),
        },
    };
    let fired = connect(client)?.fire(name, &request)?;
    print(&fired, json, |v| {
        let injected = if v.sources_injected.is_empty() {
            String::new()
        } else {
            format!(" {}", v.sources_injected.join(", "))
        };
        let Some(firing) = &v.firing else {
            out!("fired {} ({}{injected})", v.reactor, v.mode);
            return;
        };
        out!(
            "fired {} ({}{injected}): {} in {} (firing {})",
            v.reactor,
            v.mode,
            if firing.ok { "ok" } else { "failed" },
            duration(firing.duration_ms),
            firing.id
        );
        if let Some(error) = &firing.error {
            out!("  error: {}", output::printable(error));
        }
        match &firing.outputs {
            Value::Object(outputs) => {
                for (node, output) in outputs {
                    out!("  {node}: {}", output::printable(&output.to_string()));
                }
            }
            Value::Null => {}
            other => out!("  outputs: {}", output::printable(&other.to_string())),
        }
    });
    match fired.firing {
        Some(firing) if !firing.ok => Err(Failure {
            kind: FailureKind::WorkflowFailed,
            error: anyhow!(
                "firing {} of {name} failed: {}",
                firing.id,
                firing.error.as_deref().unwrap_or("no reason recorded")
            ),
            hint: None,
        }),
        _ => Ok(()),
    }
}

/// `--with`: a JSON object of at least one source's new value.
fn fire_inputs(text: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
    match serde_json::from_str(text).context("--with is not valid JSON")? {
        Value::Object(inputs) if !inputs.is_empty() => Ok(inputs),
        Value::Object(_) => Err(anyhow!(
            "--with names no source: give each source's value, as {{\"SOURCE\": VALUE}}"
        )),
        _ => Err(anyhow!(
            "--with is not a JSON object of sources' values ({{\"SOURCE\": VALUE}})"
        )),
    }
}

fn firings(name: &str, limit: u32, client: &ClientArgs, json: bool) -> Result<(), Failure> {
    let listed = connect(client)?.firings(name, limit)?;
    print(&listed, json, |v| {
        out!(
            "{:>8}  {:<30} {:<4} {:>10}  {:<6} OUTPUT OR ERROR",
            "ID",
            "FIRED AT",
            "OK",
            "DURATION",
            "MANUAL"
        );
        for firing in &v.items {
            out!(
                "{:>8}  {:<30} {:<4} {:>10}  {:<6} {}",
                firing.id,
                firing.fired_at,
                yes_no(firing.ok),
                duration(firing.duration_ms),
                yes_no(firing.manual),
                firing_summary(firing)
            );
        }
        if v.items.is_empty() {
            out!("(no firings yet)");
        }
    });
    Ok(())
}

/// A firing on one line: its error, else its outputs, cut to fit.
fn firing_summary(firing: &Firing) -> String {
    let text = match &firing.error {
        Some(error) => format!("error: {error}"),
        None => firing.outputs.to_string(),
    };
    cut(&output::printable(&text), SUMMARY_WIDTH)
}

/// At most `width` characters, `…` marking a cut.
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut kept: String = text.chars().take(width.saturating_sub(1)).collect();
    kept.push('…');
    kept
}

/// `{"state": "live", ...}`: the state.
fn health_state(health: &Value) -> &str {
    match health {
        Value::String(state) => state,
        other => other.get("state").and_then(Value::as_str).unwrap_or("-"),
    }
}

/// What the health says beside its state, as `key=value`.
fn health_details(health: &Value) -> String {
    let Value::Object(fields) = health else {
        return String::new();
    };
    fields
        .iter()
        .filter(|(key, _)| key.as_str() != "state")
        .map(|(key, value)| {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            format!("{key}={}", output::printable(&value))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `package@version`, or `-`.
fn package(graph: &GraphStatus) -> String {
    match (&graph.source_package, &graph.package_version) {
        (Some(name), Some(version)) => format!("{name}@{version}"),
        (Some(name), None) => name.clone(),
        _ => "-".to_owned(),
    }
}

fn duration(ms: f64) -> String {
    if ms >= 1_000.0 {
        format!("{:.2} s", ms / 1_000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use serde_json::json;

    use super::{Line, cut, fire_inputs, health_state, json_lines};
    use crate::cli::{Cli, Command, GraphCommand};

    #[test]
    fn json_lines_skip_blanks_and_keep_line_numbers() {
        let input = b"{\"n\": 1}\n\n  \r\n[2, 3]\r\n\"four\"\n";
        let events = json_lines(input).expect("valid");
        assert_eq!(
            events,
            [
                Line {
                    number: 1,
                    text: "{\"n\": 1}"
                },
                Line {
                    number: 4,
                    text: "[2, 3]"
                },
                Line {
                    number: 5,
                    text: "\"four\""
                },
            ]
        );
        assert!(json_lines(b"").expect("empty").is_empty());
    }

    #[test]
    fn a_bad_line_is_named() {
        let error = json_lines(b"{\"n\": 1}\n{\"n\": 2\n3\n")
            .expect_err("line 2 is cut short")
            .to_string();
        assert!(
            error.starts_with("line 2, column 7: not a JSON document"),
            "{error}"
        );
        assert!(!error.contains("at line 1"), "{error}");
        let error = json_lines(b"1\n{} {}\n")
            .expect_err("two documents")
            .to_string();
        assert!(error.starts_with("line 2, "), "{error}");
        let error = json_lines(b"  nope\n").expect_err("indented").to_string();
        assert!(error.starts_with("line 1, column 4: "), "{error}");
        let error = json_lines(b"1\n2\n\xff\n")
            .expect_err("not UTF-8")
            .to_string();
        assert!(error.starts_with("line 3: not UTF-8"), "{error}");
    }

    #[test]
    fn an_event_over_the_limit_is_named() {
        let mut input = b"1\n\"".to_vec();
        input.extend(std::iter::repeat_n(b'x', cloacina_client::MAX_EVENT_BYTES));
        input.extend(b"\"\n");
        let error = json_lines(&input).expect_err("too large").to_string();
        assert!(error.starts_with("line 2: 1.0 MiB is over"), "{error}");
    }

    #[test]
    fn fire_with_takes_an_object_of_sources() {
        assert_eq!(
            fire_inputs(r#"{"ticks": {"n": 7}}"#).expect("object")["ticks"],
            json!({"n": 7})
        );
        assert!(fire_inputs("{}").is_err());
        assert!(fire_inputs("[1]").is_err());
        assert!(fire_inputs("{").is_err());
    }

    #[test]
    fn tables_read_health_and_cut_summaries() {
        assert_eq!(health_state(&json!({"state": "live"})), "live");
        assert_eq!(health_state(&json!("crashed")), "crashed");
        assert_eq!(health_state(&json!(null)), "-");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }

    #[test]
    fn graph_commands_parse() {
        let cli = Cli::try_parse_from([
            "cloacinactl",
            "graph",
            "push",
            "temperature",
            "--tenant",
            "acme",
        ])
        .expect("parses");
        let Command::Graph(GraphCommand::Push {
            accumulator,
            file,
            client,
        }) = cli.command
        else {
            panic!("graph push");
        };
        assert_eq!(accumulator, "temperature");
        assert_eq!(file, std::path::Path::new("-"));
        assert_eq!(client.tenant.as_deref(), Some("acme"));

        let cli = Cli::try_parse_from([
            "cloacinactl",
            "--json",
            "graph",
            "fire",
            "counter",
            "--with",
            r#"{"ticks": {"n": 1}}"#,
        ])
        .expect("parses");
        assert!(cli.json);
        assert!(matches!(
            cli.command,
            Command::Graph(GraphCommand::Fire {
                with_inputs: Some(_),
                ..
            })
        ));

        let cli =
            Cli::try_parse_from(["cloacinactl", "graph", "firings", "climate"]).expect("parses");
        assert!(matches!(
            cli.command,
            Command::Graph(GraphCommand::Firings { limit: 20, .. })
        ));
        for limit in ["0", "1001"] {
            assert!(
                Cli::try_parse_from(["cloacinactl", "graph", "firings", "c", "--limit", limit])
                    .is_err(),
                "--limit {limit}"
            );
        }
    }
}
