//! This host's lease: a row in `hosts` whose heartbeat it renews. Tasks
//! claimed by a host whose heartbeat is older than the lease TTL are put
//! back by the reaper (on PostgreSQL, every host reaps).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Command;
use crate::RuntimeError;
use crate::clock::now_ms;
use crate::database::{Database, Dialect};

pub(crate) async fn register_host(db: &Database, host: &str) -> Result<(), RuntimeError> {
    let now = now_ms();
    sqlx::query("INSERT INTO hosts (id, started_at, heartbeat_at) VALUES ($1, $2, $2)")
        .bind(host)
        .bind(now)
        .execute(db.pool())
        .await
        .map_err(RuntimeError::db("registering this host"))?;
    Ok(())
}

pub(crate) async fn unregister_host(db: &Database, host: &str) {
    if let Err(error) = sqlx::query("DELETE FROM hosts WHERE id = $1")
        .bind(host)
        .execute(db.pool())
        .await
    {
        tracing::warn!(
            error = &error as &dyn std::error::Error,
            "could not remove this host's lease row"
        );
    }
}

/// Renews the heartbeat every third of the TTL and, on PostgreSQL, asks
/// the writer to reap expired leases every half TTL.
pub(crate) fn spawn_lease_keeper(
    db: Database,
    host: String,
    ttl: Duration,
    writer: mpsc::UnboundedSender<Command>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut heartbeat = tokio::time::interval(ttl / 3);
        let mut reap = tokio::time::interval(ttl / 2);
        let shared = db.dialect() == Dialect::Postgres;
        loop {
            tokio::select! {
                _ = heartbeat.tick() => {
                    let renewed = sqlx::query("UPDATE hosts SET heartbeat_at = $1 WHERE id = $2")
                        .bind(now_ms())
                        .bind(&host)
                        .execute(db.pool())
                        .await;
                    match renewed {
                        Ok(done) if done.rows_affected() == 0 => {
                            // Removed (say, by an operator): claim it again.
                            let _ = register_host(&db, &host).await;
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(error = &error as &dyn std::error::Error, "could not renew this host's lease"),
                    }
                }
                _ = reap.tick(), if shared => {
                    if writer.send(Command::Reap { all_but_me: false }).is_err() {
                        break;
                    }
                }
            }
        }
    })
}
