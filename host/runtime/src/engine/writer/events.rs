//! Events: what a batch records happened (pending until its transaction
//! writes them, each with its execution's next sequence numbers), the
//! `ctx.log` lines of tasks, and, after the commit, the live events sent
//! to subscribers.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use super::{Outcome, Writer};
use crate::engine::TaskLog;
use crate::engine::sql::{self, Conn};
use crate::model::{Event, EventType, ExecutionId};

/// An event of the batch, not yet written.
pub(super) struct PendingEvent {
    execution: ExecutionId,
    event_type: EventType,
    task: Option<String>,
    data: Option<Value>,
}

impl Outcome {
    /// The executions this batch wrote events for, each once.
    pub(super) fn evented(&self) -> Vec<ExecutionId> {
        let mut seen = std::collections::HashSet::new();
        self.events
            .iter()
            .map(|event| event.execution)
            .filter(|execution| seen.insert(*execution))
            .collect()
    }

    /// Records that something happened to `execution` (a `task` of it).
    pub(super) fn event(
        &mut self,
        execution: ExecutionId,
        event_type: EventType,
        task: Option<&str>,
        data: Option<Value>,
    ) {
        self.events.push(PendingEvent {
            execution,
            event_type,
            task: task.map(str::to_owned),
            data,
        });
    }

    /// A line a running task logged, kept as a `task_log` event.
    pub(super) fn task_log(&mut self, line: &TaskLog) {
        self.event(
            line.execution,
            EventType::TaskLog,
            Some(&line.task),
            Some(serde_json::json!({"attempt": line.attempt, "message": line.message})),
        );
    }
}

impl Writer {
    /// Writes the batch's events: reserves each execution's sequence
    /// numbers in one statement, then inserts the rows in order.
    pub(super) async fn write_events(
        &mut self,
        tx: &mut Conn,
        outcome: &mut Outcome,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        if outcome.events.is_empty() {
            return Ok(());
        }
        let mut counts: Vec<(ExecutionId, i64)> = Vec::new();
        for event in &outcome.events {
            match counts.iter_mut().find(|(id, _)| *id == event.execution) {
                Some((_, n)) => *n += 1,
                None => counts.push((event.execution, 1)),
            }
        }
        let counted: Vec<(String, i64)> =
            counts.iter().map(|(id, n)| (id.to_string(), *n)).collect();
        let mut next: HashMap<ExecutionId, i64> = HashMap::with_capacity(counts.len());
        for (execution, first) in sql::reserve_sequences(tx, &counted).await? {
            if let Ok(execution) = execution.parse() {
                next.insert(execution, first);
            }
        }
        // An event of an execution with no row (none today; a late log
        // line could be one) is dropped rather than taking the writer down.
        outcome.events.retain(|event| {
            let known = next.contains_key(&event.execution);
            if !known {
                tracing::warn!(execution = %event.execution, event = %event.event_type, "event of an unknown execution dropped");
            }
            known
        });
        let ids: HashMap<ExecutionId, String> =
            next.keys().map(|id| (*id, id.to_string())).collect();
        let mut rows = Vec::with_capacity(outcome.events.len());
        let mut sequences = Vec::with_capacity(outcome.events.len());
        for event in &outcome.events {
            let seq = next
                .get_mut(&event.execution)
                .map(|n| {
                    let seq = *n;
                    *n += 1;
                    seq
                })
                .unwrap_or_default();
            sequences.push(seq);
            rows.push(sql::EventRow {
                execution: &ids[&event.execution],
                sequence_num: seq,
                event_type: event.event_type,
                task: event.task.as_deref(),
                data: event.data.as_ref().map(Value::to_string),
                created_at: now,
            });
        }
        sql::insert_events(tx, &rows).await?;
        outcome.sequences = sequences;
        Ok(())
    }
}

/// After the commit: sends the written events, with their sequence
/// numbers, to live subscribers.
pub(super) fn publish(
    channel: &broadcast::Sender<Arc<Event>>,
    events: Vec<PendingEvent>,
    sequences: Vec<i64>,
    now: i64,
) {
    for (event, seq) in events.into_iter().zip(sequences) {
        let _ = channel.send(Arc::new(Event {
            execution_id: event.execution,
            sequence_num: seq,
            event_type: event.event_type,
            task_name: event.task,
            event_data: event.data,
            created_at_ms: now,
        }));
    }
}
