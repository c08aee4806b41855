//! The server's memory and responsiveness under the abuse of issue 11,
//! measured on `cloacina-server` as a process of its own (release build,
//! SQLite, default limits):
//!
//! - peak RSS (VmHWM) after the worst uploads it accepts, registered and
//!   loaded: two at once of an archive that unpacks to 509 MiB (a file at
//!   the reader's per-file cap), then one of about 61 MiB that does not compress
//!   (near the upload cap); the slowest `/health` while they are handled;
//! - peak RSS with 8 hostile WebSockets, each holding a message just
//!   under the size limit unfinished, and 8 more announcing 48 MiB ones.
//!
//!   cargo bench -p cloacina-server --bench abuse

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cloacina_bench_record::record;
use cloacina_tests::ServerProcess;

const KEY: &str = "clk_benchbenchbenchbenchbenchbench";
const BOUNDARY: &str = "----cloacinabench";
/// This bench's name in `docs/performance/records.jsonl`.
const BENCH: &str = "abuse";

fn main() {
    let home = tempfile::tempdir().expect("home");
    let server = ServerProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_cloacina-server")),
        &[],
        home.path(),
        KEY,
    );
    let baseline = server.memory_mib("VmRSS");
    record(BENCH, "idle.rss_mib", baseline as f64, "MiB");
    println!("baseline RSS: {baseline} MiB");

    let mut hostile = Vec::new();
    for _ in 0..8 {
        let mut socket = websocket(server.addr);
        // A text frame, not final, of 63 KiB: the message stays unfinished.
        let payload = vec![b'x'; 63 << 10];
        write_frame(&mut socket, 0x01, &payload);
        hostile.push(socket);
    }
    let mut refused = 0;
    for _ in 0..8 {
        let mut socket = websocket(server.addr);
        // A header announcing 48 MiB, then as much as the server takes.
        let mut header = vec![0x01, 0x80 | 127];
        header.extend_from_slice(&(48u64 << 20).to_be_bytes());
        header.extend_from_slice(&[0, 0, 0, 0]);
        let _ = socket.write_all(&header);
        let chunk = vec![0u8; 1 << 20];
        let mut sent = 0;
        while sent < 48 && socket.write_all(&chunk).is_ok() {
            sent += 1;
        }
        if sent < 48 {
            refused += 1;
        }
        hostile.push(socket);
    }
    std::thread::sleep(Duration::from_millis(500));
    let (rss, peak) = (server.memory_mib("VmRSS"), server.memory_mib("VmHWM"));
    record(BENCH, "sockets.rss_mib", rss as f64, "MiB");
    record(BENCH, "sockets.peak_rss_mib", peak as f64, "MiB");
    println!(
        "8 sockets holding 63 KiB unfinished messages + 8 announcing 48 MiB ({refused} cut before 48 MiB): RSS {rss} MiB, peak {peak} MiB"
    );
    drop(hostile);

    let swollen = cloacina_tests::swollen_package("swollena", 9 << 20, 500 << 20);
    let swollen_b = cloacina_tests::swollen_package("swollenb", 9 << 20, 500 << 20);
    println!(
        "worst compressible upload: {} MiB unpacking to 509 MiB (the reader's per-file cap is 512 MiB), two at once",
        swollen.len() >> 20
    );
    let slowest = while_polling_health(server.addr, || {
        let a = std::thread::spawn({
            let addr = server.addr;
            move || upload(addr, &swollen)
        });
        let b = upload(server.addr, &swollen_b);
        let a = a.join().expect("upload");
        assert_eq!((a, b), (201, 201));
        settled(server.addr, "swollena");
        settled(server.addr, "swollenb");
    });
    let peak = server.memory_mib("VmHWM");
    record_upload("swollen_uploads", peak, slowest);
    println!("  peak RSS {peak} MiB; slowest /health meanwhile {slowest:?}");

    let dense = cloacina_tests::swollen_package("dense", 58 << 20, 0);
    let slowest = while_polling_health(server.addr, || {
        assert_eq!(upload(server.addr, &dense), 201);
        settled(server.addr, "dense");
    });
    let peak = server.memory_mib("VmHWM");
    record_upload("dense_upload", peak, slowest);
    println!(
        "incompressible upload near the cap ({} MiB), registered and loaded: peak RSS {peak} MiB; slowest /health {slowest:?}",
        dense.len() >> 20
    );
}

/// Runs `work` while another thread GETs /health back to back; the
/// slowest answer seen.
fn while_polling_health(addr: SocketAddr, work: impl FnOnce()) -> Duration {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = std::thread::spawn({
        let done = done.clone();
        move || {
            let mut slowest = Duration::ZERO;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let status = request(
                    addr,
                    b"GET /health HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
                );
                assert_eq!(status, 200);
                slowest = slowest.max(started.elapsed());
                std::thread::sleep(Duration::from_millis(20));
            }
            slowest
        }
    });
    work();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    poller.join().expect("poller")
}

fn request(addr: SocketAddr, bytes: &[u8]) -> u16 {
    let response = exchange(addr, bytes);
    String::from_utf8_lossy(&response)
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0)
}

fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream.write_all(bytes).expect("writes");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    response
}

/// Waits until the host has tried to load workflow `name`'s package.
fn settled(addr: SocketAddr, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let response = exchange(
            addr,
            format!("GET /v1/tenants/public/workflows/{name} HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {KEY}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let text = String::from_utf8_lossy(&response);
        if text.contains(&format!("\"package_name\":\"{name}\""))
            && !text.contains("\"build_status\":\"pending\"")
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{name} was never loaded");
}

fn upload(addr: SocketAddr, file: &[u8]) -> u16 {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.cloacina\"\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let length = head.len() + file.len() + tail.len();
    let mut stream = TcpStream::connect(addr).expect("connects");
    write!(
        stream,
        "POST /v1/tenants/public/workflows HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {KEY}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{head}"
    )
    .expect("head");
    let _ = stream.write_all(file);
    let _ = stream.write_all(tail.as_bytes());
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response)
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0)
}

/// A delivery socket, upgraded by hand (so frames can be left unfinished).
fn websocket(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connects");
    write!(
        stream,
        "GET /v1/ws/delivery/exec_events:{} HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {KEY}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        uuid::Uuid::new_v4()
    )
    .expect("upgrade");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("upgrade answer");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// A masked client frame, FIN clear.
fn write_frame(stream: &mut TcpStream, opcode: u8, payload: &[u8]) {
    let mut frame = vec![opcode, 0x80 | 126];
    frame.extend_from_slice(&u16::try_from(payload.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    stream.write_all(&frame).expect("frame");
}

/// Records an upload case: the server's peak RSS and the slowest `/health`
/// answer meanwhile.
fn record_upload(case: &str, peak_mib: u64, slowest_health: Duration) {
    record(
        BENCH,
        &format!("{case}.peak_rss_mib"),
        peak_mib as f64,
        "MiB",
    );
    record(
        BENCH,
        &format!("{case}.slowest_health_ms"),
        slowest_health.as_secs_f64() * 1e3,
        "ms",
    );
}
