//! Computation graphs: the health routes (the 0.8 shapes, plus optional
//! fields the 0.8 SDK keeps as extras), the REST commands, the firing log,
//! and the frames of the accumulator and reactor sockets. Also the
//! compiler status and the `/health` / `/ready` bodies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

crate::wire! {
    pub struct CompilerStatus {
        /// `not_used`.
        pub status: String,
        pub pending: i64,
        pub building: i64,
        pub last_success_at: Option<String>,
        pub last_failure_at: Option<String>,
        pub seconds_since_heartbeat: Option<i64>,
    }

    /// `/health`, `/ready`.
    pub struct HealthStatus {
        /// `ok`, `ready` or `not ready`.
        pub status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
        /// With `reason: crashed computation graphs`: their names.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub crashed_graphs: Option<Vec<String>>,
    }

    /// An accumulator (`GET /v1/health/accumulators`).
    pub struct AccumulatorStatus {
        pub name: String,
        /// `starting`, `live`, `disconnected` or `socket_only`.
        pub status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub graph: Option<String>,
        /// `passthrough`, `stream`, `polling`, `batch` or `state`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub kind: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tenant_id: Option<String>,
    }

    /// A graph's nodes and edges; `label` is the routed field.
    pub struct GraphTopology {
        pub nodes: Vec<GraphTopologyNode>,
        pub edges: Vec<GraphTopologyEdge>,
    }

    pub struct GraphTopologyNode {
        pub id: String,
        #[serde(default)]
        pub inputs: Vec<String>,
    }

    pub struct GraphTopologyEdge {
        pub from: String,
        pub to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub label: Option<String>,
    }

    /// A computation graph (`GET /v1/health/graphs[/{name}]`).
    pub struct GraphStatus {
        pub name: String,
        /// `{"state": "starting" | "live" | "degraded" | "crashed" | "stopped", ...}`.
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        pub health: Value,
        pub accumulators: Vec<String>,
        pub paused: bool,
        #[serde(default)]
        pub topology: Option<GraphTopology>,
        /// The reactor's name: one reactor per graph, named like it.
        #[serde(default)]
        pub reactor: Option<String>,
        #[serde(default)]
        pub reaction_mode: Option<String>,
        #[serde(default)]
        pub input_strategy: Option<String>,
        /// Firings since the graph was first loaded.
        #[serde(default)]
        pub fires: i64,
        /// RFC 3339.
        #[serde(default)]
        pub last_fired_at: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tenant_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source_package: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub package_version: Option<String>,
        /// Accepted events not consumed yet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub pending_events: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub restarts: Option<u32>,
        /// Workflows started once per firing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub subscriptions: Option<Vec<String>>,
    }

    /// A reactor (`GET /v1/health/reactors`).
    pub struct ReactorStatus {
        pub name: String,
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        pub health: Value,
        pub accumulators: Vec<String>,
        #[serde(default)]
        pub reaction_mode: Option<String>,
        #[serde(default)]
        pub input_strategy: Option<String>,
        #[serde(default)]
        pub bound_graphs: Vec<String>,
        pub paused: bool,
        #[serde(default)]
        pub fires: i64,
        #[serde(default)]
        pub last_fired_at: Option<String>,
    }

    /// `POST /v1/health/reactors/{name}/fire`.
    pub struct FireRequest {
        /// `force_fire` (default) or `fire_with`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mode: Option<String>,
        /// With `fire_with`: every source's new value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
        pub inputs: Option<serde_json::Map<String, Value>>,
    }

    pub struct FireResponse {
        pub reactor: String,
        pub mode: String,
        pub sources_injected: Vec<String>,
        /// The firing it caused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub firing: Option<Firing>,
    }

    /// `POST /v1/health/accumulators/{name}/inject`.
    pub struct InjectRequest {
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        pub event: Value,
    }

    pub struct InjectResponse {
        pub accumulator: String,
        /// Graphs the event was committed for.
        pub delivered: usize,
    }

    /// `POST /v1/health/reactors/{name}/pause|resume`.
    pub struct PauseResponse {
        pub reactor: String,
        pub paused: bool,
    }

    /// One firing of the log (`GET /v1/health/reactors/{name}/fires`).
    pub struct Firing {
        pub id: i64,
        /// RFC 3339.
        pub fired_at: String,
        pub ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<String>,
        pub duration_ms: f64,
        /// Every source's value.
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        pub inputs: Value,
        /// Each node that ran, with its output.
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        pub outputs: Value,
        pub manual: bool,
        /// The accumulator events it consumed (inbox sequence numbers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub first_seq: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_seq: Option<i64>,
    }
}

/// A reactor socket command (the 0.8 protocol): JSON text frames tagged by
/// `command`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReactorCommand {
    ForceFire,
    /// Replace every source's value, then fire. Values are the 0.8 byte
    /// arrays of JSON text, JSON text in a string, or any JSON value.
    FireWith {
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        cache: serde_json::Map<String, Value>,
    },
    GetState,
    Pause,
    Resume,
}

/// A reactor socket reply: exactly one per command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReactorReply {
    Fired,
    /// Every source's value as JSON text.
    State {
        cache: BTreeMap<String, String>,
    },
    Paused,
    Resumed,
    Error {
        message: String,
    },
}

/// What the accumulator socket sends in acknowledged mode (`?ack=1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AccumulatorFrame {
    /// Frames 1..=seq of this connection are durable (cumulative).
    Ack { seq: u64 },
    /// Frame `seq` will never be processed.
    Rejected {
        seq: u64,
        /// `invalid_json`, `too_large` or `unknown_accumulator`.
        code: String,
        message: String,
    },
}
