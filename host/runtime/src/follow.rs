//! Following one execution's events in order, whichever host commits them:
//! read from a cursor, woken by this host's live events and, on
//! PostgreSQL, by other hosts' commits as their NOTIFY arrives, without
//! polling (a
//! reconnected listener wakes every follower, so a missed notification
//! costs a read, never an event). The database is the source of truth:
//! every wake-up reads from the cursor.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::database::Dialect;

use crate::engine::notify::RemoteEvents;
use crate::model::{Event, ExecutionId};
use crate::{Runner, RuntimeError};

const SQLITE_READ_EVERY: Duration = Duration::from_millis(200);

/// The events of one execution, from a cursor to its end.
#[derive(Debug)]
pub struct EventFollower {
    runner: Runner,
    execution: ExecutionId,
    cursor: i64,
    live: broadcast::Receiver<Arc<Event>>,
    remote: broadcast::Receiver<RemoteEvents>,
    pending: VecDeque<Event>,
    ended: bool,
}

impl EventFollower {
    pub(crate) fn new(runner: Runner, execution: ExecutionId, after: i64) -> Self {
        // Subscribed before the first read: nothing committed after it is
        // missed.
        let live = runner.subscribe();
        let remote = runner.subscribe_remote();
        EventFollower {
            runner,
            execution,
            cursor: after,
            live,
            remote,
            pending: VecDeque::new(),
            ended: false,
        }
    }

    /// The next event, in sequence order; `None` once the terminal event
    /// (completed, failed, cancelled) has been returned.
    pub async fn next(&mut self) -> Result<Option<Event>, RuntimeError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.ended |= event.event_type.is_terminal();
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            let fresh = self.runner.events(self.execution, self.cursor).await?;
            if let Some(last) = fresh.last() {
                self.cursor = last.sequence_num;
                self.pending.extend(fresh);
                continue;
            }
            self.wait_for_more().await;
        }
    }

    /// Waits until this host or another committed events of the execution
    /// (or may have: a lagged or reconnected channel).
    async fn wait_for_more(&mut self) {
        let mut live_open = true;
        let mut remote_open = true;
        // SQLite has no NOTIFY: another runner of this process on the same
        // file is read every 200 ms. PostgreSQL hosts are heard instead.
        let fallback = match self.runner.database().dialect() {
            Dialect::Sqlite => SQLITE_READ_EVERY,
            Dialect::Postgres => Duration::MAX,
        };
        let deadline = tokio::time::sleep(fallback.min(Duration::from_secs(3600)));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                received = self.live.recv(), if live_open => match received {
                    Ok(event) if event.execution_id != self.execution => continue,
                    Err(broadcast::error::RecvError::Closed) => live_open = false,
                    // Ours, or lagged (ours may be among the missed).
                    _ => return,
                },
                received = self.remote.recv(), if remote_open => match received {
                    Ok(RemoteEvents::Of(execution)) if execution != self.execution => continue,
                    Err(broadcast::error::RecvError::Closed) => remote_open = false,
                    _ => return,
                },
                () = &mut deadline => return,
                // Both closed: the runner is gone; read again shortly.
                () = tokio::time::sleep(SQLITE_READ_EVERY), if !live_open && !remote_open => return,
            }
        }
    }
}
