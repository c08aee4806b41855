//! The accept loop, written on hyper directly because `axum::serve` sets
//! no bound on a connection: here every connection takes a slot of a
//! fixed number (the rest wait in the kernel's backlog, so the process
//! never runs out of file descriptors), a request head must arrive within
//! the head timeout (which also ends idle keep-alives, as hyper starts that
//! timer whenever a connection waits for a request), and a client that
//! half-closes after its request still gets its answer. A connection
//! closed while the client still sends reads the rest before it closes
//! ([`Lingering`]), so the client reads its answer instead of a reset.
//!
//! Upgraded WebSockets leave hyper's connection; their handler takes a
//! slot of its own (see `ws::delivery`), so sockets count too. Writes must
//! make progress too: a client that stops reading (a response or pushes
//! pile up) for the head timeout is cut ([`Stalling`]), so it cannot hold
//! its slot for ever.
//!
//! With TLS ([`ServerTls`]) each connection first completes its handshake,
//! within the head timeout, on its own task (a slow handshake holds its
//! slot, never the loop); one that fails is dropped and logged at debug.
//! TLS sits above [`Lingering`] and [`Stalling`], so the close drains and
//! the write deadline apply to the encrypted bytes on the socket.

mod lingering;
mod stalling;

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use self::lingering::Lingering;
use self::stalling::Stalling;
use crate::limits::Limits;
use crate::tls::ServerTls;

/// How long a stop waits for connections still answering.
const DRAIN: Duration = Duration::from_secs(35);

/// The connection slots: one per open connection or WebSocket.
#[derive(Debug, Clone)]
pub struct Slots {
    semaphore: Arc<Semaphore>,
    total: usize,
}

impl Slots {
    pub fn new(total: usize) -> Self {
        let total = total.max(1);
        Slots {
            semaphore: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// A slot if one is free now.
    pub fn try_take(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.semaphore.clone().try_acquire_owned().ok()
    }

    /// Slots taken.
    pub fn in_use(&self) -> usize {
        self.total - self.semaphore.available_permits()
    }
}

/// The address a request's connection came from, in its extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub std::net::SocketAddr);

/// Accepts and serves until `stop` turns true, then lets the connections
/// finish what they are answering (idle ones close at once). With `tls`,
/// HTTPS only: each connection is accepted with the configuration current
/// when it arrives.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    slots: Slots,
    tls: Option<ServerTls>,
    mut stop: watch::Receiver<bool>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .half_close(true)
        .keep_alive(true);
    let http = Arc::new(http);
    loop {
        let slot = tokio::select! {
            slot = slots.semaphore.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        // Small responses and pushes go out at once (no Nagle delay).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let http = http.clone();
        let router = router.clone();
        let head_timeout = limits.head_timeout;
        let tls = tls.as_ref().map(ServerTls::current);
        let mut stopping = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let io = Lingering::new(Stalling::new(stream, head_timeout));
            match tls {
                None => serve_http(io, http, router, peer, stopping).await,
                Some(config) => {
                    if let Some(io) = handshake(config, io, head_timeout, peer, &mut stopping).await
                    {
                        serve_http(io, http, router, peer, stopping).await;
                    }
                }
            }
        });
    }
    drop(listener);
    // Every slot back means every connection and socket has closed.
    let all = u32::try_from(slots.total).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, slots.semaphore.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            open = slots.in_use(),
            "connections still open after the drain period; closing them"
        );
    }
}

/// HTTP/1.1 on one connection (plain or TLS) until it ends; once `stop`
/// turns true, it finishes what it is answering and closes.
async fn serve_http<IO>(
    io: IO,
    http: Arc<http1::Builder>,
    router: Router,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Every request knows the address it came from (throttling).
    let service = TowerToHyperService::new(router.map_request(
        move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ClientAddress(peer));
            request
        },
    ));
    let mut connection = pin!(
        http.serve_connection(TokioIo::new(io), service)
            .with_upgrades()
    );
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// The TLS handshake, within `limit`: the encrypted connection, or None
/// (logged at debug) when it fails, takes too long or the server stops.
async fn handshake<IO>(
    config: Arc<rustls::ServerConfig>,
    io: IO,
    limit: Duration,
    peer: SocketAddr,
    stop: &mut watch::Receiver<bool>,
) -> Option<tokio_rustls::server::TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let accepting = tokio_rustls::TlsAcceptor::from(config).accept(io);
    tokio::select! {
        accepted = tokio::time::timeout(limit, accepting) => match accepted {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed; connection dropped");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, ?limit, "no TLS handshake within the head timeout; connection dropped");
                None
            }
        },
        () = stopped(stop) => None,
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// A failed accept: the peer's problem is skipped; ours (out of file
/// descriptors, say) is logged and waited out briefly.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
