//! The accumulator and reactor sockets.
//!
//! `/v1/ws/accumulator/{name}`: one JSON document per frame (text or
//! binary), each an event for every graph of the tenant with an
//! accumulator of that name. The reader waits for room in the graphs
//! before it reads the next frame, so an overloaded graph slows its
//! producer through TCP instead of dropping events. A client close is a
//! flush barrier: what was read is committed before the close completes.
//! With `?ack=1` the server says `{"type":"ack","seq":N}` (frames 1..=N of
//! this connection are durable; one per commit, cumulative) and
//! `{"type":"rejected","seq":N,"code","message"}` for a frame it will never
//! process. Needs the write role.
//!
//! `/v1/ws/reactor/{name}`: the 0.8 commands (`force_fire`, `fire_with`,
//! `get_state`, `pause`, `resume`), one reply each, sent once the command
//! took effect. Connecting needs read; every command but `get_state` needs
//! write (a denial is an `error` reply; the socket stays open). The graph
//! is looked up per command, so a restarted reactor is always the one
//! driven.
//!
//! Both: an unknown name closes with 4404; a message over the limit with
//! 1009; server stop with 1001 (after a final ack); a revoked key 1008.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, WebSocket};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use cloacina_graphs::{Accepted, CommandReply, GraphCommand, GraphError, GraphRuntime};
use cloacina_host::TenantHost;
use cloacina_wire::graphs::{AccumulatorFrame, ReactorCommand, ReactorReply};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{KeyRecord, Role};
use crate::error::ApiError;
use crate::routes::graphs::acting_tenant;
use crate::state::AppState;
use crate::ws::sockets::OpenSocket;
use crate::ws::upgrade::{
    CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_UNKNOWN, Connected, accept, close,
    close_and_drain, is_too_big, stopped,
};

/// Close code (RFC 6455): the server failed (the database is away).
const CLOSE_SERVER_ERROR: u16 = 1011;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct GraphSocketQuery {
    /// A ticket from `POST /v1/auth/ws-ticket` (or a Bearer header).
    token: Option<String>,
    /// For keys of no tenant: the tenant (default `public`).
    tenant: Option<String>,
    /// Accumulator socket: `1` for acknowledged mode.
    ack: Option<String>,
}

/// Authenticates, checks the role, finds the tenant, upgrades; every
/// refusal is an HTTP answer.
async fn open(
    state: &Arc<AppState>,
    query: &GraphSocketQuery,
    request: axum::extract::Request,
    role: Role,
    message_limit: usize,
) -> Result<
    (
        axum::extract::ws::WebSocketUpgrade,
        KeyRecord,
        OpenSocket,
        Arc<TenantHost>,
    ),
    ApiError,
> {
    let (upgrade, key, socket) =
        accept(state, query.token.as_deref(), request, message_limit).await?;
    crate::auth::Caller {
        key: key.clone(),
        address: None,
    }
    .require(role)?;
    let tenant = acting_tenant(state, &key, query.tenant.as_deref()).await?;
    Ok((upgrade, key, socket, tenant))
}

#[utoipa::path(
    get,
    path = "/v1/ws/accumulator/{name}",
    operation_id = "accumulator_socket",
    summary = "Push events to an accumulator: one JSON document per frame; ?ack=1 for durable acks (AccumulatorFrame)",
    tag = "websockets",
    params(("name" = String, Path, description = "The accumulator's name"), GraphSocketQuery),
    responses((status = 101, description = "Switching protocols"), (status = 403, description = "The key lacks the write role, or the tenant", body = cloacina_wire::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn accumulator_socket(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<GraphSocketQuery>,
    request: axum::extract::Request,
) -> Response {
    let limit = state.limits.max_event_bytes;
    let acked = matches!(query.ack.as_deref(), Some("1" | "true"));
    match open(&state, &query, request, Role::Write, limit).await {
        Ok((upgrade, _, socket, tenant)) => upgrade
            .on_upgrade(move |ws| async move {
                state.metrics.websocket_opened();
                let _connected = Connected(state.clone());
                Producer {
                    ws,
                    state: state.clone(),
                    graphs: tenant.graphs().clone(),
                    name,
                    acked,
                    read: 0,
                    durable: 0,
                    announced: 0,
                    pending: VecDeque::new(),
                    unacked: Vec::new(),
                    rejected: VecDeque::new(),
                    failed: None,
                }
                .serve(state, socket)
                .await;
            })
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// One producer connection of the accumulator socket.
struct Producer {
    ws: WebSocket,
    state: Arc<AppState>,
    graphs: GraphRuntime,
    name: String,
    acked: bool,
    /// Frames read so far (the last frame's number).
    read: u64,
    /// Frames 1..=durable are committed (or rejected).
    durable: u64,
    /// The last ack sent.
    announced: u64,
    /// Accepted frames waiting for their commit, oldest first, with when
    /// they were read.
    pending: VecDeque<(u64, Instant, Accepted)>,
    /// When the frames committed since the last ack were read.
    unacked: Vec<Instant>,
    /// Rejections not sent yet.
    rejected: VecDeque<AccumulatorFrame>,
    /// The first frame that could not be stored: no ack reaches it.
    failed: Option<u64>,
}

/// Why a producer connection ends.
enum End {
    Closed,
    Close(u16, String),
}

impl Producer {
    async fn serve(mut self, state: Arc<AppState>, mut socket: OpenSocket) {
        if !self.graphs.takes_events(&self.name) {
            let reason = format!("accumulator '{}' not registered", self.name);
            close_and_drain(&mut self.ws, CLOSE_UNKNOWN, &reason).await;
            return;
        }
        let mut stopping = state.stopping.clone();
        let end = loop {
            let step = tokio::select! {
                biased;
                () = stopped(&mut stopping) => Err(End::Close(CLOSE_GOING_AWAY, "the server is stopping".into())),
                () = socket.revoked() => Err(End::Close(CLOSE_POLICY, "the key was revoked".into())),
                committed = next_commit(&mut self.pending, &mut self.unacked) => self.committed(committed).await,
                frame = self.ws.recv() => self.frame(frame, &mut stopping, &mut socket).await,
            };
            if let Err(end) = step {
                break end;
            }
        };
        // Whatever was read is committed (or refused) before the close.
        let flushed = self.flush().await;
        match (end, flushed) {
            // The client closed and its close is already answered by the
            // library: drop the connection without completing the
            // handshake, so it sees an abnormal close (1006), not a clean
            // one that would claim everything it sent was stored.
            (End::Closed, Err(error)) => {
                tracing::warn!(accumulator = %self.name, error = &error as &dyn std::error::Error, "events could not be committed after the producer closed; dropping the connection");
            }
            (_, Err(error)) => {
                tracing::warn!(accumulator = %self.name, error = &error as &dyn std::error::Error, "events could not be committed; closing the producer");
                close(
                    &mut self.ws,
                    CLOSE_SERVER_ERROR,
                    "events could not be stored; resend after the last ack",
                )
                .await;
            }
            (End::Closed, Ok(())) => {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    self.ws.send(Message::Close(None)),
                )
                .await;
            }
            (End::Close(code, reason), Ok(())) => {
                close_and_drain(&mut self.ws, code, &reason).await
            }
        }
    }

    /// One frame from the client.
    async fn frame(
        &mut self,
        frame: Option<Result<Message, axum::Error>>,
        stopping: &mut tokio::sync::watch::Receiver<bool>,
        socket: &mut OpenSocket,
    ) -> Result<(), End> {
        let bytes = match frame {
            Some(Ok(Message::Text(text))) => text.as_str().as_bytes().to_vec(),
            Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Ok(()),
            Some(Ok(Message::Close(_))) | None => return Err(End::Closed),
            Some(Err(error)) => {
                let too_big = is_too_big(error);
                return Err(if too_big {
                    End::Close(CLOSE_TOO_BIG, "an event over the size limit".into())
                } else {
                    End::Closed
                });
            }
        };
        self.read += 1;
        let seq = self.read;
        let read_at = Instant::now();
        let event: Value = match serde_json::from_slice(&bytes) {
            Ok(event) => event,
            Err(error) => {
                tracing::debug!(accumulator = %self.name, seq, %error, "a frame that is not JSON");
                self.state.metrics.event_rejected("invalid_json");
                self.reject(seq, "invalid_json", format!("not a JSON document: {error}"));
                return self.announce().await;
            }
        };
        // Waiting for room in the graph (backpressure) still ends at a
        // server stop or a revocation; the frame was not taken.
        let accepted = tokio::select! {
            accepted = self.graphs.accept(&self.name, event) => accepted,
            () = stopped(stopping) => {
                self.read -= 1;
                return Err(End::Close(CLOSE_GOING_AWAY, "the server is stopping".into()));
            }
            () = socket.revoked() => {
                self.read -= 1;
                return Err(End::Close(CLOSE_POLICY, "the key was revoked".into()));
            }
        };
        match accepted {
            Ok(accepted) => {
                self.pending.push_back((seq, read_at, accepted));
                Ok(())
            }
            Err(GraphError::UnknownAccumulator(_)) => {
                self.state.metrics.event_rejected("unknown_accumulator");
                self.reject(
                    seq,
                    "unknown_accumulator",
                    format!("accumulator '{}' is no longer registered", self.name),
                );
                self.announce().await?;
                Err(End::Close(
                    CLOSE_UNKNOWN,
                    format!("accumulator '{}' not registered", self.name),
                ))
            }
            Err(error) => {
                self.failed = Some(seq);
                tracing::warn!(accumulator = %self.name, error = &error as &dyn std::error::Error, "cannot accept an event");
                Err(End::Close(
                    CLOSE_SERVER_ERROR,
                    "events cannot be accepted now; resend after the last ack".into(),
                ))
            }
        }
    }

    fn reject(&mut self, seq: u64, code: &str, message: String) {
        if self.pending.is_empty() {
            self.durable = seq;
        }
        if self.acked {
            self.rejected.push_back(AccumulatorFrame::Rejected {
                seq,
                code: code.to_owned(),
                message,
            });
        }
    }

    async fn committed(&mut self, committed: (u64, Result<usize, GraphError>)) -> Result<(), End> {
        let (seq, outcome) = committed;
        if let Err(error) = outcome {
            self.failed = Some(seq);
            tracing::warn!(accumulator = %self.name, error = &error as &dyn std::error::Error, "events could not be committed");
            return Err(End::Close(
                CLOSE_SERVER_ERROR,
                "events could not be stored; resend after the last ack".into(),
            ));
        }
        self.durable = seq;
        // Everything already committed behind it goes in the same ack.
        while let Some((seq, read_at, front)) = self.pending.front_mut() {
            let (seq, read_at) = (*seq, *read_at);
            match front.try_outcome() {
                Some(Ok(_)) => {
                    self.pending.pop_front();
                    self.durable = seq;
                    self.unacked.push(read_at);
                }
                // Its outcome is taken: it leaves the queue here.
                Some(Err(_)) => {
                    self.pending.pop_front();
                    self.failed = Some(seq);
                    self.announce().await?;
                    return Err(End::Close(
                        CLOSE_SERVER_ERROR,
                        "events could not be stored; resend after the last ack".into(),
                    ));
                }
                None => break,
            }
        }
        if self.pending.is_empty() && self.failed.is_none() {
            self.durable = self.durable.max(self.read);
        }
        self.announce().await
    }

    /// Sends what the client has not been told: rejections, then the ack.
    async fn announce(&mut self) -> Result<(), End> {
        if !self.acked {
            return Ok(());
        }
        while let Some(frame) = self.rejected.pop_front() {
            self.send(&frame).await?;
        }
        // Never past a frame that failed: everything from it on must be
        // resent.
        let durable = match self.failed {
            Some(failed) => self.durable.min(failed - 1),
            None => self.durable,
        };
        if durable > self.announced {
            self.announced = durable;
            self.send(&AccumulatorFrame::Ack { seq: durable }).await?;
            for read_at in self.unacked.drain(..) {
                self.state.metrics.observe_ack(read_at.elapsed());
            }
        }
        Ok(())
    }

    async fn send(&mut self, frame: &AccumulatorFrame) -> Result<(), End> {
        let text = serde_json::to_string(frame).unwrap_or_default();
        self.ws
            .send(Message::Text(text.into()))
            .await
            .map_err(|_| End::Closed)
    }

    /// Waits for every accepted frame's commit and sends the final ack.
    async fn flush(&mut self) -> Result<(), GraphError> {
        let mut outcome = Ok(());
        if self.failed.is_none() {
            while let Some((seq, read_at, accepted)) = self.pending.pop_front() {
                if let Err(error) = accepted.await {
                    self.failed = Some(seq);
                    outcome = Err(error);
                    break;
                }
                self.durable = seq;
                self.unacked.push(read_at);
            }
        }
        if self.failed.is_none() {
            self.durable = self.durable.max(self.read);
        }
        let _ = self.announce().await;
        match (outcome, self.failed) {
            (Err(error), _) => Err(error),
            (Ok(()), Some(_)) => Err(GraphError::ShuttingDown),
            (Ok(()), None) => Ok(()),
        }
    }
}

/// The oldest pending frame's commit (never resolves when none waits).
async fn next_commit(
    pending: &mut VecDeque<(u64, Instant, Accepted)>,
    unacked: &mut Vec<Instant>,
) -> (u64, Result<usize, GraphError>) {
    match pending.front_mut() {
        Some((seq, read_at, accepted)) => {
            let (seq, read_at) = (*seq, *read_at);
            let outcome = (&mut *accepted).await;
            pending.pop_front();
            unacked.push(read_at);
            (seq, outcome)
        }
        None => std::future::pending().await,
    }
}

#[utoipa::path(
    get,
    path = "/v1/ws/reactor/{name}",
    operation_id = "reactor_socket",
    summary = "Drive a graph's reactor: ReactorCommand in, one ReactorReply per command",
    tag = "websockets",
    params(("name" = String, Path, description = "The reactor's (graph's) name"), GraphSocketQuery),
    responses((status = 101, description = "Switching protocols")),
    security(("bearer" = []))
)]
pub async fn reactor_socket(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<GraphSocketQuery>,
    request: axum::extract::Request,
) -> Response {
    let limit = state.limits.max_ws_message_bytes;
    match open(&state, &query, request, Role::Read, limit).await {
        Ok((upgrade, key, socket, tenant)) => upgrade
            .on_upgrade(move |ws| async move {
                state.metrics.websocket_opened();
                let _connected = Connected(state.clone());
                operate(ws, state, key, socket, tenant, name).await;
            })
            .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn operate(
    mut ws: WebSocket,
    state: Arc<AppState>,
    key: KeyRecord,
    mut socket: OpenSocket,
    tenant: Arc<TenantHost>,
    name: String,
) {
    if tenant.graphs().status(&name).is_none() {
        close(
            &mut ws,
            CLOSE_UNKNOWN,
            &format!("reactor '{name}' not registered"),
        )
        .await;
        return;
    }
    let caller = crate::auth::Caller { key, address: None };
    let mut stopping = state.stopping.clone();
    loop {
        let frame = tokio::select! {
            () = stopped(&mut stopping) => {
                close(&mut ws, CLOSE_GOING_AWAY, "the server is stopping").await;
                return;
            }
            () = socket.revoked() => {
                close(&mut ws, CLOSE_POLICY, "the key was revoked").await;
                return;
            }
            frame = ws.recv() => frame,
        };
        let reply = match frame {
            Some(Ok(Message::Text(text))) => {
                command(&caller, tenant.graphs(), &name, text.as_str()).await
            }
            Some(Ok(Message::Binary(_))) => ReactorReply::Error {
                message: "commands are JSON text frames".into(),
            },
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => return,
            Some(Err(error)) => {
                let too_big = is_too_big(error);
                if too_big {
                    close(&mut ws, CLOSE_TOO_BIG, "message too big").await;
                }
                return;
            }
        };
        let text = serde_json::to_string(&reply).unwrap_or_default();
        if ws.send(Message::Text(text.into())).await.is_err() {
            return;
        }
    }
}

/// One reactor command: parsed, authorised, run, answered.
async fn command(
    caller: &crate::auth::Caller,
    graphs: &GraphRuntime,
    name: &str,
    text: &str,
) -> ReactorReply {
    let error = |message: String| ReactorReply::Error { message };
    let command: ReactorCommand = match serde_json::from_str(text) {
        Ok(command) => command,
        Err(parse) => return error(format!("invalid command: {parse}")),
    };
    let (operation, command) = match command {
        ReactorCommand::GetState => ("GetState", GraphCommand::GetState),
        ReactorCommand::ForceFire => ("ForceFire", GraphCommand::ForceFire),
        ReactorCommand::Pause => ("Pause", GraphCommand::Pause),
        ReactorCommand::Resume => ("Resume", GraphCommand::Resume),
        ReactorCommand::FireWith { cache } => {
            let values = cache
                .into_iter()
                .map(|(source, value)| (source, boundary_value(value)))
                .collect();
            ("FireWith", GraphCommand::FireWith(values))
        }
    };
    if operation != "GetState" && caller.require(Role::Write).is_err() {
        return error(format!(
            "operation {operation} not permitted on reactor '{name}': it needs the write role"
        ));
    }
    match graphs.command(name, command).await {
        Ok(CommandReply::Fired(_)) => ReactorReply::Fired,
        Ok(CommandReply::Paused) => ReactorReply::Paused,
        Ok(CommandReply::Resumed) => ReactorReply::Resumed,
        Ok(CommandReply::State(cache)) => ReactorReply::State {
            cache: cache
                .into_iter()
                .map(|(source, value)| (source, value.to_string()))
                .collect::<BTreeMap<_, _>>(),
        },
        Err(GraphError::UnknownGraph(_)) => error(format!("no reactor registered for '{name}'")),
        Err(other) => error(cloacina_contract::explain(&other)),
    }
}

/// A `fire_with` value: the 0.8 byte array of JSON text, a string holding
/// JSON text, or any other JSON value taken as itself.
fn boundary_value(value: Value) -> Value {
    match value {
        Value::Array(items)
            if !items.is_empty() && items.iter().all(|i| i.as_u64().is_some_and(|b| b <= 255)) =>
        {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(|i| i.as_u64())
                .map(|b| b as u8)
                .collect();
            serde_json::from_slice(&bytes).unwrap_or(Value::Array(items))
        }
        Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn fire_with_values_are_read_in_every_0_8_form() {
        let bytes: Vec<u8> = br#"{"c": 31}"#.to_vec();
        assert_eq!(super::boundary_value(json!(bytes)), json!({"c": 31}));
        assert_eq!(
            super::boundary_value(json!("{\"c\": 31}")),
            json!({"c": 31})
        );
        assert_eq!(super::boundary_value(json!("plain")), json!("plain"));
        assert_eq!(super::boundary_value(json!({"c": 1})), json!({"c": 1}));
    }
}
