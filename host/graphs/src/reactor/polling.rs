//! Polling accumulators: the task named like the accumulator is called
//! every `poll_interval_ms`; a non-null answer is appended to the inbox
//! like a pushed event (so it is durable before the reactor sees it).

use std::sync::Arc;
use std::time::Duration;

use cloacina_contract::manifest::AccumulatorKind;
use cloacina_loader::CallControl;
use serde_json::Value;

use crate::model::AccumulatorHealth;
use crate::slot::{GraphSlot, GraphSpec};
use crate::writer::WriteQueue;

pub(crate) fn spawn_all(
    slot: &Arc<GraphSlot>,
    spec: &GraphSpec,
    writer: &WriteQueue,
) -> Vec<tokio::task::JoinHandle<()>> {
    spec.declaration
        .accumulators
        .iter()
        .filter(|a| a.kind == AccumulatorKind::Polling)
        .filter_map(|a| Some((a.name.to_string(), a.poll_interval_ms?)))
        .map(|(name, ms)| {
            tokio::spawn(poll(
                slot.clone(),
                writer.clone(),
                name,
                Duration::from_millis(ms),
            ))
        })
        .collect()
}

async fn poll(slot: Arc<GraphSlot>, writer: WriteQueue, accumulator: String, every: Duration) {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let spec = slot.spec();
        let task = accumulator.clone();
        let timeout = every.max(Duration::from_secs(1));
        let answer = tokio::task::spawn_blocking(move || {
            spec.plugin
                .call(&task, "{}", &CallControl::with_timeout(timeout))
                .map_err(|failure| failure.to_string())
                .and_then(|output| {
                    serde_json::from_str::<Value>(&output).map_err(|e| e.to_string())
                })
        })
        .await
        .map_err(|error| error.to_string())
        .and_then(|answer| answer);
        match answer {
            Ok(Value::Null) => slot.set_polling(&accumulator, AccumulatorHealth::Live),
            Ok(value) => {
                slot.set_polling(&accumulator, AccumulatorHealth::Live);
                let appended = crate::ingest::append(
                    &writer,
                    vec![(slot.clone(), accumulator.clone())],
                    value,
                )
                .await;
                if let Err(error) = appended {
                    tracing::warn!(graph = %slot.name(), %accumulator, error = &error as &dyn std::error::Error, "a polled value could not be stored");
                }
            }
            Err(error) => {
                slot.set_polling(&accumulator, AccumulatorHealth::Disconnected);
                tracing::warn!(graph = %slot.name(), %accumulator, %error, "poll failed");
            }
        }
    }
}
