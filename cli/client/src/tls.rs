//! Which servers the client trusts over `https://` and `wss://`: by default
//! the public certificate authorities (Mozilla's roots, `webpki-roots`);
//! or, instead, the certificates of one PEM file: a private CA, or a
//! server's own self-signed certificate (`cloacinactl --ca-cert`,
//! `CLOACINA_CA_CERT`). The HTTP agent and every socket are configured
//! from one [`TlsRoots`], so they cannot disagree about a server.

use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::{ClientConfig, RootCertStore};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::handshake::client::Response;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, WebSocket};

use crate::ClientError;

/// The certificates a client accepts a server's certificate from.
#[derive(Debug, Clone)]
pub struct TlsRoots {
    /// For the HTTP agent (ureq builds its rustls configuration from it).
    http: ureq::tls::TlsConfig,
    /// The same certificates, for the sockets.
    sockets: Arc<RootCertStore>,
}

impl Default for TlsRoots {
    fn default() -> Self {
        TlsRoots::public()
    }
}

impl TlsRoots {
    /// The public certificate authorities (what browsers trust).
    pub fn public() -> Self {
        TlsRoots {
            http: ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::WebPki)
                .build(),
            sockets: Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }),
        }
    }

    /// Only the certificates in the PEM file at `path` (every
    /// `CERTIFICATE` block in it), instead of the public authorities.
    pub fn from_pem_file(path: &Path) -> Result<Self, ClientError> {
        let text = std::fs::read(path).map_err(|source| ClientError::File {
            path: path.display().to_string(),
            source,
        })?;
        let unusable = |problem: String| ClientError::Certificates {
            path: path.display().to_string(),
            problem,
        };
        let certificates = CertificateDer::pem_slice_iter(&text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| unusable(format!("not readable PEM ({error})")))?;
        if certificates.is_empty() {
            return Err(unusable(
                "no certificate (a PEM `CERTIFICATE` block) in it".to_owned(),
            ));
        }
        let mut store = RootCertStore::empty();
        for certificate in &certificates {
            store.add(certificate.clone()).map_err(|error| {
                unusable(format!("a certificate in it cannot be trusted ({error})"))
            })?;
        }
        let http_roots = certificates
            .iter()
            .map(|certificate| ureq::tls::Certificate::from_der(certificate).to_owned());
        Ok(TlsRoots {
            http: ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::from(http_roots))
                .build(),
            sockets: Arc::new(store),
        })
    }

    pub(crate) fn http(&self) -> ureq::tls::TlsConfig {
        self.http.clone()
    }

    /// Opens a WebSocket at `request`'s `ws://` or `wss://` URL; a `wss://`
    /// server must present a certificate these roots accept.
    pub(crate) fn connect_socket(
        &self,
        request: impl IntoClientRequest,
    ) -> Result<(WebSocket<MaybeTlsStream<TcpStream>>, Response), tungstenite::Error> {
        let request = request.into_client_request()?;
        let uri = request.uri();
        let host = uri.host().ok_or(tungstenite::Error::Url(
            tungstenite::error::UrlError::NoHostName,
        ))?;
        // `[::1]` in a URL, `::1` to connect to.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let secure = uri.scheme_str() == Some("wss");
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let stream = TcpStream::connect((host, port))?;
        // Small frames (acks, events) go out at once.
        stream.set_nodelay(true)?;
        let connector = Connector::Rustls(self.socket_config()?);
        tungstenite::client_tls_with_config(request, stream, None, Some(connector)).map_err(
            |error| match error {
                HandshakeError::Failure(error) => error,
                // A blocking stream does not stop half-way.
                HandshakeError::Interrupted(_) => tungstenite::Error::Io(io::Error::other(
                    "the WebSocket handshake was interrupted",
                )),
            },
        )
    }

    /// rustls on ring, named rather than taken from the process default,
    /// so a second provider compiled in elsewhere cannot make this fail.
    fn socket_config(&self) -> Result<Arc<ClientConfig>, tungstenite::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| {
                tungstenite::Error::Tls(tungstenite::error::TlsError::Rustls(Box::new(error)))
            })?
            .with_root_certificates(self.sockets.clone())
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// The TLS failure inside an HTTP error, if that is what it is.
pub(crate) fn in_http(error: &ureq::Error) -> Option<rustls::Error> {
    match error {
        ureq::Error::Rustls(error) => Some(error.clone()),
        ureq::Error::Io(error) => in_io(error),
        _ => None,
    }
}

/// The TLS failure inside a socket error, if that is what it is.
pub(crate) fn in_socket(error: &tungstenite::Error) -> Option<rustls::Error> {
    match error {
        tungstenite::Error::Tls(tungstenite::error::TlsError::Rustls(error)) => {
            Some((**error).clone())
        }
        tungstenite::Error::Io(error) => in_io(error),
        _ => None,
    }
}

/// rustls reports a failed handshake through the stream as an I/O error
/// carrying its own.
fn in_io(error: &io::Error) -> Option<rustls::Error> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned()
}
