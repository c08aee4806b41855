//! Registry changes announced between hosts on PostgreSQL.
//!
//! A change is announced with `NOTIFY` inside the transaction that makes
//! it, so a listener hears of it exactly when it is visible. The payload
//! is the tenant whose packages changed, or [`EVERY_TENANT`] for a change
//! of trust. SQLite has one host per file: nothing to announce.

use std::time::Duration;

use cloacina_database::{Dialect, TenantId};
use sqlx::postgres::PgListener;
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
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let listener = async {
                let mut listener = PgListener::connect(&url).await?;
                listener.listen(CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = match listener.await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        "cannot listen for registry changes; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if sender.is_closed() {
                        return;
                    }
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            if sender.send(Change::Everything).is_err() {
                return;
            }
            loop {
                match listener.recv().await {
                    Ok(notification) => {
                        let change = match notification.payload() {
                            EVERY_TENANT => Change::Everything,
                            tenant => match TenantId::new(tenant) {
                                Ok(tenant) => Change::Tenant(tenant),
                                Err(_) => Change::Everything,
                            },
                        };
                        if sender.send(change).is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(
                            error = &error as &dyn std::error::Error,
                            "lost the registry listener; reconnecting"
                        );
                        break;
                    }
                }
            }
        }
    });
    receiver
}
