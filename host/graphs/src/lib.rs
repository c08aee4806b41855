//! Computation graphs on a host.
//!
//! A package declares graphs: accumulators (named sources of events), a
//! reactor criterion, and nodes that are tasks of the package. For each
//! graph of a tenant the host runs one reactor, supervised:
//!
//! ```text
//!  push / socket / REST ─► accept (backpressure) ─► writer ─ commit ─► ack
//!                                                     │  (graph_events)
//!                                                     ▼
//!                 supervisor ─ restarts ─► reactor: fold, criterion, fire
//!                                            │  nodes = task calls (blocking thread)
//!                                            ▼
//!                  writer ─ one commit per firing (or burst): consumed events,
//!                  checkpoint, firing record ─► subscribed workflows, once each
//! ```
//!
//! Nothing is acknowledged before it is committed, and a reactor starts
//! from the database each time, so a crash or a restart loses no
//! acknowledged event. Firings are at-least-once for node calls (a crash
//! after the calls and before the commit runs them again) and exactly once
//! for their record and their workflow starts.

mod error;
mod ingest;
mod keeper;
mod lease;
mod metrics;
mod model;
mod notify;
mod reactor;
mod remote;
mod runtime;
pub mod schema;
mod slot;
mod store;
mod supervisor;
mod writer;

pub use error::GraphError;
pub use ingest::Accepted;
pub use metrics::GraphMetrics;
pub use model::{
    AccumulatorHealth, AccumulatorStatus, CommandReply, FiringRecord, GraphCommand, GraphStatus,
    ReactorHealth,
};
pub use reactor::workflow_context;
pub use runtime::{GraphConfig, GraphRuntime};
pub use supervisor::Supervision;
