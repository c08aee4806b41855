//! Connection hygiene (issue 11, defect 1): slow and idle clients are cut,
//! connections are capped, `/health` stays answerable under that abuse.

use std::time::{Duration, Instant};

use cloacina_server::Limits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{GOD_KEY, TestServer, health_within, raw, read_response};

/// A slow-loris client: a request head one byte at a time. Returns how
/// long the server let it live, or None if it was never cut.
async fn slow_client(addr: std::net::SocketAddr, give_up: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let head = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut scratch = [0u8; 512];
    for byte in head.iter().cycle() {
        if started.elapsed() > give_up {
            return None;
        }
        if stream.write_all(&[*byte]).await.is_err() {
            return Some(started.elapsed());
        }
        // Cut means: the server closed (EOF, reset) or answered 408.
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut scratch)).await {
            Ok(Ok(_)) | Ok(Err(_)) => return Some(started.elapsed()),
            Err(_) => {}
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_and_health_stays_answerable() {
    let server = TestServer::start(Limits {
        max_connections: 64,
        head_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let addr = server.addr;
    // More slow clients than there are connection slots.
    let clients: Vec<_> = (0..150)
        .map(|_| tokio::spawn(slow_client(addr, Duration::from_secs(15))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        assert_eq!(
            health_within(addr, Duration::from_secs(8)).await,
            Some(200),
            "/health must stay answerable under slow clients"
        );
    }
    let mut cut = 0;
    for client in clients {
        if client.await.expect("client").is_some() {
            cut += 1;
        }
    }
    assert_eq!(cut, 150, "every slow client is cut by the head timeout");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let server = TestServer::start(Limits {
        head_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("writes");
    assert_eq!(read_response(&mut stream).await.status, 200);
    // Kept alive, then idle: closed after the head timeout.
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "an idle keep-alive connection is closed: {closed:?}"
    );
    // A connection that never sends a byte goes the same way.
    let mut silent = TcpStream::connect(server.addr).await.expect("connects");
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_until_a_slot_frees() {
    let server = TestServer::start(Limits {
        max_connections: 8,
        head_timeout: Duration::from_secs(2),
        ..Limits::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(server.addr).await.expect("connects"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Every slot is taken: the ninth waits in the backlog...
    assert_eq!(
        health_within(server.addr, Duration::from_millis(800)).await,
        None,
        "a ninth connection is not served while eight hold every slot"
    );
    // ...until the head timeout frees the idle ones.
    assert_eq!(
        health_within(server.addr, Duration::from_secs(8)).await,
        Some(200)
    );
    drop(idle);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_after_its_request_is_answered() {
    let server = TestServer::start(Limits::default()).await;
    for _ in 0..20 {
        let mut stream = TcpStream::connect(server.addr).await.expect("connects");
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .expect("writes");
        stream.shutdown().await.expect("half-closes");
        assert_eq!(read_response(&mut stream).await.status, 200);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_an_oversized_body_reads_its_413() {
    // The answer is decided from the Content-Length before the body is
    // read; the client, like most, writes the whole body before reading.
    let server = TestServer::start(Limits::default()).await;
    // More than the kernel buffers on loopback, so the writes outlast the
    // answer (and less than the server drains after answering).
    let body = vec![b'a'; 12 << 20];
    for path in ["/v1/auth/keys", "/v1/tenants/public/workflows/etl/execute"].repeat(5) {
        let mut stream = TcpStream::connect(server.addr).await.expect("connects");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {GOD_KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .await
            .expect("writes the head");
        stream
            .write_all(&body)
            .await
            .expect("the server reads the body it refused instead of resetting");
        let response = read_response(&mut stream).await;
        assert_eq!(response.status, 413, "{path}: {}", response.head);
        assert_eq!(response.json()["code"], "payload_too_large");
        // Its body unread, the connection carries no further request:
        // the client is told, so it does not reuse it.
        assert_eq!(response.header("connection").as_deref(), Some("close"));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_to_a_request_without_a_body_keeps_the_connection() {
    let server = TestServer::start(Limits::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    for _ in 0..2 {
        stream
            .write_all(b"GET /v1/nothing HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .expect("writes");
        let response = read_response(&mut stream).await;
        assert_eq!(response.status, 404);
        assert_eq!(response.header("connection"), None, "{}", response.head);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_needs_exactly_one_host_header() {
    let server = TestServer::start(Limits::default()).await;
    let none = raw(
        server.addr,
        b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(none.status, 400);
    assert_eq!(none.json()["code"], "invalid_request");
    let two = raw(
        server.addr,
        b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(two.status, 400);
    let old = raw(server.addr, b"GET /health HTTP/1.0\r\n\r\n").await;
    assert_eq!(old.status, 200, "HTTP/1.0 may omit Host");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_its_slot() {
    let server = TestServer::start(Limits {
        max_connections: 1,
        head_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    // Pipelined requests whose answers are never read: the server's
    // writes stall once the socket buffers fill.
    let mut greedy = TcpStream::connect(server.addr).await.expect("connects");
    let request = b"GET /openapi.json HTTP/1.1\r\nHost: test\r\n\r\n".repeat(2_000);
    let _ = tokio::time::timeout(Duration::from_secs(2), greedy.write_all(&request)).await;
    // The only slot comes back once the stalled writes time out.
    assert_eq!(
        health_within(server.addr, Duration::from_secs(8)).await,
        Some(200),
        "a client that never reads must not hold its slot"
    );
    drop(greedy);
    server.stop().await;
}
