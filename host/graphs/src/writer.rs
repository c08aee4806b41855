//! One writer per tenant for the graph tables: every append and every
//! reactor commit handed to it while a transaction runs goes into the next
//! one (group commit). Nothing is acknowledged, and no event reaches a
//! reactor, before its transaction commits; events reach each reactor in
//! sequence order. Sequence numbers are taken in the transaction from the
//! database (`graph_sequences`), so hosts appending to one graph number
//! its events without gaps or collisions.

use std::collections::BTreeMap;
use std::sync::Arc;

use cloacina_database::{Database, clock};
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::GraphError;
use crate::model::InboxEvent;
use crate::slot::GraphSlot;
use crate::store::{self, Commit, CommitError, NewEvent};

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

/// What the writer needs besides its queue.
pub(crate) struct WriterSetup {
    pub db: Database,
    /// This host, named in its announcements.
    pub host: String,
    /// The tenant's graph channel on PostgreSQL: every append is announced
    /// there, so the graph's owner, wherever it runs, reads it.
    pub channel: Option<String>,
    pub metrics: crate::GraphMetrics,
}

pub(crate) fn spawn(setup: WriterSetup) -> (WriteQueue, tokio::task::JoinHandle<()>) {
    let (queue, requests) = mpsc::unbounded_channel();
    (queue, tokio::spawn(run(setup, requests)))
}

async fn run(setup: WriterSetup, mut requests: mpsc::UnboundedReceiver<Write>) {
    let mut batch = Vec::with_capacity(64);
    while let Some(first) = requests.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        write_batch(&setup, &mut batch).await;
    }
}

/// Why a batch's transaction did not commit.
enum Failed {
    /// The reactor commit at this index of the batch lost its lease: it is
    /// answered alone and the rest written again.
    Fenced(usize),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for Failed {
    fn from(error: sqlx::Error) -> Self {
        Failed::Database(error)
    }
}

async fn write_batch(setup: &WriterSetup, batch: &mut Vec<Write>) {
    // Events for a graph stopped for good are refused (their producers
    // resend): its reactor is gone.
    batch.retain_mut(|write| match write {
        Write::Append { events, reply } if events.iter().any(|e| e.slot.is_retired()) => {
            let (refused, _) = oneshot::channel();
            let reply = std::mem::replace(reply, refused);
            let _ = reply.send(Err(GraphError::ShuttingDown));
            false
        }
        _ => true,
    });
    let result = loop {
        if batch.is_empty() {
            return;
        }
        match transaction(setup, batch).await {
            Err(Failed::Fenced(index)) => {
                // Only that reactor's commit is refused; the others (and
                // every append) are written without it.
                let refused = batch.remove(index);
                setup.metrics.fenced();
                if let Write::Commit { commit, reply } = refused {
                    tracing::warn!(graph = %commit.graph, epoch = commit.lease.epoch, "commit refused: this host no longer holds the graph's lease");
                    let _ = reply.send(Err(GraphError::Fenced(commit.graph.clone())));
                }
            }
            Err(Failed::Database(error)) => break Err(Arc::new(error)),
            Ok(delivered) => break Ok(delivered),
        }
    };
    let failure = match result {
        Ok(delivered) => {
            deliver(delivered);
            None
        }
        Err(error) => {
            // Never committed: the permits they took are free again.
            for write in batch.iter() {
                if let Write::Append { events, .. } = write {
                    for event in events {
                        event.slot.release(1);
                    }
                }
            }
            tracing::warn!(
                error = &*error as &dyn std::error::Error,
                requests = batch.len(),
                "graph write failed"
            );
            Some(error)
        }
    };
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

/// One transaction for the batch: numbers and appends the events (graphs
/// in name order, so two hosts' writers never wait on each other in a
/// cycle), writes the reactor commits (each fenced by its lease), marks
/// dispatched firings, announces the appends. Returns the committed events
/// to hand to reactors.
async fn transaction(
    setup: &WriterSetup,
    batch: &[Write],
) -> Result<Vec<(Arc<GraphSlot>, InboxEvent)>, Failed> {
    let mut by_graph: BTreeMap<&str, Vec<&Append>> = BTreeMap::new();
    for write in batch {
        if let Write::Append { events, .. } = write {
            for event in events {
                by_graph.entry(event.slot.name()).or_default().push(event);
            }
        }
    }
    let mut connection = setup.db.pool().acquire().await?;
    let mut tx = connection.begin().await?;
    let now = clock::now_ms();
    let mut rows = Vec::new();
    let mut delivered = Vec::new();
    for (graph, events) in &by_graph {
        let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let last = store::take_seqs(&mut tx, graph, count).await?;
        for (seq, event) in (last - count + 1..).zip(events.iter()) {
            rows.push(NewEvent {
                graph,
                seq,
                accumulator: &event.accumulator,
                payload: &event.text,
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
    store::append(&mut tx, &rows).await?;
    for (index, write) in batch.iter().enumerate() {
        match write {
            Write::Commit { commit, .. } => match store::commit(&mut tx, commit, now).await {
                Ok(()) => {}
                Err(CommitError::Fenced) => return Err(Failed::Fenced(index)),
                Err(CommitError::Database(error)) => return Err(Failed::Database(error)),
            },
            Write::Dispatched { graph, firings } => {
                store::mark_dispatched(&mut tx, graph, firings).await?
            }
            Write::Append { .. } => {}
        }
    }
    if let Some(channel) = &setup.channel {
        for graph in by_graph.keys() {
            crate::notify::send(
                &mut tx,
                channel,
                &crate::notify::Note::Events {
                    sender: setup.host.clone(),
                    graph: (*graph).to_owned(),
                },
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(delivered)
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
