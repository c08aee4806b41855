//! PostgreSQL wake-ups between hosts: a writer that leaves claimable work
//! or ends executions sends `NOTIFY cloacina_<tenant>` with the ended ids;
//! every host listens, claims what fits, wakes its waiters, and stops its
//! calls of those executions still running (a cancel sent to another host).

use std::sync::Arc;

use cloacina_database::Heard;
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
    cloacina_database::listen(url, channel, move |heard| {
        match heard {
            Heard::Unreachable => return !writer.is_closed(),
            // Notifications may have been missed: look for work anyway.
            Heard::Connected => {}
            Heard::Payload(payload) => {
                let (sender, ended) = payload.split_once(';').unwrap_or(("", &payload));
                if sender == host_id {
                    // This host's own commit: it knows already.
                    return true;
                }
                let ended: Vec<ExecutionId> =
                    ended.split(',').filter_map(|id| id.parse().ok()).collect();
                completions.complete(&ended);
                // An execution another host ended (a cancel sent there)
                // may still have calls running here: they stop now.
                if !ended.is_empty() && writer.send(Command::StopCalls(ended)).is_err() {
                    return false;
                }
            }
        }
        writer.send(Command::Wake).is_ok()
    })
}
