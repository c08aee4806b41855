//! The delivery WebSocket's frames: JSON text, tagged by `type`, each with
//! the protocol version.

use serde::{Deserialize, Serialize};

/// The delivery protocol this crate describes.
pub const PROTOCOL_VERSION: u32 = 1;

/// Close codes the server uses beyond the standard ones.
pub mod close {
    /// The hello named a protocol version the server does not speak.
    pub const VERSION_MISMATCH: u16 = 4426;
    /// No such recipient (or execution), or no hello in time.
    pub const NOT_FOUND: u16 = 4404;
}

/// Client to server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First: the version spoken, and the last id already seen.
    Hello {
        protocol_version: u32,
        #[serde(default)]
        since_id: Option<i64>,
    },
    /// A pushed id handled: not delivered again.
    Ack { protocol_version: u32, id: i64 },
}

/// Server to client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        protocol_version: u32,
        max_known_id: i64,
    },
    Push {
        protocol_version: u32,
        id: i64,
        /// `exec_event`.
        kind: String,
        recipient: String,
        tenant_id: Option<String>,
        /// The payload (an [`ExecutionEvent`](crate::executions::ExecutionEvent)
        /// for `exec_events:<id>`), JSON in base64.
        payload_b64: String,
    },
}
