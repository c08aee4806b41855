//! One supervisor per graph: it awaits its reactor's task directly, so a
//! panic or an error is seen at once. The first restart is immediate, the
//! next ones back off (by default 100 ms doubling to 10 s, jittered); more
//! than 10 restarts within a minute mark the graph `crashed`, and it is
//! then retried every 30 s. A run that stays up a minute resets the count.
//! No lock is held while it waits.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use cloacina_database::Database;
use cloacina_runtime::Runner;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::lease::Lease;
use crate::model::ReactorHealth;
use crate::reactor::Reactor;
use crate::slot::GraphSlot;
use crate::writer::WriteQueue;

/// How reactors are restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervision {
    /// Restarts within `window` past which a graph is `crashed`.
    pub budget: usize,
    pub window: Duration,
    /// The wait before the second restart (the first is immediate); it
    /// doubles up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// How often a crashed graph is tried again.
    pub crashed_retry: Duration,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            budget: 10,
            window: Duration::from_secs(60),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            crashed_retry: Duration::from_secs(30),
        }
    }
}
/// How long a stopping reactor may take to save its state.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub(crate) struct Supervised {
    pub slot: Arc<GraphSlot>,
    pub writer: WriteQueue,
    pub db: Database,
    pub runner: Runner,
    pub policy: Supervision,
    /// The lease this host holds on the graph.
    pub lease: Lease,
}

/// Supervises the graph's reactor; `first` is the channel of the first
/// run, attached to the slot before this was spawned, so commands sent
/// right after registration wait for the reactor instead of failing.
pub(crate) async fn supervise(
    graph: Supervised,
    first: mpsc::UnboundedReceiver<crate::slot::ReactorInput>,
    mut stop: watch::Receiver<bool>,
) {
    let mut first = Some(first);
    let slot = graph.slot.clone();
    let policy = &graph.policy;
    let mut recent: VecDeque<Instant> = VecDeque::new();
    let mut consecutive: u32 = 0;
    let mut restarts: u32 = 0;
    loop {
        let inputs = match first.take() {
            Some(inputs) => inputs,
            None => {
                let (sender, inputs) = mpsc::unbounded_channel();
                slot.attach(sender);
                inputs
            }
        };
        let started = Instant::now();
        let mut reactor = tokio::spawn(run_once(
            slot.clone(),
            inputs,
            graph.writer.clone(),
            graph.db.clone(),
            graph.runner.clone(),
            graph.lease.clone(),
        ));
        let ended = tokio::select! {
            ended = &mut reactor => Some(ended),
            _ = stopping(&mut stop) => None,
        };
        let Some(ended) = ended else {
            {
                // Detaching closes the reactor's channel: it saves and ends.
                slot.detach();
                if tokio::time::timeout(STOP_GRACE, &mut reactor)
                    .await
                    .is_err()
                {
                    reactor.abort();
                }
                slot.set_health(ReactorHealth::Stopped);
                return;
            }
        };
        slot.detach();
        // Not live from this moment: readers never see a dead reactor as live.
        if !matches!(ended, Ok(Ok(()))) {
            slot.set_health(ReactorHealth::Starting);
        }
        let error = match ended {
            Ok(Ok(())) => {
                slot.set_health(ReactorHealth::Stopped);
                return;
            }
            Ok(Err(crate::GraphError::Fenced(_))) => {
                // Another host holds the lease now: restarting here would
                // only be refused again. The lease keeper sees this
                // supervisor ended and may claim the graph again later.
                tracing::warn!(graph = %slot.name(), epoch = graph.lease.epoch, "reactor stopped: its lease was taken by another host");
                slot.set_health(ReactorHealth::Remote { owner: None });
                return;
            }
            Ok(Err(error)) => cloacina_contract::explain(&error),
            Err(join) if join.is_panic() => {
                let payload = join.into_panic();
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "a panic".to_owned());
                format!("panicked: {message}")
            }
            Err(join) => join.to_string(),
        };
        if started.elapsed() >= policy.window {
            consecutive = 0;
        }
        consecutive += 1;
        restarts += 1;
        slot.set_restarts(restarts);
        let now = Instant::now();
        recent.push_back(now);
        while recent.front().is_some_and(|at| now - *at > policy.window) {
            recent.pop_front();
        }
        let delay = if recent.len() > policy.budget {
            slot.set_health(ReactorHealth::Crashed {
                error: error.clone(),
                restarts,
            });
            tracing::error!(graph = %slot.name(), restarts, %error, retry = ?policy.crashed_retry, "graph crashed past its restart budget");
            policy.crashed_retry
        } else {
            slot.set_health(ReactorHealth::Starting);
            let delay = backoff(policy, consecutive);
            tracing::warn!(graph = %slot.name(), restarts, ?delay, %error, "reactor failed; restarting");
            delay
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopping(&mut stop) => {
                slot.set_health(ReactorHealth::Stopped);
                return;
            }
        }
    }
}

/// Resolves once a stop is asked for (or the runtime is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

async fn run_once(
    slot: Arc<GraphSlot>,
    inputs: mpsc::UnboundedReceiver<crate::slot::ReactorInput>,
    writer: WriteQueue,
    db: Database,
    runner: Runner,
    lease: Lease,
) -> Result<(), crate::GraphError> {
    Reactor::start(slot, inputs, writer, db, runner, lease)
        .await?
        .run()
        .await
}

/// The wait before restart number `consecutive` (from 1): none for the
/// first, then the first backoff doubling up to the cap, with up to 25%
/// jitter.
fn backoff(policy: &Supervision, consecutive: u32) -> Duration {
    if consecutive <= 1 {
        return Duration::ZERO;
    }
    let grown = policy
        .first_backoff
        .saturating_mul(1 << (consecutive - 2).min(16));
    let capped = grown.min(policy.max_backoff);
    let mut byte = [0u8; 1];
    let jitter = match getrandom::fill(&mut byte) {
        Ok(()) => capped.mul_f64(f64::from(byte[0]) / 255.0 * 0.25),
        Err(_) => Duration::ZERO,
    };
    capped + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_restart_is_immediate_then_backs_off_to_a_cap() {
        let policy = Supervision::default();
        assert_eq!(backoff(&policy, 1), Duration::ZERO);
        let second = backoff(&policy, 2);
        assert!(second >= policy.first_backoff && second <= policy.first_backoff.mul_f64(1.25));
        let late = backoff(&policy, 30);
        assert!(late >= policy.max_backoff && late <= policy.max_backoff.mul_f64(1.25));
    }
}
