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

mod lingering;
mod stalling;

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use self::lingering::Lingering;
use self::stalling::Stalling;
use crate::limits::Limits;

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
/// finish what they are answering (idle ones close at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    slots: Slots,
    mut stop: watch::Receiver<bool>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
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
        let stall_limit = limits.head_timeout;
        // Every request knows the address it came from (throttling).
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ClientAddress(peer));
                request
            },
        ));
        let mut stopping = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let io = TokioIo::new(Lingering::new(Stalling::new(stream, stall_limit)));
            let mut connection = pin!(http.serve_connection(io, service).with_upgrades());
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopped(&mut stopping) => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
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
