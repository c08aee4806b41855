//! Accepting an event: wait for room in every target graph (backpressure),
//! queue it for the writer, and hand back what resolves once it is
//! durable.

use std::sync::Arc;

use cloacina_database::clock;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::GraphError;
use crate::slot::GraphSlot;
use crate::writer::{Append, Write, WriteQueue};

/// An accepted event: resolves once it is committed to every target
/// graph's inbox.
#[derive(Debug)]
pub struct Accepted {
    committed: oneshot::Receiver<Result<(), GraphError>>,
    /// How many graphs it was delivered to.
    pub graphs: usize,
}

impl Accepted {
    /// Waits until the event is durable.
    pub async fn durable(self) -> Result<usize, GraphError> {
        self.await
    }

    /// The outcome if it is already known, without waiting.
    pub fn try_outcome(&mut self) -> Option<Result<usize, GraphError>> {
        match self.committed.try_recv() {
            Ok(Ok(())) => Some(Ok(self.graphs)),
            Ok(Err(error)) => Some(Err(error)),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(GraphError::ShuttingDown)),
        }
    }
}

/// Resolves once the event is durable, with the number of graphs it went
/// to. Producers that pipeline keep these in a queue and poll the oldest.
impl std::future::Future for Accepted {
    type Output = Result<usize, GraphError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let graphs = self.graphs;
        std::pin::Pin::new(&mut self.committed)
            .poll(context)
            .map(|answer| match answer {
                Ok(Ok(())) => Ok(graphs),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(GraphError::ShuttingDown),
            })
    }
}

/// Queues `payload` for each `(graph, accumulator)` once each graph has
/// room; returns as soon as it is queued.
pub(crate) async fn accept(
    writer: &WriteQueue,
    targets: Vec<(Arc<GraphSlot>, String)>,
    payload: Value,
) -> Result<Accepted, GraphError> {
    // Room in every target first; a permit goes back if this is
    // cancelled before the event is queued.
    let mut permits = Vec::with_capacity(targets.len());
    for (slot, _) in &targets {
        permits.push(slot.admit().await?);
    }
    let received_at = clock::now_ms();
    let accepted = std::time::Instant::now();
    let text = payload.to_string();
    let graphs = targets.len();
    let slots: Vec<Arc<GraphSlot>> = targets.iter().map(|(slot, _)| slot.clone()).collect();
    let events = targets
        .into_iter()
        .map(|(slot, accumulator)| Append {
            slot,
            accumulator,
            payload: payload.clone(),
            text: text.clone(),
            received_at,
            accepted,
        })
        .collect();
    let (reply, committed) = oneshot::channel();
    // Held before the writer may see the events: the permits are given
    // back when the events are consumed (or by the writer if they never
    // commit).
    for (slot, permit) in slots.iter().zip(permits) {
        slot.hold(permit);
    }
    if writer.send(Write::Append { events, reply }).is_err() {
        for slot in &slots {
            slot.release(1);
        }
        return Err(GraphError::ShuttingDown);
    }
    Ok(Accepted { committed, graphs })
}

/// Accepts and waits until durable.
pub(crate) async fn append(
    writer: &WriteQueue,
    targets: Vec<(Arc<GraphSlot>, String)>,
    payload: Value,
) -> Result<usize, GraphError> {
    accept(writer, targets, payload).await?.durable().await
}
