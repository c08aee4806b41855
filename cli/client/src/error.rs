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
    #[error("cannot read {path}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The delivery socket failed or spoke out of protocol.
    #[error("delivery socket: {0}")]
    Socket(String),
}

impl ClientError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}
