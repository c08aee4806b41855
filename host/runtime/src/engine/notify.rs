//! PostgreSQL wake-ups between hosts: a writer that leaves claimable work
//! or ends executions sends `NOTIFY cloacina_<tenant>` with the ended ids;
//! every host listens, claims what fits and wakes its waiters.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Command;
use crate::completions::Completions;
use crate::model::ExecutionId;

/// The PostgreSQL NOTIFY channel of a tenant's schema.
pub(crate) fn channel(db: &crate::Database) -> String {
    format!("cloacina_{}", db.tenant())
}

pub(crate) fn spawn_listener(
    url: String,
    channel: String,
    host_id: String,
    writer: mpsc::UnboundedSender<Command>,
    completions: Arc<Completions>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut listener = match PgListener::connect(&url).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, "cannot LISTEN for other hosts; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if let Err(error) = listener.listen(&channel).await {
                tracing::warn!(%error, "LISTEN failed; retrying");
                tokio::time::sleep(backoff).await;
                continue;
            }
            backoff = Duration::from_millis(100);
            // After (re)connecting, notifications may have been missed.
            if writer.send(Command::Wake).is_err() {
                return;
            }
            loop {
                match listener.recv().await {
                    Ok(notification) => {
                        let (sender, ended) = notification
                            .payload()
                            .split_once(';')
                            .unwrap_or(("", notification.payload()));
                        if sender == host_id {
                            // This host's own commit: it knows already.
                            continue;
                        }
                        let ended: Vec<ExecutionId> =
                            ended.split(',').filter_map(|id| id.parse().ok()).collect();
                        completions.complete(&ended);
                        if writer.send(Command::Wake).is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "lost the LISTEN connection; reconnecting");
                        break;
                    }
                }
            }
        }
    })
}
