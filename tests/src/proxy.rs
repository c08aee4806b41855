//! A TCP proxy on loopback that a test can cut: while cut, the port
//! refuses connections and every open connection is closed, as when a
//! database host goes away; restored, it forwards again on the same port.

use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug)]
pub struct CuttableProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

#[derive(Debug)]
struct ProxyState {
    upstream: SocketAddr,
    /// Set while cut; the accept loop drops its listener.
    cut: AtomicBool,
    stopped: AtomicBool,
    /// Both ends of every forwarded connection, to close them on a cut.
    open: Mutex<Vec<TcpStream>>,
}

impl CuttableProxy {
    /// Forwards a free loopback port to `upstream`.
    pub fn start(upstream: SocketAddr) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(ProxyState {
            upstream,
            cut: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let accepting = state.clone();
        std::thread::spawn(move || accept_loop(Some(listener), addr, &accepting));
        CuttableProxy { addr, state }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Refuses new connections and closes the open ones; how many ends of
    /// connections it closed.
    pub fn cut(&self) -> usize {
        self.state.cut.store(true, Ordering::SeqCst);
        let mut closed = 0;
        for stream in self.state.open.lock().expect("lock").drain(..) {
            if stream.shutdown(Shutdown::Both).is_ok() {
                closed += 1;
            }
        }
        closed
    }

    /// Forwards again, on the same port.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn accept_loop(mut listener: Option<TcpListener>, addr: SocketAddr, state: &ProxyState) {
    while !state.stopped.load(Ordering::SeqCst) {
        if state.cut.load(Ordering::SeqCst) {
            // Closed: connecting is refused.
            listener = None;
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let Some(open) = &listener else {
            listener = TcpListener::bind(addr).ok();
            if listener.is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            continue;
        };
        let _ = open.set_nonblocking(true);
        match open.accept() {
            Ok((client, _)) => forward(client, state),
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn forward(client: TcpStream, state: &ProxyState) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(state.upstream) else {
        return;
    };
    let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    if let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) {
        state.open.lock().expect("lock").extend([a, b]);
    }
    std::thread::spawn(move || pipe(client_reader, server));
    std::thread::spawn(move || pipe(server_reader, client));
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
