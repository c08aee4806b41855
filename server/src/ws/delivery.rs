//! The delivery socket (`/v1/ws/delivery/{recipient}`), protocol 1:
//! the client says `hello`, the server answers `welcome` and pushes; the
//! client acks each push by id. Delivery is at least once: a push not
//! acked is pushed again on the next connection; acked ones are not.
//!
//! Recipient `exec_events:<execution id>` streams that execution's events
//! (all of them, also those before the connection), in order; push ids are
//! the events' sequence numbers. After the last event the socket stays open
//! and idle until the client closes it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use cloacina_runtime::{ExecutionId, TenantId};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::auth::{KeyRecord, bearer};
use crate::error::ApiError;
use crate::routes::executions::event_json;
use crate::state::AppState;

pub const PROTOCOL_VERSION: u64 = 1;
/// Close code: the client's protocol version is not spoken here.
const CLOSE_UNSUPPORTED_VERSION: u16 = 4426;
/// Close code: nothing of that name to connect to.
const CLOSE_UNKNOWN: u16 = 4404;
/// Close code: the first frame was not a hello.
const CLOSE_PROTOCOL: u16 = 4400;
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// Recipients whose acks are remembered; beyond, the oldest are forgotten
/// (their pushes may come again: at least once).
const MAX_RECIPIENTS: usize = 10_000;

/// What each recipient acked.
#[derive(Debug, Default)]
pub struct Deliveries {
    acked: Mutex<HashMap<String, Acked>>,
}

#[derive(Debug, Default)]
struct Acked {
    tenant: Option<TenantId>,
    /// Every id up to this one is acked (pruned from `above`).
    through: i64,
    above: BTreeSet<i64>,
}

impl Deliveries {
    fn ack(&self, recipient: &str, tenant: Option<&TenantId>, id: i64) {
        let mut acked = self.lock();
        if acked.len() >= MAX_RECIPIENTS
            && !acked.contains_key(recipient)
            && let Some(evicted) = acked.keys().next().cloned()
        {
            acked.remove(&evicted);
        }
        let entry = acked.entry(recipient.to_owned()).or_default();
        entry.tenant = tenant.cloned();
        if id > entry.through {
            entry.above.insert(id);
        }
        while entry.above.remove(&(entry.through + 1)) {
            entry.through += 1;
        }
    }

    fn is_acked(&self, recipient: &str, id: i64) -> bool {
        self.lock()
            .get(recipient)
            .is_some_and(|acked| id <= acked.through || acked.above.contains(&id))
    }

    /// A removed tenant's streams are forgotten.
    pub fn forget_tenant(&self, tenant: &TenantId) {
        self.lock()
            .retain(|_, acked| acked.tenant.as_ref() != Some(tenant));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Acked>> {
        self.acked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Debug, Deserialize)]
pub struct TicketQuery {
    token: Option<String>,
}

/// A ticket (`?token=`) or a Bearer key; refused before the upgrade.
async fn authenticate(
    state: &AppState,
    parts: &Parts,
    token: Option<&str>,
) -> Result<KeyRecord, ApiError> {
    if let Some(ticket) = token {
        return state
            .tickets
            .redeem(ticket)
            .ok_or_else(|| ApiError::unauthorized("invalid, used or expired ticket"));
    }
    let key = bearer(parts)
        .ok_or_else(|| ApiError::unauthorized("a ticket (?token=) or a Bearer key is needed"))?;
    state.auth.validate(key).await
}

pub async fn delivery(
    State(state): State<Arc<AppState>>,
    Path(recipient): Path<String>,
    Query(query): Query<TicketQuery>,
    request: axum::extract::Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let key = match authenticate(&state, &parts, query.token.as_deref()).await {
        Ok(key) => key,
        Err(error) => return error.into_response(),
    };
    let upgrade =
        match <WebSocketUpgrade as axum::extract::FromRequestParts<_>>::from_request_parts(
            &mut parts, &state,
        )
        .await
        {
            Ok(upgrade) => upgrade,
            Err(rejection) => {
                return ApiError::bad_request("invalid_request", rejection.body_text())
                    .into_response();
            }
        };
    upgrade.on_upgrade(move |socket| serve(socket, state, key, recipient))
}

/// Accumulator and reactor sockets: no computation graphs run here yet,
/// so every name is unknown (close 4404).
pub async fn graph_socket(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<TicketQuery>,
    request: axum::extract::Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    if let Err(error) = authenticate(&state, &parts, query.token.as_deref()).await {
        return error.into_response();
    }
    match <WebSocketUpgrade as axum::extract::FromRequestParts<_>>::from_request_parts(
        &mut parts, &state,
    )
    .await
    {
        Ok(upgrade) => upgrade.on_upgrade(move |mut socket| async move {
            close(
                &mut socket,
                CLOSE_UNKNOWN,
                &format!("no computation graph named {name}"),
            )
            .await;
        }),
        Err(rejection) => {
            ApiError::bad_request("invalid_request", rejection.body_text()).into_response()
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        })))
        .await;
}

/// Counts the connection while it lives.
struct Connected(Arc<AppState>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0
            .metrics
            .websocket_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve(mut socket: WebSocket, state: Arc<AppState>, key: KeyRecord, recipient: String) {
    state
        .metrics
        .websocket_connections
        .fetch_add(1, Ordering::Relaxed);
    let _connected = Connected(state.clone());

    // The hello, with a version this server speaks.
    let hello = tokio::time::timeout(HELLO_TIMEOUT, socket.recv()).await;
    let Ok(Some(Ok(Message::Text(text)))) = hello else {
        close(&mut socket, CLOSE_PROTOCOL, "expected a hello").await;
        return;
    };
    let hello: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
    if hello["type"] != "hello" {
        close(&mut socket, CLOSE_PROTOCOL, "expected a hello").await;
        return;
    }
    if hello["protocol_version"].as_u64() != Some(PROTOCOL_VERSION) {
        close(
            &mut socket,
            CLOSE_UNSUPPORTED_VERSION,
            &format!("protocol version {PROTOCOL_VERSION} only"),
        )
        .await;
        return;
    }
    let Some(execution) = recipient
        .strip_prefix("exec_events:")
        .and_then(|id| id.parse::<ExecutionId>().ok())
    else {
        close(&mut socket, CLOSE_UNKNOWN, "unknown recipient").await;
        return;
    };

    let (events, mut incoming) = mpsc::channel::<(Option<TenantId>, serde_json::Value, i64)>(256);
    let follower = tokio::spawn(follow(state.clone(), key, execution, events));
    let welcome =
        json!({"type": "welcome", "protocol_version": PROTOCOL_VERSION, "max_known_id": 0});
    if socket
        .send(Message::Text(welcome.to_string().into()))
        .await
        .is_err()
    {
        follower.abort();
        return;
    }
    let mut tenant: Option<TenantId> = None;
    let mut stopping = state.stopping.clone();
    loop {
        tokio::select! {
            _ = stopping.changed() => {
                close(&mut socket, 1001, "the server is stopping").await;
                break;
            }
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    if frame["type"] == "ack"
                        && let Some(id) = frame["id"].as_i64()
                    {
                        state.deliveries.ack(&recipient, tenant.as_ref(), id);
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            event = incoming.recv(), if !incoming.is_closed() || !incoming.is_empty() => {
                let Some((event_tenant, payload, id)) = event else { continue };
                tenant = event_tenant;
                if state.deliveries.is_acked(&recipient, id) {
                    continue;
                }
                let push = json!({
                    "type": "push",
                    "protocol_version": PROTOCOL_VERSION,
                    "id": id,
                    "kind": "exec_event",
                    "recipient": recipient,
                    "tenant_id": tenant.as_ref().map(TenantId::as_str),
                    "payload_b64": base64::engine::general_purpose::STANDARD.encode(payload.to_string()),
                });
                if socket.send(Message::Text(push.to_string().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    follower.abort();
}

/// Finds the execution (in the key's tenant, or any for a global key;
/// waits for it to appear), then sends its events in order until the
/// last one.
async fn follow(
    state: Arc<AppState>,
    key: KeyRecord,
    execution: ExecutionId,
    events: mpsc::Sender<(Option<TenantId>, serde_json::Value, i64)>,
) {
    let mut pause = Duration::from_millis(200);
    let runner = loop {
        let tenants = match &key.tenant {
            Some(tenant) => vec![tenant.clone()],
            None => state.host.tenants().await.unwrap_or_default(),
        };
        let mut found = None;
        for tenant in tenants {
            if let Ok(Some(host)) = state.host.existing_tenant(&tenant).await
                && host.runner().status(execution).await.is_ok()
            {
                found = Some(host.runner().clone());
                break;
            }
        }
        if let Some(runner) = found {
            break runner;
        }
        // Not there (yet): look again, less and less often.
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    };
    let tenant = runner.tenant().clone();
    let mut follower = runner.follow(execution, 0);
    loop {
        match follower.next().await {
            Ok(Some(event)) => {
                let id = event.sequence_num;
                if events
                    .send((Some(tenant.clone()), event_json(&event), id))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%execution, %error, "cannot follow the execution's events");
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
            deliveries.ack("r", Some(&tenant), id);
        }
        assert!(deliveries.is_acked("r", 1) && deliveries.is_acked("r", 2));
        assert!(
            !deliveries.is_acked("r", 3),
            "3 was never acked: it comes again"
        );
        assert!(deliveries.is_acked("r", 4));
        deliveries.ack("r", Some(&tenant), 3);
        {
            let acked = deliveries.lock();
            let entry = acked.get("r").expect("entry");
            assert_eq!((entry.through, entry.above.len()), (4, 0));
        }
        assert!(!deliveries.is_acked("other", 1));
        deliveries.forget_tenant(&tenant);
        assert!(!deliveries.is_acked("r", 1));
    }
}
