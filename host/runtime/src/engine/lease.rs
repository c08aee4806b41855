//! This host's lease: a row in `hosts` whose heartbeat it renews. Tasks
//! claimed by a host whose heartbeat is older than the lease TTL are put
//! back by the reaper (on PostgreSQL, every host reaps).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Command;
use crate::clock::now_ms;
use crate::database::{Database, Dialect};
use crate::{HostIdentity, RuntimeError};

/// Writes this host's lease row, with where it serves and what it runs.
/// A row of the same id is taken over rather than refused: the runners of
/// one process share their id, so a tenant runner started again in the
/// same process (after a start that failed halfway, say) finds the row
/// its predecessor left.
pub(crate) async fn register_host(db: &Database, host: &HostIdentity) -> Result<(), RuntimeError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO hosts (id, started_at, heartbeat_at, address, version) VALUES ($1, $2, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET started_at = $2, heartbeat_at = $2, address = $3, version = $4",
    )
    .bind(&host.id)
    .bind(now)
    .bind(host.address.as_deref())
    .bind(&host.version)
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
    host: HostIdentity,
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
                        .bind(&host.id)
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
