//! The reconciler: keeps what a host has loaded equal to what its registry
//! holds, for one tenant.
//!
//! Each pass reads the registry (desired) and compares it with what this
//! host loaded (actual). A package that is new, or whose bytes changed, is
//! verified again from its stored bytes against the host's trust store,
//! extracted through the safe reader into the content-addressed cache,
//! loaded (native: in a worker process when a worker program is given, else
//! in process; WebAssembly: sandboxed), cross-checked against its manifest
//! and registered with the runtime; its row becomes `loaded`, or `failed`
//! with the error (a failed package never blocks the others). A package that
//! left the registry, or whose signer was revoked, is unregistered: new
//! executions stop using it, running ones keep the workflow they hold.

mod drop_dir;
mod load;
mod reconciler;

pub use drop_dir::{DropDir, DropReport};
pub use reconciler::{ReconcileReport, Reconciler, ReconcilerConfig};
