//! Commands for a graph whose reactor runs on another host.
//!
//! The sender writes a row in `graph_commands` and notifies; the owner
//! takes the row (one conditional `UPDATE`, so a command runs once), runs
//! it on its reactor like a local command, writes the reply and notifies
//! back. The sender reads the reply when told, or at the latest every
//! 200 ms, and gives up after the configured timeout. A graph that nobody
//! runs at the moment (a takeover in progress) has its waiting commands
//! run by the host that claims it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cloacina_database::clock;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::GraphError;
use crate::model::{CommandReply, FiringRecord, GraphCommand};
use crate::notify::Note;
use crate::runtime::GraphRuntime;

/// How often a waiting sender reads its reply without being told.
const POLL: Duration = Duration::from_millis(200);

/// Senders waiting for replies, by command id.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Waiters {
    fn register(&self, id: &str) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        self.lock().insert(id.to_owned(), notify.clone());
        notify
    }

    fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    pub fn wake(&self, id: &str) {
        if let Some(waiter) = self.lock().get(id) {
            waiter.notify_one();
        }
    }

    pub fn wake_all(&self) {
        for waiter in self.lock().values() {
            waiter.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
enum WireCommand {
    ForceFire,
    FireWith { values: Map<String, Value> },
    Pause,
    Resume,
    GetState,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
enum WireReply {
    Fired { firing: FiringRecord },
    Paused,
    Resumed,
    State { values: Map<String, Value> },
    Refused { kind: Refusal, message: String },
}

/// The errors a caller tells apart, across hosts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Refusal {
    Paused,
    InvalidInput,
    NotRunning,
    UnknownGraph,
    Other,
}

impl From<GraphCommand> for WireCommand {
    fn from(command: GraphCommand) -> Self {
        match command {
            GraphCommand::ForceFire => WireCommand::ForceFire,
            GraphCommand::FireWith(values) => WireCommand::FireWith { values },
            GraphCommand::Pause => WireCommand::Pause,
            GraphCommand::Resume => WireCommand::Resume,
            GraphCommand::GetState => WireCommand::GetState,
        }
    }
}

impl From<WireCommand> for GraphCommand {
    fn from(command: WireCommand) -> Self {
        match command {
            WireCommand::ForceFire => GraphCommand::ForceFire,
            WireCommand::FireWith { values } => GraphCommand::FireWith(values),
            WireCommand::Pause => GraphCommand::Pause,
            WireCommand::Resume => GraphCommand::Resume,
            WireCommand::GetState => GraphCommand::GetState,
        }
    }
}

fn encode(graph: &str, answer: Result<CommandReply, GraphError>) -> WireReply {
    match answer {
        Ok(CommandReply::Fired(firing)) => WireReply::Fired { firing },
        Ok(CommandReply::Paused) => WireReply::Paused,
        Ok(CommandReply::Resumed) => WireReply::Resumed,
        Ok(CommandReply::State(values)) => WireReply::State { values },
        Err(error) => {
            let kind = match &error {
                GraphError::Paused(_) => Refusal::Paused,
                GraphError::InvalidInput(_) => Refusal::InvalidInput,
                GraphError::NotRunning(_) | GraphError::ShuttingDown | GraphError::Fenced(_) => {
                    Refusal::NotRunning
                }
                GraphError::UnknownGraph(_) => Refusal::UnknownGraph,
                _ => Refusal::Other,
            };
            let message = match error {
                GraphError::InvalidInput(message) => message,
                other => cloacina_contract::explain(&other),
            };
            tracing::debug!(graph, ?kind, %message, "remote command refused");
            WireReply::Refused { kind, message }
        }
    }
}

fn decode(graph: &str, reply: WireReply) -> Result<CommandReply, GraphError> {
    match reply {
        WireReply::Fired { firing } => Ok(CommandReply::Fired(firing)),
        WireReply::Paused => Ok(CommandReply::Paused),
        WireReply::Resumed => Ok(CommandReply::Resumed),
        WireReply::State { values } => Ok(CommandReply::State(values)),
        WireReply::Refused { kind, message } => Err(match kind {
            Refusal::Paused => GraphError::Paused(graph.to_owned()),
            Refusal::InvalidInput => GraphError::InvalidInput(message),
            Refusal::NotRunning => GraphError::NotRunning(graph.to_owned()),
            Refusal::UnknownGraph => GraphError::UnknownGraph(graph.to_owned()),
            Refusal::Other => GraphError::Remote(message),
        }),
    }
}

/// Sends `command` to whichever host runs `graph` and waits for its
/// reply.
pub(crate) async fn send(
    runtime: &GraphRuntime,
    graph: &str,
    command: GraphCommand,
) -> Result<CommandReply, GraphError> {
    let inner = runtime.inner();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let text = serde_json::to_string(&WireCommand::from(command))
        .map_err(|error| GraphError::InvalidInput(error.to_string()))?;
    let waiter = inner.remote.register(&id);
    let sent = sqlx::query(
        "INSERT INTO graph_commands (id, graph, command, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(graph)
    .bind(&text)
    .bind(clock::now_ms())
    .execute(inner.db.pool())
    .await;
    if let Err(error) = sent {
        inner.remote.forget(&id);
        return Err(GraphError::Database {
            doing: "sending a command to a graph's host",
            source: error,
        });
    }
    runtime
        .announce(Note::Command {
            graph: graph.to_owned(),
        })
        .await;
    let timeout = inner.config.remote_command_timeout;
    let answer = tokio::time::timeout(timeout, async {
        loop {
            let reply: Option<Option<String>> =
                sqlx::query_scalar("SELECT reply FROM graph_commands WHERE id = $1")
                    .bind(&id)
                    .fetch_optional(inner.db.pool())
                    .await
                    .map_err(GraphError::db("reading a command's reply"))?;
            if let Some(Some(reply)) = reply {
                return Ok::<_, GraphError>(reply);
            }
            tokio::select! {
                () = waiter.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    })
    .await;
    inner.remote.forget(&id);
    let _ = sqlx::query("DELETE FROM graph_commands WHERE id = $1")
        .bind(&id)
        .execute(inner.db.pool())
        .await;
    match answer {
        Ok(Ok(reply)) => {
            let reply: WireReply = serde_json::from_str(&reply).map_err(|error| {
                GraphError::Corrupt(format!("a command's reply is not valid: {error}"))
            })?;
            decode(graph, reply)
        }
        Ok(Err(error)) => Err(error),
        Err(_) => Err(GraphError::OwnerUnreachable {
            graph: graph.to_owned(),
            waited_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }),
    }
}

/// Runs the commands waiting for `graph`, which this host runs, in the
/// order they were sent.
pub(crate) async fn serve(runtime: GraphRuntime, graph: String) {
    let inner = runtime.inner();
    let waiting: Vec<(String, String)> = match sqlx::query_as(
        "SELECT id, command FROM graph_commands WHERE graph = $1 AND taken_by IS NULL ORDER BY created_at",
    )
    .bind(&graph)
    .fetch_all(inner.db.pool())
    .await
    {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(%graph, error = &error as &dyn std::error::Error, "cannot read commands sent to this host");
            return;
        }
    };
    for (id, text) in waiting {
        let taken = sqlx::query(
            "UPDATE graph_commands SET taken_by = $1 WHERE id = $2 AND taken_by IS NULL",
        )
        .bind(&inner.host)
        .bind(&id)
        .execute(inner.db.pool())
        .await;
        match taken {
            Ok(done) if done.rows_affected() == 1 => {}
            Ok(_) => continue,
            Err(error) => {
                // Left for the next notification or claim to take.
                tracing::warn!(%graph, error = &error as &dyn std::error::Error, "cannot take a command sent to this host");
                return;
            }
        }
        let reply = match serde_json::from_str::<WireCommand>(&text) {
            Ok(command) => encode(&graph, runtime.local_command(&graph, command.into()).await),
            Err(error) => encode(
                &graph,
                Err(GraphError::InvalidInput(format!(
                    "a command from another host is not valid: {error}"
                ))),
            ),
        };
        let reply = match serde_json::to_string(&reply) {
            Ok(reply) => reply,
            Err(error) => {
                tracing::warn!(%graph, %error, "cannot encode a command's reply");
                continue;
            }
        };
        let written = sqlx::query("UPDATE graph_commands SET reply = $1 WHERE id = $2")
            .bind(&reply)
            .bind(&id)
            .execute(inner.db.pool())
            .await;
        match written {
            Ok(_) => runtime.announce(Note::Reply { id }).await,
            Err(error) => {
                tracing::warn!(%graph, error = &error as &dyn std::error::Error, "cannot write a command's reply")
            }
        }
    }
}
