//! Following one execution's events in order, whichever host commits them:
//! read from a cursor, woken by this host's live events and, for other
//! hosts' commits, at least every 200 ms.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::model::{Event, ExecutionId};
use crate::{Runner, RuntimeError};

/// How long a follower waits before reading the database again when this
/// host commits nothing for its execution.
const OTHER_HOSTS: Duration = Duration::from_millis(200);

/// The events of one execution, from a cursor to its end.
#[derive(Debug)]
pub struct EventFollower {
    runner: Runner,
    execution: ExecutionId,
    cursor: i64,
    live: broadcast::Receiver<Arc<Event>>,
    pending: VecDeque<Event>,
    ended: bool,
}

impl EventFollower {
    pub(crate) fn new(runner: Runner, execution: ExecutionId, after: i64) -> Self {
        let live = runner.subscribe();
        EventFollower {
            runner,
            execution,
            cursor: after,
            live,
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

    async fn wait_for_more(&mut self) {
        let deadline = tokio::time::sleep(OTHER_HOSTS);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                received = self.live.recv() => match received {
                    Ok(event) if event.execution_id != self.execution => continue,
                    Err(broadcast::error::RecvError::Closed) => {
                        (&mut deadline).await;
                        return;
                    }
                    // Ours, or lagged (ours may be among the missed).
                    _ => return,
                },
                () = &mut deadline => return,
            }
        }
    }
}
