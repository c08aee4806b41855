//! Starting a graph's subscribed workflows, once per successful firing.
//!
//! A firing is committed first; its workflows are started afterwards, each
//! guarded by `(graph/workflow, firing id)` so a start happens once however
//! often it is retried; then the firing is marked dispatched. A crash in
//! between leaves the firing undispatched, and the next reactor start
//! dispatches it again: exactly one start per firing and workflow.

use std::sync::Arc;
use std::time::Duration;

use cloacina_contract::firing::FIRING_KEY;
use cloacina_runtime::{Runner, RuntimeError};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::model::FiringRecord;
use crate::slot::GraphSlot;
use crate::writer::{Write, WriteQueue};

/// A subscribed workflow's context: the firing's source values and node
/// outputs at the top level, and the firing under `$firing`.
pub fn workflow_context(firing: &FiringRecord) -> Value {
    let mut context = serde_json::Map::new();
    for value in [&firing.inputs, &firing.outputs] {
        if let Value::Object(entries) = value {
            context.extend(entries.clone());
        }
    }
    context.insert(
        FIRING_KEY.to_owned(),
        json!({
            "graph": firing.graph,
            "id": firing.id,
            "manual": firing.manual,
            "fired_at_ms": firing.fired_at_ms,
        }),
    );
    Value::Object(context)
}

pub(crate) fn spawn(
    slot: Arc<GraphSlot>,
    runner: Runner,
    writer: WriteQueue,
) -> (
    mpsc::UnboundedSender<FiringRecord>,
    tokio::task::JoinHandle<()>,
) {
    let (queue, mut firings) = mpsc::unbounded_channel::<FiringRecord>();
    let task = tokio::spawn(async move {
        while let Some(firing) = firings.recv().await {
            // A start that failed (the database away) is tried again, in
            // order, until it succeeds: the guard makes repeats harmless.
            let mut wait = Duration::from_millis(100);
            loop {
                match start_all(&slot, &runner, &firing).await {
                    Some(true) => break,
                    Some(false) => {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                    None => return,
                }
            }
            let _ = writer.send(Write::Dispatched {
                graph: firing.graph.clone(),
                firings: vec![firing.id],
            });
        }
    });
    (queue, task)
}

/// Starts every subscribed workflow of `firing` (once each, whatever ran
/// before): true when all started, false when one failed, None when the
/// runner is shutting down.
async fn start_all(slot: &GraphSlot, runner: &Runner, firing: &FiringRecord) -> Option<bool> {
    let spec = slot.spec();
    let mut done = true;
    for subscription in &spec.declaration.subscriptions {
        let workflow = subscription.workflow.as_str();
        let scope = format!("graph:{}/{workflow}", firing.graph);
        let started = runner
            .start_once(
                workflow,
                workflow_context(firing),
                format!("graph:{}", firing.graph),
                &scope,
                &firing.id.to_string(),
            )
            .await;
        match started {
            Ok(execution) => {
                tracing::debug!(graph = %firing.graph, firing = firing.id, workflow, ?execution, "subscribed workflow started")
            }
            Err(RuntimeError::ShuttingDown) => return None,
            Err(error) => {
                done = false;
                tracing::warn!(graph = %firing.graph, firing = firing.id, workflow, error = &error as &dyn std::error::Error, "cannot start a subscribed workflow; trying again");
            }
        }
    }
    Some(done)
}
