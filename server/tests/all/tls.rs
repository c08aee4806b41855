//! TLS (issue 19): with a certificate the server speaks HTTPS only; a
//! handshake that fails or never comes costs its own connection and
//! nothing else; a reload takes up new files for new connections and
//! keeps the certificate in use when they do not load. (`cloacinactl`
//! and the client library over HTTPS, and SIGHUP: `tests/e2e/serving`.)

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cloacina_server::{Limits, ServerTls, TlsError, TlsFiles};
use cloacina_tests::SelfSigned;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::TestServer;

/// A self-signed certificate, and what a server presents of it.
struct Identity {
    pem: SelfSigned,
    der: CertificateDer<'static>,
}

impl Identity {
    fn new() -> Identity {
        let pem = SelfSigned::new();
        let der = CertificateDer::from(pem.der.clone());
        Identity { pem, der }
    }

    fn write(&self, files: &TlsFiles) {
        self.pem.write(&files.cert, &files.key);
    }
}

fn files_in(dir: &Path) -> TlsFiles {
    TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

/// A server serving `identity`, its files in `dir`.
async fn server_with(identity: &Identity, dir: &Path, limits: Limits) -> TestServer {
    let files = files_in(dir);
    identity.write(&files);
    let tls = ServerTls::load(files).expect("the certificate loads");
    TestServer::start_tls(tls, limits).await
}

/// `GET /health` over TLS, trusting `trusted` alone: the status and the
/// certificate the server presented, or why the handshake failed.
async fn health_over_tls(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
) -> Result<(u16, CertificateDer<'static>), std::io::Error> {
    let config = cloacina_tests::trusting(trusted);
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::from(addr.ip()), tcp)
        .await?;
    let presented = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .cloned()
        .expect("the server presents a certificate");
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    // Whether the server ends with close_notify or not, what came is read.
    let _ = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut response)).await;
    let status = cloacina_tests::http_status(&response);
    Ok((status, presented))
}

/// The TLS error inside a failed handshake.
fn tls_error(error: &std::io::Error) -> Option<&rustls::Error> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// What a plain-HTTP request to the port gets back before the server
/// closes (or 5 s pass).
async fn plain_http(addr: SocketAddr) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .expect("writes");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_only_with_the_certificate_given() {
    let dir = tempfile::tempdir().expect("dir");
    let identity = Identity::new();
    let server = server_with(&identity, dir.path(), Limits::default()).await;

    let (status, presented) = health_over_tls(server.addr, &identity.der)
        .await
        .expect("a client trusting the certificate connects");
    assert_eq!(status, 200);
    assert_eq!(presented, identity.der);

    // A client that trusts another certificate refuses this one.
    let stranger = Identity::new();
    let refused = health_over_tls(server.addr, &stranger.der)
        .await
        .expect_err("an untrusted certificate");
    assert!(
        matches!(
            tls_error(&refused),
            Some(rustls::Error::InvalidCertificate(_))
        ),
        "{refused}"
    );

    // Plain HTTP is not served: at most a TLS alert comes back.
    let answer = plain_http(server.addr).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&answer)
    );

    // None of that took the accept loop down.
    let (status, _) = health_over_tls(server.addr, &identity.der)
        .await
        .expect("still serving");
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_says_hello_is_cut_at_the_head_timeout() {
    let dir = tempfile::tempdir().expect("dir");
    let identity = Identity::new();
    let server = server_with(
        &identity,
        dir.path(),
        Limits {
            max_connections: 4,
            head_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
    )
    .await;
    // Every slot taken by a connection that sends nothing.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(server.addr).await.expect("connects"));
    }
    for stream in &mut silent {
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "a silent connection is closed: {closed:?}"
        );
    }
    // Their slots are free again.
    let (status, _) = tokio::time::timeout(
        Duration::from_secs(5),
        health_over_tls(server.addr, &identity.der),
    )
    .await
    .expect("served once the silent ones are cut")
    .expect("a handshake");
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_takes_up_new_files_and_keeps_the_old_ones_on_failure() {
    let dir = tempfile::tempdir().expect("dir");
    let files = files_in(dir.path());
    let first = Identity::new();
    let server = server_with(&first, dir.path(), Limits::default()).await;
    let tls = server.server().tls().expect("serving TLS").clone();

    // Renewed: new connections get the new certificate.
    let second = Identity::new();
    second.write(&files);
    tls.reload().expect("the new files load");
    let (status, presented) = health_over_tls(server.addr, &second.der)
        .await
        .expect("the new certificate is served");
    assert_eq!((status, &presented), (200, &second.der));
    assert!(health_over_tls(server.addr, &first.der).await.is_err());

    // A key file that holds no key: refused, the certificate in use stays.
    std::fs::write(&files.key, "half written\n").expect("writes");
    let error = tls.reload().expect_err("no key");
    assert!(
        matches!(&error, TlsError::NoKey { path } if *path == files.key),
        "{error}"
    );
    // A key that is not the certificate's: refused too.
    let third = Identity::new();
    std::fs::write(&files.cert, &third.pem.cert_pem).expect("writes");
    std::fs::write(&files.key, &second.pem.key_pem).expect("writes");
    let error = tls.reload().expect_err("a key of another certificate");
    assert!(matches!(&error, TlsError::Unusable { .. }), "{error}");

    let (status, presented) = health_over_tls(server.addr, &second.der)
        .await
        .expect("the certificate in use stays");
    assert_eq!((status, &presented), (200, &second.der));
    server.stop().await;
}
