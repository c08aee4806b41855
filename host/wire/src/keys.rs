//! API keys and WebSocket tickets.

crate::wire! {
    /// `POST /v1/auth/keys`, `POST /v1/tenants/{tenant_id}/keys`.
    pub struct CreateKeyRequest {
        pub name: String,
        /// `admin` (default), `write` or `read`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub role: Option<String>,
    }

    /// A key as listed: never its hash or plaintext.
    pub struct KeyInfo {
        pub id: String,
        pub name: String,
        /// Its role: `admin`, `write` or `read`.
        pub permissions: String,
        /// None: a global key.
        pub tenant_id: Option<String>,
        /// God mode.
        pub is_admin: bool,
        pub created_at: String,
        pub revoked: bool,
    }

    /// A key just created: the only time its plaintext is shown.
    pub struct KeyCreatedResponse {
        pub id: String,
        pub name: String,
        pub key: String,
        pub permissions: String,
        pub tenant_id: Option<String>,
        pub is_admin: bool,
        pub created_at: String,
    }

    pub struct KeyRevokedResponse {
        /// `revoked`.
        pub status: String,
        pub id: String,
    }

    /// A single-use ticket for a WebSocket upgrade (`?token=`).
    pub struct WsTicketResponse {
        pub ticket: String,
        pub expires_in_seconds: u64,
    }
}
