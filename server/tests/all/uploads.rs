//! Uploads (issue 11, defect 2): refused at their first bytes, spooled
//! rather than buffered, verified in bounded memory, a few at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloacina_tests::ServerProcess;

use cloacina_server::Limits;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::support::{GOD_KEY, TestServer, read_response};

const BOUNDARY: &str = "----cloacinatestboundary";

fn part_head() -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.cloacina\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
}

fn part_tail() -> String {
    format!("\r\n--{BOUNDARY}--\r\n")
}

/// The request head of an upload whose body is `length` bytes.
fn upload_head(addr: std::net::SocketAddr, length: u64) -> String {
    format!(
        "POST /v1/tenants/public/workflows HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {GOD_KEY}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
}

/// A complete upload of `file`: status and JSON body.
pub async fn upload(addr: std::net::SocketAddr, file: &[u8]) -> (u16, serde_json::Value) {
    let body = [part_head().as_bytes(), file, part_tail().as_bytes()].concat();
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream
        .write_all(upload_head(addr, body.len() as u64).as_bytes())
        .await
        .expect("head");
    stream.write_all(&body).await.expect("body");
    let response = read_response(&mut stream).await;
    (response.status, response.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_is_refused_at_its_first_bytes() {
    let server = TestServer::start(Limits::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    // 50 MiB announced, 64 KiB sent: the answer must not wait for the rest.
    stream
        .write_all(upload_head(server.addr, 50 << 20).as_bytes())
        .await
        .expect("head");
    stream
        .write_all(part_head().as_bytes())
        .await
        .expect("part");
    stream.write_all(&vec![b'j'; 64 << 10]).await.expect("junk");
    let response = tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
        .await
        .expect("answered before the body is complete");
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["code"], "upload_failed");
    assert!(
        response.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("neither a gzip'd tar nor a zip")),
        "{:?}",
        response.json()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_past_the_limit_is_refused_as_it_streams() {
    let server = TestServer::start(Limits {
        max_upload_bytes: 1 << 20,
        ..Limits::default()
    })
    .await;
    // Announced too large: refused before a byte of the body.
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    stream
        .write_all(upload_head(server.addr, 50 << 20).as_bytes())
        .await
        .expect("head");
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.json()["code"], "payload_too_large");

    // Not announced (chunked): refused once it passes the limit.
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    let head = format!(
        "POST /v1/tenants/public/workflows HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {GOD_KEY}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let mut first = part_head().into_bytes();
    first.extend_from_slice(&[0x1f, 0x8b, 8, 0]);
    let send_chunk = |data: Vec<u8>| {
        let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
        framed.extend_from_slice(&data);
        framed.extend_from_slice(b"\r\n");
        framed
    };
    stream.write_all(&send_chunk(first)).await.expect("first");
    let mut sent = 0usize;
    while sent < (2 << 20) {
        if stream
            .write_all(&send_chunk(vec![7u8; 64 << 10]))
            .await
            .is_err()
        {
            break;
        }
        sent += 64 << 10;
    }
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 413, "{:?}", response.json());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_concurrency_bound_are_told_to_retry() {
    let server = TestServer::start(Limits {
        concurrent_uploads: 1,
        ..Limits::default()
    })
    .await;
    // One upload being verified (hashing 400 MiB takes a while)...
    let heavy = Arc::new(cloacina_tests::swollen_package("heavy", 4 << 20, 400 << 20));
    let addr = server.addr;
    let send_heavy = |heavy: Arc<Vec<u8>>| tokio::spawn(async move { upload(addr, &heavy).await });
    let mut first = send_heavy(heavy.clone());
    // ...so a light one sent meanwhile waits its turn, told when to come
    // back. (Sent until one lands while the heavy one is verified: how
    // soon that starts depends on the machine's load. A light one being
    // verified when the heavy one arrives turns the heavy one away
    // instead; then the heavy one is sent again.)
    let light = cloacina_tests::swollen_package_with_workflow("light", "light");
    let mut busy = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while busy.is_none() {
        assert!(
            Instant::now() < deadline,
            "no light upload was turned away within 60 s"
        );
        if first.is_finished() {
            let (status, body) = first.await.expect("first upload");
            assert_eq!(
                status, 503,
                "the heavy upload ended before any light one was turned away: {body}"
            );
            first = send_heavy(heavy.clone());
        }
        let mut second = TcpStream::connect(server.addr).await.expect("connects");
        let body = [part_head().as_bytes(), &light, part_tail().as_bytes()].concat();
        second
            .write_all(upload_head(server.addr, body.len() as u64).as_bytes())
            .await
            .expect("head");
        second.write_all(&body).await.expect("body");
        let response = read_response(&mut second).await;
        match response.status {
            503 => busy = Some(response),
            201 => tokio::time::sleep(Duration::from_millis(20)).await,
            other => panic!("{other}: {:?}", response.json()),
        }
    }
    let response = busy.expect("the loop ends with one");
    assert_eq!(response.json()["code"], "server_busy");
    assert!(
        response.header("retry-after").is_some(),
        "{}",
        response.head
    );
    let (status, body) = first.await.expect("first upload");
    assert_eq!(status, 201, "{body}");
    // Its turn come, the second is accepted.
    let (status, body) = upload(server.addr, &light).await;
    assert_eq!(status, 201, "{body}");
    server.stop().await;
}

/// An archive of a few MiB that unpacks to 300 MiB, every hash right:
/// accepted, registered, then refused at load (its component is over the
/// host's limit), all without the server holding it unpacked.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worst_accepted_upload_stays_within_a_memory_bound() {
    let archive = cloacina_tests::swollen_package("swollen", 4 << 20, 300 << 20);
    assert!(archive.len() < 10 << 20, "{} bytes", archive.len());
    let home = tempfile::tempdir().expect("home");
    let server = ServerProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_cloacina-server")),
        &[],
        home.path(),
        GOD_KEY,
    );
    let (status, body) = upload(server.addr, &archive).await;
    assert_eq!(status, 201, "{body}");
    // The reconciler verifies and extracts it too, then refuses to load it.
    let deadline = Instant::now() + Duration::from_secs(120);
    let detail = loop {
        let response = crate::support::raw(
            server.addr,
            format!(
                "GET /v1/tenants/public/workflows/swollen HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {GOD_KEY}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
        let detail = response.json();
        if detail["build_status"] != "pending" {
            break detail;
        }
        assert!(Instant::now() < deadline, "never loaded: {detail}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(detail["build_status"], "failed", "{detail}");
    assert!(
        detail["build_error"]
            .as_str()
            .is_some_and(|e| e.contains("over this host's limit")),
        "{detail}"
    );
    let peak = server.memory_mib("VmHWM");
    eprintln!("peak RSS after the worst accepted upload: {peak} MiB");
    assert!(
        peak < 200,
        "the server peaked at {peak} MiB for an archive that unpacks to 304 MiB"
    );
}

/// A package declaring a workflow another package owns is refused at
/// upload, naming both (issue 12: workflow names are owned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_owned_by_another_package_is_refused_at_upload() {
    let server = TestServer::start(Limits::default()).await;
    let first = cloacina_tests::swollen_package_with_workflow("first", "shared");
    let (status, body) = upload(server.addr, &first).await;
    assert_eq!(status, 201, "{body}");
    let second = cloacina_tests::swollen_package_with_workflow("second", "shared");
    let (status, body) = upload(server.addr, &second).await;
    assert_eq!(status, 409, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("`shared`")
            && error.contains("first 1.0.0")
            && error.contains("second 1.0.0"),
        "{error}"
    );
    server.stop().await;
}

/// An upload just under the limit is accepted (the limit counts the file,
/// not its multipart framing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_just_under_the_limit_is_accepted() {
    let server = TestServer::start(Limits {
        max_upload_bytes: 8 << 20,
        ..Limits::default()
    })
    .await;
    let archive = cloacina_tests::swollen_package("dense", 7 << 20, 0);
    assert!(archive.len() < 8 << 20, "{}", archive.len());
    let (status, body) = upload(server.addr, &archive).await;
    assert_eq!(status, 201, "{body}");
    server.stop().await;
}
