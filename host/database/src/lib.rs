//! The database layer every host crate shares: where a tenant's data
//! lives (a SQLite file or a PostgreSQL schema), one connection pool per
//! tenant database, numbered migrations per component, `LISTEN` that
//! survives its connection, and which errors mean "unreachable now, try
//! again".
//!
//! It knows no table of its own but the migrations ledger: the runtime
//! and the registry bring their schemas (see [`Database::migrate`]).

pub mod clock;
mod connection;
mod error;
mod listen;
mod migrations;
mod tenant;

pub use connection::{
    ACQUIRE_TIMEOUT, Database, DatabaseUrl, Dialect, drop_role, drop_tenant_data, is_transient,
    is_unavailable, provision_tenant_role, redact, role_exists,
};
pub use error::DatabaseError;
pub use listen::{Heard, listen};
pub use migrations::Migration;
pub use tenant::TenantId;
