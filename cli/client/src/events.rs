//! The delivery socket: `exec_events:<id>` pushes, acked as read.

use base64::Engine as _;
use cloacina_wire::executions::ExecutionEvent;
use cloacina_wire::ws::{ClientFrame, PROTOCOL_VERSION, ServerFrame};
use tungstenite::Message;
use tungstenite::stream::MaybeTlsStream;

use crate::{ClientError, TlsRoots};

/// An execution's events as the server pushes them.
#[derive(Debug)]
pub struct EventStream {
    socket: tungstenite::WebSocket<MaybeTlsStream<std::net::TcpStream>>,
}

impl EventStream {
    /// Connects (a `wss://` server verified against `roots`; `server`
    /// names it in errors) and says hello.
    pub(crate) fn open(url: &str, roots: &TlsRoots, server: &str) -> Result<Self, ClientError> {
        let (mut socket, _) =
            roots
                .connect_socket(url)
                .map_err(|error| match crate::tls::in_socket(&error) {
                    Some(source) => ClientError::Tls {
                        server: server.to_owned(),
                        source,
                    },
                    None => socket_error(error),
                })?;
        send(
            &mut socket,
            &ClientFrame::Hello {
                protocol_version: PROTOCOL_VERSION,
                since_id: None,
            },
        )?;
        Ok(EventStream { socket })
    }

    /// The next event, or None once the server closed the socket.
    pub fn next_event(&mut self) -> Result<Option<ExecutionEvent>, ClientError> {
        loop {
            let text = match self.socket.read().map_err(socket_error)? {
                Message::Text(text) => text,
                Message::Close(_) => return Ok(None),
                _ => continue,
            };
            // Frames of kinds this build does not know are skipped.
            let Ok(ServerFrame::Push {
                id, payload_b64, ..
            }) = serde_json::from_str(text.as_str())
            else {
                continue;
            };
            let payload = base64::engine::general_purpose::STANDARD
                .decode(payload_b64)
                .map_err(|error| ClientError::Socket(format!("unreadable payload: {error}")))?;
            let event = serde_json::from_slice(&payload)
                .map_err(|error| ClientError::Socket(format!("unreadable event: {error}")))?;
            send(
                &mut self.socket,
                &ClientFrame::Ack {
                    protocol_version: PROTOCOL_VERSION,
                    id,
                },
            )?;
            return Ok(Some(event));
        }
    }

    /// Closes the socket, best effort.
    pub fn close(mut self) {
        let _ = self.socket.close(None);
    }
}

fn send(
    socket: &mut tungstenite::WebSocket<MaybeTlsStream<std::net::TcpStream>>,
    frame: &ClientFrame,
) -> Result<(), ClientError> {
    let text = serde_json::to_string(frame)
        .map_err(|error| ClientError::Socket(format!("cannot write a frame: {error}")))?;
    socket.send(Message::text(text)).map_err(socket_error)
}

fn socket_error(error: tungstenite::Error) -> ClientError {
    ClientError::Socket(error.to_string())
}
