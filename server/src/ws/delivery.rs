//! The delivery socket (`/v1/ws/delivery/{recipient}`), protocol 1:
//! the client says `hello`, the server answers `welcome` and pushes; the
//! client acks each push by id. Delivery is at least once: a push not
//! acked is pushed again on the next connection; acked ones are not.
//!
//! Recipient `exec_events:<execution id>` streams that execution's events
//! (all of them, also those before the connection), in order; push ids are
//! the events' sequence numbers. Acks are kept per tenant and recipient,
//! so no key can mark another tenant's pushes as delivered.
//!
//! Bounds, each with its close code:
//! - the execution must be visible to the key (in its tenant; any tenant
//!   for a global key) within a short grace, else 4404 before any welcome
//!   (an execution of another tenant looks exactly like an unknown one);
//! - a message or frame over the limit: 1009;
//! - a first frame that is not a hello (pings aside): 4400; another
//!   protocol version: 4426;
//! - after the last event the socket idles for a while, then 1000;
//! - server stopping: 1001; the key revoked: 1008.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use cloacina_runtime::{ExecutionId, Runner, TenantId};
use cloacina_wire::executions::ExecutionEvent;
use cloacina_wire::ws::{PROTOCOL_VERSION, ServerFrame};
use tokio::sync::mpsc;

use crate::auth::KeyRecord;
use crate::routes::executions::wire_event;
use crate::state::AppState;
use crate::ws::sockets::OpenSocket;
use crate::ws::upgrade::{
    CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_POLICY, CLOSE_PROTOCOL, CLOSE_TOO_BIG, CLOSE_UNKNOWN,
    CLOSE_UNSUPPORTED_VERSION, Connected, HELLO_TIMEOUT, Incoming, TicketQuery, accept, close,
    receive, stopped,
};

/// Recipients whose acks are remembered; beyond, the oldest are forgotten
/// (their pushes may come again: at least once).
const MAX_RECIPIENTS: usize = 10_000;

/// What each recipient of each tenant acked.
#[derive(Debug, Default)]
pub struct Deliveries {
    acked: Mutex<HashMap<(TenantId, String), Acked>>,
}

#[derive(Debug, Default)]
struct Acked {
    /// Every id up to this one is acked (pruned from `above`).
    through: i64,
    above: BTreeSet<i64>,
}

impl Deliveries {
    fn ack(&self, tenant: &TenantId, recipient: &str, id: i64) {
        let mut acked = self.lock();
        let key = (tenant.clone(), recipient.to_owned());
        if acked.len() >= MAX_RECIPIENTS
            && !acked.contains_key(&key)
            && let Some(evicted) = acked.keys().next().cloned()
        {
            acked.remove(&evicted);
        }
        let entry = acked.entry(key).or_default();
        if id > entry.through {
            entry.above.insert(id);
        }
        while entry.above.remove(&(entry.through + 1)) {
            entry.through += 1;
        }
    }

    fn is_acked(&self, tenant: &TenantId, recipient: &str, id: i64) -> bool {
        self.lock()
            .get(&(tenant.clone(), recipient.to_owned()))
            .is_some_and(|acked| id <= acked.through || acked.above.contains(&id))
    }

    /// A removed tenant's streams are forgotten.
    pub fn forget_tenant(&self, tenant: &TenantId) {
        self.lock().retain(|(owner, _), _| owner != tenant);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, String), Acked>> {
        self.acked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[utoipa::path(
    get,
    path = "/v1/ws/delivery/{recipient}",
    operation_id = "delivery_socket",
    summary = "The delivery WebSocket: exec_events:<execution id> (ClientFrame / ServerFrame)",
    tag = "websockets",
    params(("recipient" = String, Path, description = "exec_events:<execution id>"), ("token" = Option<String>, Query, description = "A ticket from POST /v1/auth/ws-ticket (or a Bearer header)")),
    responses((status = 101, description = "Switching protocols: JSON frames (ClientFrame in, ServerFrame out)")),
    security(("bearer" = []))
)]
pub async fn delivery(
    State(state): State<Arc<AppState>>,
    Path(recipient): Path<String>,
    Query(query): Query<TicketQuery>,
    request: axum::extract::Request,
) -> Response {
    let limit = state.limits.max_ws_message_bytes;
    match accept(&state, query.token.as_deref(), request, limit).await {
        Ok((upgrade, key, open)) => upgrade
            .on_upgrade(move |socket| serve(socket, state, key, recipient, open))
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// The id a client frame acks, if it is an ack (`ClientFrame::Ack`, read
/// leniently: its version is not checked once the hello was).
fn acked_id(text: &str) -> Option<i64> {
    let frame: serde_json::Value = serde_json::from_str(text).ok()?;
    (frame["type"] == "ack").then(|| frame["id"].as_i64())?
}

/// A frame as sent: its JSON text.
fn frame_text(frame: &ServerFrame) -> String {
    serde_json::to_string(frame).unwrap_or_default()
}

/// The first text frame, pings and pongs skipped.
async fn hello(socket: &mut WebSocket) -> Result<String, (u16, &'static str)> {
    loop {
        match receive(socket).await {
            Incoming::Text(text) => return Ok(text),
            Incoming::Ignored => {}
            Incoming::TooBig => return Err((CLOSE_TOO_BIG, "message too big")),
            Incoming::Gone => return Err((CLOSE_PROTOCOL, "expected a hello")),
        }
    }
}

async fn serve(
    mut socket: WebSocket,
    state: Arc<AppState>,
    key: KeyRecord,
    recipient: String,
    mut open: OpenSocket,
) {
    state.metrics.websocket_opened();
    let _connected = Connected(state.clone());

    let mut stopping = state.stopping.clone();
    let opened = tokio::select! {
        opened = open_stream(&mut socket, &state, &key, &recipient) => opened,
        () = stopped(&mut stopping) => Err((CLOSE_GOING_AWAY, "the server is stopping".to_owned())),
        () = open.revoked() => Err((CLOSE_POLICY, "the key was revoked".to_owned())),
    };
    let (runner, execution) = match opened {
        Ok(opened) => opened,
        Err((code, reason)) => return close(&mut socket, code, &reason).await,
    };
    let tenant = runner.tenant().clone();

    let (events, mut incoming) = mpsc::channel::<(ExecutionEvent, i64)>(256);
    let follower = tokio::spawn(follow(runner, execution, events));
    let welcome = ServerFrame::Welcome {
        protocol_version: PROTOCOL_VERSION,
        max_known_id: 0,
    };
    if socket
        .send(Message::Text(frame_text(&welcome).into()))
        .await
        .is_err()
    {
        follower.abort();
        return;
    }
    // The ids pushed on this socket: the only ones it may ack.
    let mut pushed = std::collections::HashSet::new();
    // Set once the last event has been pushed.
    let mut ended: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            () = stopped(&mut stopping) => {
                close(&mut socket, CLOSE_GOING_AWAY, "the server is stopping").await;
                break;
            }
            () = open.revoked() => {
                close(&mut socket, CLOSE_POLICY, "the key was revoked").await;
                break;
            }
            () = async {
                match ended.as_mut() {
                    Some(idle) => idle.await,
                    None => std::future::pending().await,
                }
            } => {
                close(&mut socket, CLOSE_NORMAL, "the execution has ended").await;
                break;
            }
            frame = receive(&mut socket) => match frame {
                Incoming::Text(text) => {
                    // Only what this socket pushed can be acked: nobody
                    // marks events delivered before they exist.
                    if let Some(id) = acked_id(&text)
                        && pushed.contains(&id)
                    {
                        state.deliveries.ack(&tenant, &recipient, id);
                    }
                }
                Incoming::Ignored => {}
                Incoming::TooBig => {
                    close(&mut socket, CLOSE_TOO_BIG, "message too big").await;
                    break;
                }
                Incoming::Gone => break,
            },
            event = incoming.recv(), if ended.is_none() => {
                let Some((payload, id)) = event else {
                    // The follower has sent the last event.
                    ended = Some(Box::pin(tokio::time::sleep(state.limits.idle_after_end)));
                    continue;
                };
                if state.deliveries.is_acked(&tenant, &recipient, id) {
                    continue;
                }
                let push = ServerFrame::Push {
                    protocol_version: PROTOCOL_VERSION,
                    id,
                    kind: "exec_event".to_owned(),
                    recipient: recipient.clone(),
                    tenant_id: Some(tenant.to_string()),
                    payload_b64: base64::engine::general_purpose::STANDARD
                        .encode(serde_json::to_vec(&payload).unwrap_or_default()),
                };
                if socket.send(Message::Text(frame_text(&push).into())).await.is_err() {
                    break;
                }
                pushed.insert(id);
            }
        }
    }
    follower.abort();
}

/// Everything before the welcome: a hello with a version this server
/// speaks, a recipient it knows, and an execution the key may see.
/// Otherwise the close code and reason.
async fn open_stream(
    socket: &mut WebSocket,
    state: &AppState,
    key: &KeyRecord,
    recipient: &str,
) -> Result<(Runner, ExecutionId), (u16, String)> {
    let refuse = |code: u16, reason: &str| Err((code, reason.to_owned()));
    let text = match tokio::time::timeout(HELLO_TIMEOUT, hello(socket)).await {
        Ok(Ok(text)) => text,
        Ok(Err((code, reason))) => return refuse(code, reason),
        Err(_) => return refuse(CLOSE_PROTOCOL, "expected a hello"),
    };
    // Read leniently (the fields that decide, whatever else the frame
    // holds): a hello that speaks another version, however written, is told
    // so (4426), not taken for garbage.
    let hello: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if hello["type"] != "hello" {
        return refuse(CLOSE_PROTOCOL, "expected a hello");
    }
    if hello["protocol_version"].as_u64() != Some(u64::from(PROTOCOL_VERSION)) {
        return refuse(
            CLOSE_UNSUPPORTED_VERSION,
            &format!("protocol version {PROTOCOL_VERSION} only"),
        );
    }
    let Some(execution) = recipient
        .strip_prefix("exec_events:")
        .and_then(|id| id.parse::<ExecutionId>().ok())
    else {
        return refuse(CLOSE_UNKNOWN, "unknown recipient");
    };
    match visible_execution(state, key, execution).await {
        Some(runner) => Ok((runner, execution)),
        None => refuse(CLOSE_UNKNOWN, "no such execution for this key"),
    }
}

/// The runner holding `execution`, if the key may see it: in the key's
/// tenant, or any tenant for a global key. An execution just started may
/// not be visible yet, so this looks again (less and less often) until
/// the grace period is over.
async fn visible_execution(
    state: &AppState,
    key: &KeyRecord,
    execution: ExecutionId,
) -> Option<Runner> {
    let deadline = tokio::time::Instant::now() + state.limits.unknown_execution_grace;
    let mut pause = Duration::from_millis(100);
    loop {
        let tenants = match &key.tenant {
            Some(tenant) => vec![tenant.clone()],
            None => state.host.tenants().await.unwrap_or_default(),
        };
        for tenant in tenants {
            if let Ok(Some(host)) = state.host.existing_tenant(&tenant).await
                && host.runner().status(execution).await.is_ok()
            {
                return Some(host.runner().clone());
            }
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return None;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Sends the execution's events in order until the last one.
async fn follow(
    runner: Runner,
    execution: ExecutionId,
    events: mpsc::Sender<(ExecutionEvent, i64)>,
) {
    let mut follower = runner.follow(execution, 0);
    loop {
        match follower.next().await {
            Ok(Some(event)) => {
                let id = event.sequence_num;
                if events.send((wire_event(&event), id)).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%execution, error = &error as &dyn std::error::Error, "cannot follow the execution's events");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_remembered_and_pruned_into_a_watermark() {
        let deliveries = Deliveries::default();
        let tenant = TenantId::public();
        for id in [1, 2, 4] {
            deliveries.ack(&tenant, "r", id);
        }
        assert!(deliveries.is_acked(&tenant, "r", 1) && deliveries.is_acked(&tenant, "r", 2));
        assert!(
            !deliveries.is_acked(&tenant, "r", 3),
            "3 was never acked: it comes again"
        );
        assert!(deliveries.is_acked(&tenant, "r", 4));
        deliveries.ack(&tenant, "r", 3);
        {
            let acked = deliveries.lock();
            let entry = acked.get(&(tenant.clone(), "r".to_owned())).expect("entry");
            assert_eq!((entry.through, entry.above.len()), (4, 0));
        }
        assert!(!deliveries.is_acked(&tenant, "other", 1));
        let other = TenantId::new("other").expect("name");
        assert!(
            !deliveries.is_acked(&other, "r", 1),
            "another tenant's acks are its own"
        );
        deliveries.forget_tenant(&tenant);
        assert!(!deliveries.is_acked(&tenant, "r", 1));
    }
}
