//! What the graph runtime reports and accepts: statuses, firings, commands.

use cloacina_contract::manifest::{AccumulatorKind, ComputationGraphDeclaration};
use serde::Serialize;
use serde_json::{Map, Value};

/// An operator's command to a graph's reactor. Each is answered only once
/// it has taken effect (committed).
#[derive(Debug, Clone, PartialEq)]
pub enum GraphCommand {
    /// Fire once with the current values, whatever the criterion says.
    ForceFire,
    /// Replace every source's value, then fire.
    FireWith(Map<String, Value>),
    Pause,
    /// Resume, and fire at once if the criterion holds.
    Resume,
    /// The current value of every source.
    GetState,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandReply {
    Fired(FiringRecord),
    Paused,
    Resumed,
    State(Map<String, Value>),
}

/// How a graph's reactor is, in the 0.8 contract's words plus `crashed`
/// (past its restart budget) and `stopped`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReactorHealth {
    Starting,
    Live,
    Degraded {
        disconnected: Vec<String>,
    },
    Crashed {
        error: String,
        restarts: u32,
    },
    Stopped,
    /// The reactor runs on another host (`owner`), or on none for the
    /// moment (a host is taking the graph over); events are still accepted
    /// here.
    Remote {
        owner: Option<String>,
    },
}

/// The health of one accumulator, as the 0.8 `status` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccumulatorHealth {
    Starting,
    Live,
    Disconnected,
    /// Fed by pushes only (socket, REST, embedded API).
    SocketOnly,
}

impl AccumulatorHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            AccumulatorHealth::Starting => "starting",
            AccumulatorHealth::Live => "live",
            AccumulatorHealth::Disconnected => "disconnected",
            AccumulatorHealth::SocketOnly => "socket_only",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccumulatorStatus {
    pub name: String,
    pub graph: String,
    pub kind: AccumulatorKind,
    pub status: AccumulatorHealth,
}

/// A graph as this host runs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphStatus {
    pub name: String,
    pub package: String,
    pub version: String,
    pub health: ReactorHealth,
    pub accumulators: Vec<AccumulatorStatus>,
    pub paused: bool,
    /// Firings since the graph was first loaded (kept across restarts).
    pub fires: u64,
    pub last_fired_at_ms: Option<i64>,
    /// Accepted events not yet consumed by a firing or checkpoint.
    pub pending_events: u64,
    pub restarts: u32,
    pub declaration: ComputationGraphDeclaration,
}

/// One firing, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct FiringRecord {
    pub graph: String,
    pub id: i64,
    pub fired_at_ms: i64,
    pub manual: bool,
    pub ok: bool,
    pub error: Option<String>,
    pub duration_us: i64,
    /// The inbox sequence numbers this firing consumed, if any.
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// Every source's value when it fired.
    pub inputs: Value,
    /// Each node that ran, with its output.
    pub outputs: Value,
}

/// An event accepted for a graph: committed to its inbox.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InboxEvent {
    pub seq: i64,
    pub accumulator: String,
    pub payload: Value,
    pub received_at: i64,
    /// When this process accepted it (None when read back from the inbox):
    /// for the event-to-fire latency.
    pub accepted: Option<std::time::Instant>,
}
