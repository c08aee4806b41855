//! Registry changes announced between hosts on PostgreSQL.
//!
//! A change is announced with `NOTIFY` inside the transaction that makes
//! it, so a listener hears of it exactly when it is visible. The payload
//! is the tenant whose packages changed, or [`EVERY_TENANT`] for a change
//! of trust. SQLite has one host per file: nothing to announce.

use cloacina_database::{Dialect, Heard, TenantId};
use tokio::sync::mpsc;

use crate::RegistryError;

/// The PostgreSQL channel every host listens on.
pub const CHANNEL: &str = "cloacina_registry";

/// The payload of a change that concerns every tenant (trust).
pub const EVERY_TENANT: &str = "*";

/// What another host changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// One tenant's packages.
    Tenant(TenantId),
    /// Possibly anything (trust changed, or the connection was lost and
    /// changes may have been missed).
    Everything,
}

/// Announces a change to `payload` (a tenant or [`EVERY_TENANT`]) when the
/// transaction on `connection` commits.
pub(crate) async fn announce(
    connection: &mut sqlx::AnyConnection,
    dialect: Dialect,
    payload: &str,
) -> Result<(), RegistryError> {
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(connection)
            .await
            .map_err(RegistryError::db("announcing a registry change"))?;
    }
    Ok(())
}

/// Listens for changes announced on the PostgreSQL at `url`, reconnecting
/// with backoff; after each (re)connection it reports
/// [`Change::Everything`], since changes may have been missed meanwhile.
/// The task ends when the receiver is dropped.
pub fn listen(url: String) -> mpsc::UnboundedReceiver<Change> {
    let (sender, receiver) = mpsc::unbounded_channel();
    cloacina_database::listen(url, CHANNEL.to_owned(), move |heard| {
        let change = match heard {
            Heard::Unreachable => return !sender.is_closed(),
            Heard::Connected => Change::Everything,
            Heard::Payload(payload) => match payload.as_str() {
                EVERY_TENANT => Change::Everything,
                tenant => TenantId::new(tenant).map_or(Change::Everything, Change::Tenant),
            },
        };
        sender.send(change).is_ok()
    });
    receiver
}
