//! TLS end to end (issue 19): `server start --tls-cert --tls-key` serves
//! HTTPS only; `cloacinactl` and the client library trust a self-signed
//! certificate with `--ca-cert` (or `CLOACINA_CA_CERT`), over HTTP and the
//! sockets alike, and refuse it otherwise with an error that says so;
//! SIGHUP takes up renewed files for new connections and keeps the
//! certificate in use when the files on disk do not load.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use cloacina_client::{Client, ClientError, TlsRoots};
use cloacina_tests::{SelfSigned, cloacinactl, cloacinactl_path, scratch};
use rustls::pki_types::{CertificateDer, ServerName};

use super::{Server, bootstrap_key};

const CERT: &str = "tls/cert.pem";
const KEY: &str = "tls/key.pem";

/// Writes a fresh certificate and key to DIR/tls/: its DER.
fn install(dir: &Path, identity: &SelfSigned) -> CertificateDer<'static> {
    std::fs::create_dir_all(dir.join("tls")).expect("tls dir");
    identity.write(&dir.join(CERT), &dir.join(KEY));
    CertificateDer::from(identity.der.clone())
}

/// `GET /health` over TLS, trusting `trusted` alone: the status and the
/// certificate the server presented, or the TLS error of the handshake.
fn health_over_tls(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
) -> Result<(u16, CertificateDer<'static>), rustls::Error> {
    let config = cloacina_tests::trusting(trusted);
    let mut connection =
        rustls::ClientConnection::new(Arc::new(config), ServerName::from(addr.ip()))?;
    let mut socket = TcpStream::connect(addr).expect("connects");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a read timeout");
    while connection.is_handshaking() {
        if let Err(error) = connection.complete_io(&mut socket) {
            let tls = error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .cloned();
            return Err(tls.unwrap_or_else(|| panic!("not a TLS failure: {error}")));
        }
    }
    let presented = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .cloned()
        .expect("the server presents a certificate");
    let mut stream = rustls::Stream::new(&mut connection, &mut socket);
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("writes");
    let mut response = Vec::new();
    // Whether the server ends with close_notify or not, what came is read.
    let _ = stream.read_to_end(&mut response);
    let status = cloacina_tests::http_status(&response);
    Ok((status, presented))
}

/// What a plain-HTTP request to the port gets back before the server
/// closes.
fn plain_http(addr: SocketAddr) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .expect("writes");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// `kill -HUP`: the server re-reads its certificate and key.
fn hang_up(server: &Server) {
    let pid = server.child.id().to_string();
    let status = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn https_with_a_self_signed_certificate_renewed_on_sighup() {
    let dir = scratch();
    let first = install(dir.path(), &SelfSigned::new());
    let mut server = Server::start_with(
        dir.path(),
        &["--in-process", "--tls-cert", CERT, "--tls-key", KEY],
    );
    let addr: SocketAddr = server
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    server.expect(&["HTTPS only"]);
    // From here SIGHUP reloads (and no longer ends the process).
    server.expect(&["host running"]);
    let https = format!("https://{addr}");
    let key = bootstrap_key(dir.path());
    let remote = |args: &[&str]| {
        cloacinactl(
            dir.path(),
            &[args, &["--server", &https, "--api-key", &key]].concat(),
        )
    };

    // Trusted: the certificate given is served; the CLI works with
    // --ca-cert, or CLOACINA_CA_CERT.
    let (status, presented) = health_over_tls(addr, &first).expect("a trusting client");
    assert_eq!((status, &presented), (200, &first));
    remote(&["package", "list", "--ca-cert", CERT]).success();
    remote(&["tenant", "list", "--ca-cert", CERT]).success();
    let by_env = Command::new(cloacinactl_path())
        .args(["package", "list", "--server", &https, "--api-key", &key])
        .env("CLOACINA_CA_CERT", dir.path().join(CERT))
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(
        by_env.status.success(),
        "{}",
        String::from_utf8_lossy(&by_env.stderr)
    );

    // Not trusted: a clear error and what to do, exit 1 (not "try later").
    let refused = remote(&["package", "list"]).failure(1, "certificate");
    assert!(refused.stderr.contains("--ca-cert"), "{refused}");
    remote(&["package", "list", "--ca-cert", "nope.pem"]).failure(2, "nope.pem");

    // Plain HTTP to the TLS port is not served.
    let answer = plain_http(addr);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&answer)
    );

    // The sockets (wss://) trust what the HTTP agent trusts.
    let roots = TlsRoots::from_pem_file(&dir.path().join(CERT)).expect("the certificate");
    let client = Client::new(&https, &key, "public").with_tls_roots(roots);
    let mut socket = client
        .accumulator_socket("no_such_accumulator")
        .expect("the wss upgrade");
    let closed = socket.finish(|_| {});
    assert!(
        matches!(closed, Err(ClientError::Closed { code: 4404, .. })),
        "the server's close came over TLS: {closed:?}"
    );
    client
        .follow("00000000-0000-0000-0000-000000000000")
        .expect("a ticket over https, the delivery socket over wss")
        .close();
    let stranger = Client::new(&https, &key, "public");
    let refused = stranger
        .accumulator_socket("no_such_accumulator")
        .expect_err("an untrusted certificate over wss");
    assert!(refused.is_untrusted_certificate(), "{refused}");
    let refused = stranger.workflows().expect_err("untrusted over https");
    assert!(refused.is_untrusted_certificate(), "{refused}");

    // Renewed on disk, SIGHUP: new connections get the new certificate.
    let second = install(dir.path(), &SelfSigned::new());
    hang_up(&server);
    server.expect(&["reloaded the TLS certificate"]);
    let (status, presented) = health_over_tls(addr, &second).expect("the renewed certificate");
    assert_eq!((status, &presented), (200, &second));
    assert!(matches!(
        health_over_tls(addr, &first),
        Err(rustls::Error::InvalidCertificate(_))
    ));
    remote(&["package", "list", "--ca-cert", CERT]).success();

    // A half-written key on SIGHUP: logged, and the certificate in use
    // stays.
    std::fs::write(dir.path().join(KEY), "-----BEGIN PRIVATE KEY-----\n").expect("writes");
    hang_up(&server);
    server.expect(&["cannot reload the TLS certificate", "key.pem"]);
    let (status, presented) = health_over_tls(addr, &second).expect("still the renewed one");
    assert_eq!((status, &presented), (200, &second));

    let exit = server.terminate();
    assert!(exit.success(), "{exit:?}");
}
