//! Every bound the server puts on what a client may hold: connections,
//! request heads, uploads, WebSocket messages, sockets and tickets. One
//! struct, so the defaults are read in one place and tests can shrink them.

use std::num::NonZeroU32;
use std::time::Duration;

/// What one server lets its clients hold at once, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open TCP connections. At the cap the server stops accepting until
    /// one closes (new ones wait in the kernel's backlog); keep it below
    /// the process's file-descriptor limit.
    pub max_connections: usize,
    /// A request head (line and headers) must arrive within this long of
    /// the connection starting to wait for it, which is also how long an
    /// idle keep-alive connection is kept: slow and idle clients are cut.
    pub head_timeout: Duration,
    /// The whole body of a package upload.
    pub max_upload_bytes: u64,
    /// Uploads verified at once; more are answered 503 with `Retry-After`.
    pub concurrent_uploads: usize,
    /// A WebSocket message (delivery and reactor sockets), and a frame.
    pub max_ws_message_bytes: usize,
    /// An event on the accumulator socket (one frame, one JSON document).
    pub max_event_bytes: usize,
    /// WebSockets open at once for one key.
    pub sockets_per_key: usize,
    /// Unconsumed WebSocket tickets one key may hold.
    pub tickets_per_key: usize,
    /// A delivery socket for an execution the key cannot see (unknown, or
    /// another tenant's) is closed after this long without a welcome.
    pub unknown_execution_grace: Duration,
    /// A delivery socket is closed this long after its execution's last
    /// event was pushed.
    pub idle_after_end: Duration,
    /// Requests with an unknown key one client address may make a minute
    /// (a burst of as many); past it, 429 until the budget refills.
    pub auth_failures_per_minute: NonZeroU32,
    /// Requests one key may make a second (a burst of as many); none: no
    /// limit.
    pub key_requests_per_second: Option<NonZeroU32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            head_timeout: Duration::from_secs(20),
            max_upload_bytes: 64 << 20,
            concurrent_uploads: 2,
            max_ws_message_bytes: 64 << 10,
            max_event_bytes: 1 << 20,
            sockets_per_key: 64,
            tickets_per_key: 16,
            unknown_execution_grace: Duration::from_secs(10),
            idle_after_end: Duration::from_secs(60),
            auth_failures_per_minute: NonZeroU32::new(60).unwrap_or(NonZeroU32::MIN),
            key_requests_per_second: None,
        }
    }
}
