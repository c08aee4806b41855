//! One writer per tenant for the graph tables: every append and every
//! reactor commit handed to it while a transaction runs goes into the next
//! one (group commit). Nothing is acknowledged, and no event reaches a
//! reactor, before its transaction commits; events reach each reactor in
//! sequence order.

use std::sync::Arc;

use cloacina_database::{Database, clock};
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::GraphError;
use crate::model::InboxEvent;
use crate::slot::GraphSlot;
use crate::store::{self, Commit, NewEvent};

/// Most requests folded into one transaction.
const MAX_BATCH: usize = 4_096;

/// An event to append, for one graph.
pub(crate) struct Append {
    pub slot: Arc<GraphSlot>,
    pub accumulator: String,
    pub payload: serde_json::Value,
    pub text: String,
    pub received_at: i64,
    pub accepted: std::time::Instant,
}

pub(crate) enum Write {
    /// Appends events (one per target graph) and answers once they are
    /// durable.
    Append {
        events: Vec<Append>,
        reply: oneshot::Sender<Result<(), GraphError>>,
    },
    Commit {
        commit: Box<Commit>,
        reply: oneshot::Sender<Result<(), GraphError>>,
    },
    Dispatched {
        graph: String,
        firings: Vec<i64>,
    },
}

pub(crate) type WriteQueue = mpsc::UnboundedSender<Write>;

pub(crate) fn spawn(db: Database) -> (WriteQueue, tokio::task::JoinHandle<()>) {
    let (queue, requests) = mpsc::unbounded_channel();
    (queue, tokio::spawn(run(db, requests)))
}

async fn run(db: Database, mut requests: mpsc::UnboundedReceiver<Write>) {
    let mut batch = Vec::with_capacity(64);
    while let Some(first) = requests.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        write_batch(&db, &mut batch).await;
    }
}

async fn write_batch(db: &Database, batch: &mut Vec<Write>) {
    // Events for a graph stopped for good are refused (their producers
    // resend): its numbering and reactor are gone.
    batch.retain_mut(|write| match write {
        Write::Append { events, reply } if events.iter().any(|e| e.slot.is_retired()) => {
            let (refused, _) = oneshot::channel();
            let reply = std::mem::replace(reply, refused);
            let _ = reply.send(Err(GraphError::ShuttingDown));
            false
        }
        _ => true,
    });
    if batch.is_empty() {
        return;
    }
    // Sequence numbers are taken here, in queue order, so a graph's rows
    // commit and reach its reactor in the order they are numbered.
    let mut rows = Vec::new();
    let mut delivered: Vec<(Arc<GraphSlot>, InboxEvent)> = Vec::new();
    for write in batch.iter() {
        if let Write::Append { events, .. } = write {
            for event in events {
                let seq = event.slot.next_seq();
                rows.push(NewEvent {
                    graph: event.slot.name().to_owned(),
                    seq,
                    accumulator: event.accumulator.clone(),
                    payload: event.text.clone(),
                    received_at: event.received_at,
                });
                delivered.push((
                    event.slot.clone(),
                    InboxEvent {
                        seq,
                        accumulator: event.accumulator.clone(),
                        payload: event.payload.clone(),
                        received_at: event.received_at,
                        accepted: Some(event.accepted),
                    },
                ));
            }
        }
    }
    let result = transaction(db, &rows, batch).await;
    let failure = result.err().map(Arc::new);
    if failure.is_none() {
        deliver(delivered);
    } else if let Some(error) = &failure {
        // Never committed: the permits they took are free again.
        for write in batch.iter() {
            if let Write::Append { events, .. } = write {
                for event in events {
                    event.slot.release(1);
                }
            }
        }
        tracing::warn!(
            error = &**error as &dyn std::error::Error,
            requests = batch.len(),
            "graph write failed"
        );
    }
    for write in batch.drain(..) {
        let answer = || match &failure {
            None => Ok(()),
            Some(source) => Err(GraphError::Commit {
                source: source.clone(),
            }),
        };
        match write {
            Write::Append { reply, .. } | Write::Commit { reply, .. } => {
                let _ = reply.send(answer());
            }
            Write::Dispatched { .. } => {}
        }
    }
}

async fn transaction(db: &Database, rows: &[NewEvent], batch: &[Write]) -> Result<(), sqlx::Error> {
    let mut connection = db.pool().acquire().await?;
    let mut tx = connection.begin().await?;
    let now = clock::now_ms();
    store::append(&mut tx, rows).await?;
    for write in batch {
        match write {
            Write::Commit { commit, .. } => store::commit(&mut tx, commit, now).await?,
            Write::Dispatched { graph, firings } => {
                store::mark_dispatched(&mut tx, graph, firings).await?
            }
            Write::Append { .. } => {}
        }
    }
    tx.commit().await
}

/// Hands committed events to their reactors, one message per graph.
fn deliver(delivered: Vec<(Arc<GraphSlot>, InboxEvent)>) {
    let mut by_graph: Vec<(Arc<GraphSlot>, Vec<InboxEvent>)> = Vec::new();
    for (slot, event) in delivered {
        match by_graph.iter_mut().find(|(s, _)| Arc::ptr_eq(s, &slot)) {
            Some((_, events)) => events.push(event),
            None => by_graph.push((slot, vec![event])),
        }
    }
    for (slot, events) in by_graph {
        slot.deliver(events);
    }
}
