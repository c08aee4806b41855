//! The host service: what `cloacinactl server start` runs.
//!
//! One [`Host`] holds a runtime per tenant (`public` and every tenant that
//! has packages), the trust store, the drop directory and a reconciler per
//! tenant, and runs one loop that keeps them converging:
//!
//! ```text
//!  wake-ups: upload (Host::wake) · drop-dir event (notify) ·
//!            NOTIFY from another host (PostgreSQL) · resync timer
//!        │
//!        ▼
//!  drop dir scan ──► registries ──► reconcile each tenant ──► runners
//! ```
//!
//! A pass that leaves work pending (a file still being written, a failed
//! package waiting for its retry, an old version draining) schedules the
//! next pass itself; otherwise the loop sleeps until woken or until the
//! periodic resync.

mod activity;
mod config;
mod error;
mod host;
mod stats;
mod tenant;
mod watch;

pub use config::HostConfig;
pub use error::HostError;
pub use host::{Host, OnRunning, Removal};
pub use stats::{DURATION_BUCKETS, HostStats};
pub use tenant::TenantHost;
