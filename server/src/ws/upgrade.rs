//! What every WebSocket route shares: authentication before the upgrade
//! (a single-use ticket or a Bearer key), a socket place for the key, the
//! message limit, reading frames, closing, and the close codes.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::http::request::Parts;
use cloacina_wire::ws::close;
use serde::Deserialize;

use crate::auth::{KeyRecord, bearer, under_throttle};
use crate::error::ApiError;
use crate::state::AppState;
use crate::ws::sockets::{OpenSocket, SocketRefused};

/// Close code: the client's protocol version is not spoken here.
pub(crate) const CLOSE_UNSUPPORTED_VERSION: u16 = close::VERSION_MISMATCH;
/// Close code: nothing of that name to connect to, or not for this key.
pub(crate) const CLOSE_UNKNOWN: u16 = close::NOT_FOUND;
/// Close code: the first frame was not a hello.
pub(crate) const CLOSE_PROTOCOL: u16 = 4400;
/// Close code (RFC 6455): the key was revoked.
pub(crate) const CLOSE_POLICY: u16 = 1008;
/// Close code (RFC 6455): a message too big to process.
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;
pub(crate) const CLOSE_NORMAL: u16 = 1000;
pub(crate) const CLOSE_GOING_AWAY: u16 = 1001;
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
#[derive(Debug, Deserialize)]
pub struct TicketQuery {
    pub token: Option<String>,
}

/// A ticket (`?token=`) or a Bearer key; refused before the upgrade.
pub(crate) async fn authenticate(
    state: &AppState,
    parts: &Parts,
    token: Option<&str>,
) -> Result<KeyRecord, ApiError> {
    if let Some(ticket) = token {
        let redeemed = async {
            match state.tickets.redeem(ticket).await {
                Ok(Some(key)) => Ok(key),
                Ok(None) => Err(ApiError::unauthorized("invalid, used or expired ticket")),
                Err(error) => Err(ApiError::internal("redeeming a ticket", error)),
            }
        };
        return Ok(under_throttle(state, parts, redeemed).await?.key);
    }
    let key = bearer(parts)
        .ok_or_else(|| ApiError::unauthorized("a ticket (?token=) or a Bearer key is needed"))?;
    Ok(under_throttle(state, parts, state.auth.validate(key))
        .await?
        .key)
}

/// Authenticates, takes a socket place for the key, and upgrades with the
/// message limits; every refusal is an HTTP answer before the upgrade.
pub(crate) async fn accept(
    state: &Arc<AppState>,
    token: Option<&str>,
    request: axum::extract::Request,
    message_limit: usize,
) -> Result<(WebSocketUpgrade, KeyRecord, OpenSocket), ApiError> {
    let (mut parts, _) = request.into_parts();
    let key = authenticate(state, &parts, token).await?;
    let open = state.sockets.open(key.id).map_err(|refused| {
        let error = match refused {
            SocketRefused::KeyQuota(quota) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sockets",
                format!("this key holds {quota} WebSockets already; close one first"),
            ),
            SocketRefused::ServerFull => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                "the server holds as many connections as it may; try again shortly",
            ),
        };
        error.retry_after(Duration::from_secs(1))
    })?;
    let upgrade = <WebSocketUpgrade as axum::extract::FromRequestParts<_>>::from_request_parts(
        &mut parts, state,
    )
    .await
    .map_err(|rejection| ApiError::bad_request("invalid_request", rejection.body_text()))?;
    let limit = message_limit;
    let upgrade = upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .write_buffer_size(0);
    Ok((upgrade, key, open))
}

/// Sends a close frame, giving up after a few seconds on a client that
/// does not read.
pub(crate) async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }));
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(frame)).await;
}

/// Sends a close frame, then reads (and drops) what the client still sends
/// until its own close arrives, for a few seconds at most. A producer that
/// was streaming when the server closed would otherwise have unread data
/// on the connection, and the kernel answers that with a reset: the client
/// would see "connection reset" instead of the close code.
pub(crate) async fn close_and_drain(socket: &mut WebSocket, code: u16, reason: &str) {
    close(socket, code, reason).await;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                return;
            }
        }
    })
    .await;
}

/// Whether a read failed because the message or frame was over the limit.
pub(crate) fn is_too_big(error: axum::Error) -> bool {
    error
        .into_inner()
        .downcast::<tungstenite::Error>()
        .is_ok_and(|error| matches!(*error, tungstenite::Error::Capacity(_)))
}

/// A frame the client sent, as this protocol sees it.
pub(crate) enum Incoming {
    Text(String),
    /// Pings, pongs (answered by the library) and binary frames.
    Ignored,
    TooBig,
    Gone,
}

pub(crate) async fn receive(socket: &mut WebSocket) -> Incoming {
    match socket.recv().await {
        Some(Ok(Message::Text(text))) => Incoming::Text(text.as_str().to_owned()),
        Some(Ok(Message::Close(_))) | None => Incoming::Gone,
        Some(Ok(_)) => Incoming::Ignored,
        Some(Err(error)) => {
            if is_too_big(error) {
                Incoming::TooBig
            } else {
                Incoming::Gone
            }
        }
    }
}

/// Counts the connection while it lives.
pub(crate) struct Connected(pub Arc<AppState>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.metrics.websocket_closed();
    }
}

/// Resolves once the server stops.
pub(crate) async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}
