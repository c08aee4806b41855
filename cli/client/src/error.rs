//! What can go wrong talking to a server.

use cloacina_wire::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: the server is down, unreachable, or the connection broke.
    #[error("cannot reach the server at {server}")]
    Unreachable {
        server: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// The server answered with an error: its status and `{error, code}`.
    #[error("the server answered {status} {}: {}", body.code, body.error)]
    Refused {
        status: u16,
        body: ErrorBody,
        /// `Retry-After`, seconds (429, 503).
        retry_after: Option<u64>,
    },
    /// A success whose body is not what the route documents.
    #[error("unexpected reply from {route}")]
    Unreadable {
        route: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The TLS handshake failed: most often the server's certificate is
    /// not one this client trusts (see [`crate::TlsRoots`]), or the
    /// server does not speak TLS.
    #[error("the TLS handshake with {server} failed")]
    Tls {
        server: String,
        #[source]
        source: rustls::Error,
    },
    /// A file of trusted certificates that cannot be used.
    #[error("cannot trust the certificates in {path}: {problem}")]
    Certificates { path: String, problem: String },
    #[error("cannot read {path}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A socket failed or spoke out of protocol.
    #[error("socket: {0}")]
    Socket(String),
    /// The server closed a socket on its side: its close code (4404: no
    /// such name; 1001: stopping; 1008: the key was revoked; 1009: a
    /// message over the limit; 1011: it failed) and reason.
    #[error("the server closed the socket ({code}: {reason})")]
    Closed { code: u16, reason: String },
    /// Events sent on the accumulator socket that the server did not
    /// acknowledge in time: the first `acked` are durable, the rest unknown.
    #[error("the server acknowledged {acked} of {sent} events, then nothing for {waited_secs} s")]
    Unacknowledged {
        sent: u64,
        acked: u64,
        waited_secs: u64,
    },
}

impl ClientError {
    /// The server's certificate was refused: not issued by a trusted
    /// authority, for another name, or expired.
    pub fn is_untrusted_certificate(&self) -> bool {
        matches!(
            self,
            ClientError::Tls {
                source: rustls::Error::InvalidCertificate(_),
                ..
            }
        )
    }

    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}
