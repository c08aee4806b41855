//! The HTTP client commands: packages, workflows, executions, tenants and
//! API keys on a running server.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use cloacina_wire::ErrorBody;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cli::{
    ApiKeyCommand, ClientArgs, ExecutionCommand, TenantCommand, UploadArgs, WorkflowCommand,
};
use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output::{self, out};

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// `client.toml`: defaults for the client flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    server: Option<String>,
    api_key: Option<String>,
    tenant: Option<String>,
}

fn profile(path: Option<&PathBuf>) -> Result<Profile, Failure> {
    let explicit = path.is_some();
    let path = match path {
        Some(path) => path.clone(),
        None => match cloacina_defaults::data_dir() {
            Some(home) => home.join("client.toml"),
            None => return Ok(Profile::default()),
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("cannot read the profile {}", path.display()))
            .classify(FailureKind::Usage),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(Profile::default())
        }
        Err(error) => Err(anyhow!(error))
            .with_context(|| format!("cannot read the profile {}", path.display()))
            .classify(FailureKind::Usage),
    }
}

/// A server and a key, resolved.
struct Api {
    agent: ureq::Agent,
    server: String,
    key: String,
    tenant: String,
}

impl Api {
    fn new(client: &ClientArgs) -> Result<Self, Failure> {
        Self::from_parts(
            client.server.clone(),
            client.api_key.clone(),
            client.tenant.clone(),
            client.profile.as_ref(),
        )
    }

    fn from_parts(
        server: Option<String>,
        key: Option<String>,
        tenant: Option<String>,
        profile_path: Option<&PathBuf>,
    ) -> Result<Self, Failure> {
        let profile = profile(profile_path)?;
        let server = server
            .or(profile.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let key = key.or(profile.api_key).ok_or_else(|| Failure {
            kind: FailureKind::Usage,
            error: anyhow!("no API key"),
            hint: Some(
                "give --api-key, set CLOACINA_API_KEY, or put api_key in ~/.cloacina/client.toml",
            ),
        })?;
        let tenant = tenant
            .or(profile.tenant)
            .unwrap_or_else(|| "public".to_owned());
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        Ok(Api {
            agent,
            server,
            key,
            tenant,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    fn tenant_path(&self, rest: &str) -> String {
        format!("/v1/tenants/{}{rest}", self.tenant)
    }

    fn get(&self, path: &str) -> Result<Value, Failure> {
        let response = self
            .agent
            .get(self.url(path))
            .header("authorization", format!("Bearer {}", self.key))
            .call();
        self.answer(response)
    }

    fn delete(&self, path: &str) -> Result<Value, Failure> {
        let response = self
            .agent
            .delete(self.url(path))
            .header("authorization", format!("Bearer {}", self.key))
            .call();
        self.answer(response)
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        let response = self
            .agent
            .post(self.url(path))
            .header("authorization", format!("Bearer {}", self.key))
            .send_json(body);
        self.answer(response)
    }

    fn upload(&self, path: &str, file: &std::path::Path) -> Result<Value, Failure> {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "package.cloacina".to_owned());
        let form = ureq::unversioned::multipart::Form::new().part(
            "file",
            ureq::unversioned::multipart::Part::bytes(&bytes).file_name(&name),
        );
        let response = self
            .agent
            .post(self.url(path))
            .header("authorization", format!("Bearer {}", self.key))
            .send(form);
        self.answer(response)
    }

    /// A 2xx body, or the server's `{error, code}` as a failure whose exit
    /// code follows the status.
    fn answer(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, Failure> {
        let mut response = response
            .with_context(|| format!("cannot reach the server at {}", self.server))
            .classify(FailureKind::Other)?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let body: ErrorBody = serde_json::from_value(body.clone()).unwrap_or(ErrorBody {
            error: text_of(&body),
            code: "unknown".to_owned(),
            reason: None,
        });
        let kind = match (body.reason, status) {
            (Some(reason), _) => FailureKind::of_refusal(reason),
            (None, 400 | 413 | 415) => FailureKind::Usage,
            (None, 401 | 403) => FailureKind::Denied,
            (None, 404) => FailureKind::NotFound,
            (None, 409) => FailureKind::Conflict,
            (None, 429 | 503) => FailureKind::Unavailable,
            (None, _) => FailureKind::Other,
        };
        Err(Failure {
            kind,
            error: anyhow!("the server answered {status} {}: {}", body.code, body.error),
            hint: (status == 401).then_some("check the API key (--api-key or CLOACINA_API_KEY)"),
        })
    }
}

/// A body that is not the JSON error shape, as text.
fn text_of(body: &Value) -> String {
    match body {
        Value::String(text) if !text.is_empty() => text.clone(),
        Value::String(_) | Value::Null => "no details".to_owned(),
        other => other.to_string(),
    }
}

fn print(value: &Value, json: bool, human: impl FnOnce(&Value)) {
    if json {
        output::json(value);
    } else {
        human(value);
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

pub fn upload(args: UploadArgs, json: bool) -> Result<(), Failure> {
    let api = Api::from_parts(
        args.server,
        args.api_key,
        Some(args.tenant),
        args.profile.as_ref(),
    )?;
    let uploaded = api.upload(&api.tenant_path("/workflows"), &args.file)?;
    print(&uploaded, json, |v| {
        let what = if v["created"] == false {
            "already registered"
        } else {
            "registered"
        };
        out!(
            "{what} {} {} for tenant {} on {} (it loads in the background: `cloacinactl workflow show`)",
            text(&v["package_name"]),
            text(&v["version"]),
            text(&v["tenant_id"]),
            api.server
        );
    });
    Ok(())
}

pub fn package_list(client: ClientArgs, json: bool) -> Result<(), Failure> {
    let api = Api::new(&client)?;
    let listed = api.get(&api.tenant_path("/workflows"))?;
    print(&listed, json, |v| {
        out!(
            "{:<24} {:<12} {:<24} {:<8} TASKS",
            "PACKAGE",
            "VERSION",
            "WORKFLOW",
            "STATUS"
        );
        for item in v["items"].as_array().into_iter().flatten() {
            // `*`: the version new executions of the workflow start on.
            let live = if item["live"] == true { " *" } else { "" };
            out!(
                "{:<24} {:<12} {:<24} {:<8} {}",
                text(&item["package_name"]),
                format!("{}{live}", text(&item["version"])),
                text(&item["workflow_name"]),
                text(&item["status"]["status"]),
                dag_line(&item["task_graph"])
            );
        }
        out!("(* live: new executions start on this version)");
    });
    Ok(())
}

/// A workflow's DAG on one line, stage by stage: `a -> (b, c) -> d`.
fn dag_line(graph: &Value) -> String {
    let nodes: Vec<(String, Vec<String>)> = graph
        .as_array()
        .into_iter()
        .flatten()
        .map(|node| {
            let dependencies = node["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            (text(&node["id"]), dependencies)
        })
        .collect();
    // A task's stage: one past its latest dependency's.
    let mut stage: std::collections::BTreeMap<&str, usize> = Default::default();
    for _ in 0..nodes.len() {
        for (id, dependencies) in &nodes {
            let at = dependencies
                .iter()
                .filter_map(|d| stage.get(d.as_str()).map(|s| s + 1))
                .max()
                .unwrap_or(0);
            stage.insert(id, at);
        }
    }
    let stages = stage.values().max().map_or(0, |last| last + 1);
    (0..stages)
        .map(|at| {
            let here: Vec<&str> = nodes
                .iter()
                .map(|(id, _)| id.as_str())
                .filter(|id| stage.get(id) == Some(&at))
                .collect();
            match here.as_slice() {
                [one] => (*one).to_owned(),
                many => format!("({})", many.join(", ")),
            }
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

pub fn package_delete(
    name: &str,
    version: &str,
    cancel: bool,
    client: ClientArgs,
    json: bool,
) -> Result<(), Failure> {
    let api = Api::new(&client)?;
    let path = api.tenant_path(&format!("/workflows/{name}/{version}?cancel={cancel}"));
    let deleted = api.delete(&path)?;
    print(&deleted, json, |v| {
        let running: Vec<String> = v["running_executions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        out!("deleted {name} {version}");
        if !running.is_empty() {
            let what = if v["cancelled"] == true {
                "cancelled"
            } else {
                "finishing on it"
            };
            out!("executions {what}: {}", running.join(", "));
        }
    });
    Ok(())
}

pub fn workflow(command: WorkflowCommand, json: bool) -> Result<(), Failure> {
    match command {
        WorkflowCommand::Run {
            name,
            context,
            follow,
            version,
            client,
        } => {
            let context: Value = serde_json::from_str(&context)
                .context("--context is not valid JSON")
                .classify(FailureKind::Usage)?;
            let api = Api::new(&client)?;
            let mut body = json!({ "context": context });
            if let Some(version) = version {
                body["version"] = Value::String(version);
            }
            let started = api.post(
                &api.tenant_path(&format!("/workflows/{name}/execute")),
                &body,
            )?;
            let id = text(&started["execution_id"]);
            if !follow {
                print(&started, json, |_| out!("started {name}: execution {id}"));
                return Ok(());
            }
            if !json {
                out!("started {name}: execution {id}");
            }
            follow_events(&api, &id, json)
        }
        WorkflowCommand::Show { name, client } => {
            let api = Api::new(&client)?;
            let detail = api.get(&api.tenant_path(&format!("/workflows/{name}")))?;
            print(&detail, json, |v| {
                out!(
                    "{} (package {} {}): {}",
                    text(&v["workflow_name"]),
                    text(&v["package_name"]),
                    text(&v["version"]),
                    text(&v["build_status"])
                );
                if let Some(error) = v["build_error"].as_str() {
                    out!("  error: {error}");
                }
                for task in v["task_graph"].as_array().into_iter().flatten() {
                    let after: Vec<String> = task["dependencies"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(text)
                        .collect();
                    if after.is_empty() {
                        out!("  {}", text(&task["id"]));
                    } else {
                        out!("  {}  (after {})", text(&task["id"]), after.join(", "));
                    }
                }
            });
            Ok(())
        }
    }
}

/// Prints the execution's events as they are pushed on the delivery
/// socket until the terminal one (falling back to polling the events route
/// when the socket cannot be opened); exit 7 when it did not complete.
fn follow_events(api: &Api, id: &str, json: bool) -> Result<(), Failure> {
    let mut seen = 0i64;
    match follow_socket(api, id, json, &mut seen) {
        Ok(Some(end)) => return finish(api, id, &end, json),
        Ok(None) => {}
        Err(error) => tracing::debug!(%error, "the delivery socket failed; polling instead"),
    }
    let path = api.tenant_path(&format!("/executions/{id}/events"));
    loop {
        let events = api.get(&path)?;
        for event in events["events"].as_array().into_iter().flatten() {
            if event["sequence_num"].as_i64().unwrap_or(0) <= seen {
                continue;
            }
            seen = event["sequence_num"].as_i64().unwrap_or(seen);
            if let Some(end) = show_event(event, json) {
                return finish(api, id, &end, json);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An event's data: JSON text on the wire, parsed.
fn event_data(event: &Value) -> Value {
    match &event["event_data"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or_default(),
        other => other.clone(),
    }
}

/// Prints one event (a task's log line as `[task#attempt] message`); the
/// terminal event's type when it is one.
fn show_event(event: &Value, json: bool) -> Option<String> {
    if json {
        output::json(event);
    } else if event["event_type"] == "task_log" {
        let data = event_data(event);
        out!(
            "      {}",
            output::task_log_line(
                &text(&event["task_name"]),
                &text(&data["attempt"]),
                &text(&data["message"])
            )
        );
    } else {
        let task = event["task_name"]
            .as_str()
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        out!(
            "{:>4}  {}{task}",
            text(&event["sequence_num"]),
            text(&event["event_type"])
        );
    }
    match event["event_type"].as_str() {
        Some(end @ ("workflow_completed" | "workflow_failed" | "workflow_cancelled")) => {
            Some(end.to_owned())
        }
        _ => None,
    }
}

/// After the terminal event: the final context (exit 0), or the failing
/// task and its error (exit 7).
fn finish(api: &Api, id: &str, end: &str, json: bool) -> Result<(), Failure> {
    let execution = api.get(&api.tenant_path(&format!("/executions/{id}")))?;
    if end == "workflow_completed" {
        if !json {
            out!(
                "completed on {} {}; final context:",
                text(&execution["package_name"]),
                text(&execution["package_version"])
            );
            out!(
                "{}",
                serde_json::to_string_pretty(&execution["final_context"]).unwrap_or_default()
            );
        }
        return Ok(());
    }
    let failed = execution["failed_task"]
        .as_str()
        .map(|task| format!(" in task `{task}`"))
        .unwrap_or_default();
    Err(Failure {
        kind: FailureKind::WorkflowFailed,
        error: anyhow!(
            "execution {id} ended {}{failed}: {}",
            text(&execution["status"]),
            text(&execution["error"])
        ),
        hint: None,
    })
}

/// Follows `exec_events:<id>` on the delivery socket (a fresh ticket,
/// hello, push, ack). Some(terminal event type) when it ended there;
/// `seen` is the last sequence number shown.
fn follow_socket(
    api: &Api,
    id: &str,
    json: bool,
    seen: &mut i64,
) -> anyhow::Result<Option<String>> {
    use base64::Engine as _;
    use tungstenite::Message;

    let ticket = api
        .post("/v1/auth/ws-ticket", &json!({}))
        .map_err(|failure| failure.error)?;
    let ticket = ticket["ticket"].as_str().context("no ticket")?.to_owned();
    let base = api
        .server
        .strip_prefix("http")
        .map(|rest| format!("ws{rest}"))
        .context("the server URL is not http(s)")?;
    let url = format!("{base}/v1/ws/delivery/exec_events:{id}?token={ticket}");
    let (mut socket, _) =
        tungstenite::connect(url.as_str()).context("opening the delivery socket")?;
    socket.send(Message::text(
        json!({"type": "hello", "protocol_version": 1, "since_id": null}).to_string(),
    ))?;
    loop {
        let frame = match socket.read()? {
            Message::Text(frame) => frame,
            Message::Close(_) => return Ok(None),
            _ => continue,
        };
        let frame: Value = serde_json::from_str(frame.as_str())?;
        if frame["type"] != "push" {
            continue;
        }
        let payload = base64::engine::general_purpose::STANDARD
            .decode(frame["payload_b64"].as_str().unwrap_or_default())?;
        let event: Value = serde_json::from_slice(&payload)?;
        socket.send(Message::text(
            json!({"type": "ack", "protocol_version": 1, "id": frame["id"]}).to_string(),
        ))?;
        let sequence = event["sequence_num"].as_i64().unwrap_or(0);
        if sequence <= *seen {
            continue;
        }
        *seen = sequence;
        if let Some(end) = show_event(&event, json) {
            let _ = socket.close(None);
            return Ok(Some(end));
        }
    }
}

pub fn execution(command: ExecutionCommand, json: bool) -> Result<(), Failure> {
    match command {
        ExecutionCommand::List {
            status,
            workflow,
            limit,
            offset,
            client,
        } => {
            let api = Api::new(&client)?;
            let mut query = format!("?limit={limit}&offset={offset}");
            if let Some(status) = status {
                query.push_str(&format!("&status={status}"));
            }
            if let Some(workflow) = workflow {
                query.push_str(&format!("&workflow={workflow}"));
            }
            let listed = api.get(&api.tenant_path(&format!("/executions{query}")))?;
            print(&listed, json, |v| {
                out!(
                    "{:<36}  {:<20} {:<10} {:<10} {:<30} COMPLETED",
                    "ID",
                    "WORKFLOW",
                    "VERSION",
                    "STATUS",
                    "STARTED"
                );
                for item in v["items"].as_array().into_iter().flatten() {
                    out!(
                        "{:<36}  {:<20} {:<10} {:<10} {:<30} {}",
                        text(&item["id"]),
                        text(&item["workflow_name"]),
                        text(&item["package_version"]),
                        text(&item["status"]),
                        text(&item["started_at"]),
                        text(&item["completed_at"])
                    );
                }
                out!(
                    "({} of {})",
                    v["items"].as_array().map_or(0, Vec::len),
                    text(&v["total"])
                );
            });
            Ok(())
        }
        ExecutionCommand::Show { id, client } => {
            let api = Api::new(&client)?;
            let mut detail = api.get(&api.tenant_path(&format!("/executions/{id}")))?;
            let tasks = api.get(&api.tenant_path(&format!("/executions/{id}/tasks")))?;
            detail["tasks"] = tasks["tasks"].clone();
            print(&detail, json, |v| {
                out!(
                    "{} {} ({} {}): {}",
                    text(&v["workflow_name"]),
                    text(&v["execution_id"]),
                    text(&v["package_name"]),
                    text(&v["package_version"]),
                    text(&v["status"])
                );
                if let Some(error) = v["error"].as_str() {
                    out!("  error: {error}");
                }
                for task in v["tasks"].as_array().into_iter().flatten() {
                    out!(
                        "  {:<24} {:<10} attempt {}/{}",
                        text(&task["task_name"]),
                        text(&task["status"]),
                        text(&task["attempt"]),
                        text(&task["max_attempts"])
                    );
                }
                if !v["final_context"].is_null() {
                    out!("  result: {}", v["final_context"]);
                }
            });
            Ok(())
        }
        ExecutionCommand::Events { id, client } => {
            let api = Api::new(&client)?;
            let events = api.get(&api.tenant_path(&format!("/executions/{id}/events")))?;
            print(&events, json, |v| {
                for event in v["events"].as_array().into_iter().flatten() {
                    let task = event["task_name"]
                        .as_str()
                        .map(|t| format!(" {t}"))
                        .unwrap_or_default();
                    out!(
                        "{:>4}  {}  {}{task}",
                        text(&event["sequence_num"]),
                        text(&event["created_at"]),
                        text(&event["event_type"])
                    );
                }
            });
            Ok(())
        }
        ExecutionCommand::Logs { id, client } => {
            let api = Api::new(&client)?;
            let events = api.get(&api.tenant_path(&format!("/executions/{id}/events")))?;
            let lines: Vec<Value> = events["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|event| event["event_type"] == "task_log")
                .map(|event| {
                    let data = event_data(event);
                    json!({
                        "sequence_num": event["sequence_num"],
                        "created_at": event["created_at"],
                        "task": event["task_name"],
                        "attempt": data["attempt"],
                        "message": data["message"],
                    })
                })
                .collect();
            print(&json!({"execution_id": id, "lines": lines}), json, |v| {
                for line in v["lines"].as_array().into_iter().flatten() {
                    out!(
                        "{}",
                        output::task_log_line(
                            &text(&line["task"]),
                            &text(&line["attempt"]),
                            &text(&line["message"])
                        )
                    );
                }
            });
            Ok(())
        }
    }
}

pub fn tenant(command: TenantCommand, json: bool) -> Result<(), Failure> {
    match command {
        TenantCommand::Create {
            name,
            password,
            client,
        } => {
            let api = Api::new(&client)?;
            let created = api.post("/v1/tenants", &json!({"name": name, "password": password}))?;
            print(&created, json, |v| {
                out!("created tenant {}", text(&v["name"]))
            });
        }
        TenantCommand::List(client) => {
            let api = Api::new(&client)?;
            let listed = api.get("/v1/tenants")?;
            print(&listed, json, |v| {
                for item in v["items"].as_array().into_iter().flatten() {
                    out!("{}", text(&item["name"]));
                }
            });
        }
        TenantCommand::Remove { name, client } => {
            let api = Api::new(&client)?;
            let removed = api.delete(&format!("/v1/tenants/{name}"))?;
            print(&removed, json, |v| {
                out!(
                    "removed tenant {name} ({} keys revoked)",
                    text(&v["revoked_keys"])
                )
            });
        }
    }
    Ok(())
}

/// `api-key create --home/--database-url`: the key written into the
/// host's database directly.
fn offline_key(
    host: &crate::cli::HostArgs,
    name: &str,
    role: &str,
    for_tenant: Option<&str>,
    god: bool,
    json: bool,
) -> Result<(), Failure> {
    let role: cloacina_server::Role = role
        .parse()
        .map_err(|error: String| anyhow::anyhow!(error))
        .classify(FailureKind::Usage)?;
    let tenant = for_tenant.map(super::host::tenant).transpose()?;
    // A mistyped --home must not mint a key into a new, empty database
    // that no server reads.
    let url = host.url()?;
    if let Ok(cloacina_runtime::DatabaseUrl::Sqlite(path)) =
        cloacina_runtime::DatabaseUrl::parse(&url)
        && !path.is_file()
    {
        return Err(anyhow::anyhow!(
            "no host database at {}: give the --home (or --database-url) of an existing host",
            path.display()
        ))
        .classify(FailureKind::Usage);
    }
    let created = super::host::block_on(async {
        let db = host.open(&cloacina_runtime::TenantId::public()).await?;
        let created = cloacina_server::create_key_offline(&db, name, role, tenant, god)
            .await
            .classify(FailureKind::Usage);
        db.close().await;
        created
    })??;
    let report = json!({
        "id": created.id.to_string(),
        "name": name.trim(),
        "key": created.plaintext,
        "permissions": created.role.as_str(),
        "tenant_id": created.tenant.as_ref().map(ToString::to_string),
        "is_admin": created.god,
    });
    print(&report, json, |v| {
        out!("{}", text(&v["key"]));
        eprintln!(
            "created {}key {} ({}, {}) in the host's database — the line above is its only showing",
            if created.god { "god-mode " } else { "" },
            text(&v["id"]),
            text(&v["permissions"]),
            v["tenant_id"].as_str().unwrap_or("all tenants")
        );
    });
    Ok(())
}

pub fn api_key(command: ApiKeyCommand, json: bool) -> Result<(), Failure> {
    match command {
        ApiKeyCommand::Create {
            name,
            role,
            for_tenant,
            god,
            home,
            database_url,
            client,
        } => {
            if home.is_some() || database_url.is_some() {
                let host = crate::cli::HostArgs { home, database_url };
                return offline_key(&host, &name, &role, for_tenant.as_deref(), god, json);
            }
            if god {
                return Err(anyhow::anyhow!(
                    "--god keys are made in the host's database: add --home DIR or --database-url URL"
                ))
                .classify(FailureKind::Usage);
            }
            let api = Api::new(&client)?;
            let path = match &for_tenant {
                Some(tenant) => format!("/v1/tenants/{tenant}/keys"),
                None => "/v1/auth/keys".to_owned(),
            };
            let created = api.post(&path, &json!({"name": name, "role": role}))?;
            print(&created, json, |v| {
                out!("{}", text(&v["key"]));
                eprintln!(
                    "created key {} ({}, {}) — the line above is its only showing",
                    text(&v["id"]),
                    text(&v["permissions"]),
                    v["tenant_id"].as_str().unwrap_or("all tenants")
                );
            });
        }
        ApiKeyCommand::List(client) => {
            let api = Api::new(&client)?;
            let listed = api.get("/v1/auth/keys")?;
            print(&listed, json, |v| {
                out!(
                    "{:<36}  {:<20} {:<6} {:<16} STATE",
                    "ID",
                    "NAME",
                    "ROLE",
                    "TENANT"
                );
                for key in v["items"].as_array().into_iter().flatten() {
                    out!(
                        "{:<36}  {:<20} {:<6} {:<16} {}",
                        text(&key["id"]),
                        text(&key["name"]),
                        text(&key["permissions"]),
                        key["tenant_id"].as_str().unwrap_or("(all)"),
                        if key["revoked"] == true {
                            "revoked"
                        } else {
                            "active"
                        }
                    );
                }
            });
        }
        ApiKeyCommand::Revoke { id, client } => {
            let api = Api::new(&client)?;
            let revoked = api.delete(&format!("/v1/auth/keys/{id}"))?;
            print(&revoked, json, |_| out!("revoked key {id}"));
        }
    }
    Ok(())
}
