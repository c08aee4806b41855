//! The accumulator socket in acknowledged mode (`?ack=1`): events sent
//! pipelined, one JSON document per text frame, while the server's
//! cumulative acks are read as they come.
//!
//! Frame `seq` (from 1) is the `seq`-th event sent on this connection. The
//! server acks `{"type":"ack","seq":N}` once frames 1..=N are durable (or
//! rejected), and says `{"type":"rejected","seq":N,...}` for a frame it will
//! never process. At most [`AccumulatorSocket::window`] frames are in
//! flight; [`AccumulatorSocket::finish`] waits for the ack of everything
//! sent, then closes the socket.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cloacina_wire::ErrorBody;
use cloacina_wire::graphs::AccumulatorFrame;
use serde::Serialize;
use tungstenite::client::IntoClientRequest as _;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::{ClientError, TlsRoots};

/// Unacknowledged frames in flight, by default.
pub const DEFAULT_WINDOW: u64 = 1024;

/// How long the server may go without acknowledging anything while
/// frames wait for their ack, by default.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`AccumulatorSocket::finish`] waits for the close handshake
/// once every event is acknowledged.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The largest event the server takes by default (one frame, 1 MiB); a
/// larger frame closes the socket (1009).
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// An event the server will never process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The frame: the `seq`-th event sent.
    pub seq: u64,
    /// `invalid_json`, `too_large` or `unknown_accumulator`.
    pub code: String,
    pub message: String,
}

/// A producer connection on `/v1/ws/accumulator/{name}?ack=1`.
#[derive(Debug)]
pub struct AccumulatorSocket {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    window: u64,
    timeout: Duration,
    sent: u64,
    acked: u64,
    rejected: Vec<Rejection>,
    /// Rejections not handed out by [`AccumulatorSocket::take_rejections`].
    fresh: VecDeque<Rejection>,
    /// We sent our close.
    closing: bool,
    /// The server's close code and reason, once it sent its close.
    closed_by_server: Option<(u16, String)>,
    /// The connection is over (both closes exchanged, or it dropped).
    ended: bool,
}

impl AccumulatorSocket {
    /// Connects with the Bearer `authorization` value (a `wss://` server
    /// verified against `roots`); `server` names the server in errors.
    pub(crate) fn open(
        url: &str,
        authorization: &str,
        roots: &TlsRoots,
        server: &str,
    ) -> Result<Self, ClientError> {
        let mut request = url
            .into_client_request()
            .map_err(|error| ClientError::Socket(format!("bad socket URL {url}: {error}")))?;
        let value = authorization.parse().map_err(|_| {
            ClientError::Socket("the API key cannot be sent as a header".to_owned())
        })?;
        request.headers_mut().insert("authorization", value);
        let (mut socket, _) = roots
            .connect_socket(request)
            .map_err(|error| handshake_error(error, server))?;
        // Reads and writes never block from here: the loop interleaves
        // sending with reading acks.
        let nonblocking = match socket.get_mut() {
            MaybeTlsStream::Plain(stream) => stream.set_nonblocking(true),
            MaybeTlsStream::Rustls(stream) => stream.get_mut().set_nonblocking(true),
            _ => Err(std::io::Error::other("an unexpected stream kind")),
        };
        nonblocking.map_err(|error| {
            ClientError::Socket(format!("cannot configure the socket: {error}"))
        })?;
        Ok(AccumulatorSocket {
            socket,
            window: DEFAULT_WINDOW,
            timeout: DEFAULT_ACK_TIMEOUT,
            sent: 0,
            acked: 0,
            rejected: Vec::new(),
            fresh: VecDeque::new(),
            closing: false,
            closed_by_server: None,
            ended: false,
        })
    }

    /// At most `window` (at least 1) unacknowledged frames in flight.
    pub fn with_window(mut self, window: u64) -> Self {
        self.window = window.max(1);
        self
    }

    /// How long to wait without any ack while frames are in flight.
    pub fn with_ack_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn window(&self) -> u64 {
        self.window
    }

    /// Events sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Events 1..=acked are durable (or rejected).
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Every rejection so far, in the order the server sent them.
    pub fn rejections(&self) -> &[Rejection] {
        &self.rejected
    }

    /// The rejections received since the last call.
    pub fn take_rejections(&mut self) -> Vec<Rejection> {
        self.fresh.drain(..).collect()
    }

    /// Sends one event (a JSON document's text), first waiting for room
    /// in the window; returns its `seq`. Acks that arrived are read.
    pub fn send(&mut self, event: &str) -> Result<u64, ClientError> {
        let mut idle_since = Instant::now();
        loop {
            let progressed = self.pump()?;
            self.check_open()?;
            if self.sent - self.acked < self.window {
                break;
            }
            if progressed {
                idle_since = Instant::now();
            } else {
                self.idle(idle_since)?;
            }
        }
        match self.socket.write(Message::text(event)) {
            Ok(()) => {}
            // Queued; written by a later flush.
            Err(tungstenite::Error::Io(error)) if error.kind() == ErrorKind::WouldBlock => {}
            Err(error) => return Err(self.broken(error)),
        }
        self.sent += 1;
        self.flush()?;
        Ok(self.sent)
    }

    /// Reads the acks and rejections that arrived, without waiting.
    pub fn poll(&mut self) -> Result<(), ClientError> {
        self.pump()?;
        self.check_open()
    }

    /// Waits until every event sent is acknowledged (giving up after the
    /// ack timeout without progress), then closes the socket. `on_ack` is
    /// called with the acked count as it grows.
    ///
    /// The close comes after the last ack, not before: the server acks
    /// each commit as it happens, and an endpoint that has received a
    /// close may not send anything but its own.
    pub fn finish(&mut self, mut on_ack: impl FnMut(u64)) -> Result<(), ClientError> {
        let mut idle_since = Instant::now();
        let mut shown = self.acked;
        on_ack(shown);
        while self.acked < self.sent {
            let progressed = self.pump()?;
            if self.acked != shown {
                shown = self.acked;
                on_ack(shown);
            }
            if self.acked >= self.sent {
                break;
            }
            self.check_open()?;
            if progressed {
                idle_since = Instant::now();
            } else {
                self.idle(idle_since)?;
            }
        }
        // Everything is durable: the close handshake is a courtesy, given
        // a few seconds; a connection that drops meanwhile loses nothing.
        let closed_first = self.closed_by_server.is_some() || self.ended;
        if !closed_first {
            self.closing = true;
            match self.socket.close(None) {
                Ok(()) => {}
                Err(tungstenite::Error::Io(error)) if error.kind() == ErrorKind::WouldBlock => {}
                Err(_) => self.ended = true,
            }
            let deadline = Instant::now() + CLOSE_WAIT;
            while !self.ended && self.closed_by_server.is_none() && Instant::now() < deadline {
                match self.pump() {
                    Ok(true) => {}
                    Ok(false) => std::thread::sleep(Duration::from_millis(1)),
                    Err(_) => break,
                }
            }
        }
        match &self.closed_by_server {
            // An application code (4404: no such accumulator) is a refusal
            // even when nothing was sent.
            Some((code, reason)) if *code >= 4000 => Err(ClientError::Closed {
                code: *code,
                reason: reason.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Flushes what is queued and reads every frame that arrived. Whether
    /// the exchange moved: an ack, a rejection, a close, the end (pings
    /// and unknown frames do not count).
    fn pump(&mut self) -> Result<bool, ClientError> {
        let before = (self.acked, self.rejected.len());
        self.flush()?;
        while !self.ended {
            match self.socket.read() {
                Ok(Message::Text(text)) => self.on_frame(text.as_str()),
                Ok(Message::Close(frame)) => {
                    let (code, reason) = frame
                        .map(|frame| (u16::from(frame.code), frame.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    self.closed_by_server = Some((code, reason));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(error)) if error.kind() == ErrorKind::WouldBlock => {
                    break;
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    self.ended = true;
                }
                Err(_) if self.closing || self.closed_by_server.is_some() => {
                    self.ended = true;
                }
                Err(error) => return Err(self.broken(error)),
            }
        }
        Ok(before != (self.acked, self.rejected.len())
            || self.ended
            || self.closed_by_server.is_some())
    }

    /// An error when the server closed the socket (unknown name, stopping,
    /// a frame too large, a failure) or the connection dropped before the
    /// events were acknowledged: those after the last ack are not known to
    /// be durable.
    fn check_open(&self) -> Result<(), ClientError> {
        if let Some((code, reason)) = &self.closed_by_server {
            return Err(ClientError::Closed {
                code: *code,
                reason: reason.clone(),
            });
        }
        if self.ended {
            return Err(ClientError::Socket(format!(
                "the connection dropped after {} of {} events were acknowledged",
                self.acked, self.sent
            )));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ClientError> {
        match self.socket.flush() {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(error)) if error.kind() == ErrorKind::WouldBlock => Ok(()),
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                self.ended = true;
                Ok(())
            }
            // Closing either way: the close, or its absence, says the rest.
            Err(_) if self.closing || self.closed_by_server.is_some() => {
                self.ended = true;
                Ok(())
            }
            Err(error) => Err(self.broken(error)),
        }
    }

    fn on_frame(&mut self, text: &str) {
        // Frames of kinds this build does not know are skipped.
        match serde_json::from_str(text) {
            Ok(AccumulatorFrame::Ack { seq }) => {
                self.acked = self.acked.max(seq.min(self.sent));
            }
            Ok(AccumulatorFrame::Rejected { seq, code, message }) => {
                let rejection = Rejection { seq, code, message };
                self.fresh.push_back(rejection.clone());
                self.rejected.push(rejection);
            }
            Err(_) => {}
        }
    }

    /// Nothing moved: waits a little, or gives up after the ack timeout.
    fn idle(&self, since: Instant) -> Result<(), ClientError> {
        if since.elapsed() >= self.timeout {
            return Err(ClientError::Unacknowledged {
                sent: self.sent,
                acked: self.acked,
                waited_secs: self.timeout.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
        Ok(())
    }

    fn broken(&self, error: tungstenite::Error) -> ClientError {
        ClientError::Socket(format!(
            "{error} (after {} of {} events were acknowledged)",
            self.acked, self.sent
        ))
    }
}

/// A refused upgrade as the HTTP refusal it is; a failed TLS handshake as
/// such; a connection that could not be made as an unreachable server.
fn handshake_error(error: tungstenite::Error, server: &str) -> ClientError {
    if let Some(source) = crate::tls::in_socket(&error) {
        return ClientError::Tls {
            server: server.to_owned(),
            source,
        };
    }
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse().ok());
            let body = response
                .body()
                .as_deref()
                .and_then(|body| serde_json::from_slice(body).ok())
                .unwrap_or_else(|| ErrorBody {
                    error: format!("the socket upgrade was refused ({status})"),
                    code: "unknown".to_owned(),
                    reason: None,
                });
            ClientError::Refused {
                status,
                body,
                retry_after,
            }
        }
        tungstenite::Error::Io(error) => ClientError::Unreachable {
            server: server.to_owned(),
            source: Box::new(ureq::Error::Io(error)),
        },
        other => ClientError::Socket(other.to_string()),
    }
}
