//! One graph's reactor: a tokio task that owns the graph's cache, its
//! new-value flags, the sequential queue and the batch buffers, folds
//! committed events in, decides when to fire, runs firings, and commits
//! each firing with the events it consumed.
//!
//! It starts from the database (checkpoint plus inbox) every time, so a
//! restart loses nothing that was acknowledged. A failed commit ends it
//! with an error; its supervisor starts a new one.

mod dispatch;
mod firing;
mod polling;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use cloacina_contract::manifest::{AccumulatorKind, InputStrategy, ReactionMode};
use cloacina_database::{Database, clock};
use cloacina_runtime::Runner;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::GraphError;
use crate::lease::Lease;
use crate::model::{CommandReply, FiringRecord, GraphCommand, InboxEvent, ReactorHealth};
use crate::slot::{GraphSlot, GraphSpec, ReactorInput};
use crate::store::{self, Checkpoint, Commit};
use crate::writer::{Write, WriteQueue};

pub use dispatch::workflow_context;

/// Folded events are checkpointed (and their permits given back) once this
/// many are waiting without a firing, or after [`CHECKPOINT_AFTER`].
const CHECKPOINT_EVERY: usize = 1_000;
const CHECKPOINT_AFTER: Duration = Duration::from_millis(200);
/// Sequential firings committed together at most.
const FIRINGS_PER_COMMIT: usize = 64;

/// A value ready for the reactor: one pushed event, or a flushed batch.
#[derive(Debug, Clone)]
struct Unit {
    accumulator: String,
    value: Value,
    seqs: Vec<i64>,
    /// When the newest of its events was accepted by this process.
    accepted: Option<std::time::Instant>,
}

#[derive(Debug, Default)]
struct BatchBuffer {
    values: Vec<Value>,
    seqs: Vec<i64>,
    first_received_at: i64,
    accepted: Option<std::time::Instant>,
}

pub(crate) struct Reactor {
    slot: Arc<GraphSlot>,
    spec: Arc<GraphSpec>,
    writer: WriteQueue,
    db: Database,
    /// This host's lease on the graph: every commit is fenced by it.
    lease: Lease,
    inputs: mpsc::UnboundedReceiver<ReactorInput>,
    state: Checkpoint,
    /// The highest sequence number seen (events at or below it that arrive
    /// again, from the inbox and the channel both, are ignored).
    seen: i64,
    queue: VecDeque<Unit>,
    batches: BTreeMap<String, BatchBuffer>,
    /// Folded into the cache, not yet committed.
    consumed: Vec<i64>,
    /// How many of `consumed` earlier firings of this commit took.
    fired_from: usize,
    first_unsaved: Option<Instant>,
    /// When the newest event folded since the last firing was accepted.
    news_accepted: Option<std::time::Instant>,
    dispatcher: mpsc::UnboundedSender<FiringRecord>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Reactor {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
    }
}

impl Reactor {
    /// Rebuilds the reactor from the database. Attach `inputs`' sender to
    /// the slot before calling this, so no committed event falls between
    /// the inbox read and the channel.
    pub async fn start(
        slot: Arc<GraphSlot>,
        inputs: mpsc::UnboundedReceiver<ReactorInput>,
        writer: WriteQueue,
        db: Database,
        runner: Runner,
        lease: Lease,
    ) -> Result<Reactor, GraphError> {
        let spec = slot.spec();
        let (state, inbox) = store::load(&db, slot.name()).await?;
        slot.set_pending(inbox.len());
        let (dispatcher, dispatching) = dispatch::spawn(slot.clone(), runner, writer.clone());
        for firing in store::undispatched(&db, slot.name()).await? {
            let _ = dispatcher.send(firing);
        }
        let mut background = vec![dispatching];
        background.extend(polling::spawn_all(&slot, &spec, &writer));
        let mut reactor = Reactor {
            slot,
            spec,
            writer,
            db,
            lease,
            inputs,
            // Every inbox row is new to this reactor, including rows at or
            // below the consumed mark (batches that were still open).
            seen: 0,
            state,
            queue: VecDeque::new(),
            batches: BTreeMap::new(),
            consumed: Vec::new(),
            fired_from: 0,
            first_unsaved: None,
            news_accepted: None,
            dispatcher,
            background,
        };
        reactor.take_events(inbox);
        // Below the consumed mark nothing is left to read.
        reactor.seen = reactor.seen.max(reactor.state.consumed_seq);
        reactor.publish();
        Ok(reactor)
    }

    pub async fn run(mut self) -> Result<(), GraphError> {
        self.slot.set_health(ReactorHealth::Live);
        loop {
            self.step().await?;
            let wake = self.next_deadline();
            let input = match wake {
                Some(at) => tokio::select! {
                    input = self.inputs.recv() => input,
                    () = tokio::time::sleep_until(at) => {
                        self.on_timer().await?;
                        continue;
                    }
                },
                None => self.inputs.recv().await,
            };
            let Some(input) = input else {
                // Detached: stopping. Save what was folded.
                return self.save().await;
            };
            self.handle(input).await?;
            // Coalesce whatever else is already waiting.
            while let Ok(input) = self.inputs.try_recv() {
                self.handle(input).await?;
            }
        }
    }

    async fn handle(&mut self, input: ReactorInput) -> Result<(), GraphError> {
        match input {
            ReactorInput::Events(events) => {
                // Numbers run in commit order across hosts: a gap before
                // this host's events is other hosts' events, committed
                // already. They come first.
                if let Some(first) = events.first()
                    && first.seq > self.seen + 1
                {
                    let earlier =
                        store::inbox_after(&self.db, self.slot.name(), self.seen, Some(first.seq))
                            .await?;
                    self.take_events(earlier);
                }
                self.take_events(events);
                Ok(())
            }
            ReactorInput::InboxChanged => {
                let fresh = store::inbox_after(&self.db, self.slot.name(), self.seen, None).await?;
                self.take_events(fresh);
                Ok(())
            }
            ReactorInput::Command(command, reply) => self.command(command, reply).await,
            ReactorInput::Panic => panic!("fault injected into reactor `{}`", self.slot.name()),
        }
    }

    fn take_events(&mut self, events: Vec<InboxEvent>) {
        for event in events {
            if event.seq <= self.seen {
                continue;
            }
            self.seen = event.seq;
            let kind = self
                .spec
                .declaration
                .accumulator(&event.accumulator)
                .map(|a| a.kind);
            match kind {
                Some(AccumulatorKind::Batch) => {
                    let buffer = self.batches.entry(event.accumulator.clone()).or_default();
                    if buffer.seqs.is_empty() {
                        buffer.first_received_at = event.received_at;
                    }
                    buffer.values.push(event.payload);
                    buffer.seqs.push(event.seq);
                    buffer.accepted = event.accepted;
                    if self.batch_full(&event.accumulator) {
                        self.flush(&event.accumulator);
                    }
                }
                Some(
                    AccumulatorKind::Passthrough
                    | AccumulatorKind::Stream
                    | AccumulatorKind::Polling,
                ) => {
                    self.take_unit(Unit {
                        accumulator: event.accumulator,
                        value: event.payload,
                        seqs: vec![event.seq],
                        accepted: event.accepted,
                    });
                }
                // An accumulator this version no longer declares (or a
                // state window, which takes no events): consumed, dropped.
                Some(AccumulatorKind::State) | None => {
                    tracing::warn!(graph = %self.slot.name(), accumulator = %event.accumulator, seq = event.seq, "event for an accumulator the graph does not take events on; dropped");
                    self.mark_consumed(&[event.seq]);
                }
            }
        }
    }

    fn batch_full(&self, accumulator: &str) -> bool {
        let limit = self
            .spec
            .declaration
            .accumulator(accumulator)
            .and_then(|a| a.max_buffer_size);
        match (limit, self.batches.get(accumulator)) {
            (Some(limit), Some(buffer)) => buffer.values.len() >= limit as usize,
            _ => false,
        }
    }

    fn flush(&mut self, accumulator: &str) {
        let Some(buffer) = self.batches.remove(accumulator) else {
            return;
        };
        if buffer.values.is_empty() {
            return;
        }
        self.take_unit(Unit {
            accumulator: accumulator.to_owned(),
            value: Value::Array(buffer.values),
            seqs: buffer.seqs,
            accepted: buffer.accepted,
        });
    }

    fn take_unit(&mut self, unit: Unit) {
        match self.spec.declaration.reactor.input_strategy {
            InputStrategy::Latest => self.fold(unit),
            InputStrategy::Sequential => self.queue.push_back(unit),
        }
    }

    fn fold(&mut self, unit: Unit) {
        if unit.accepted.is_some() {
            self.news_accepted = unit.accepted;
        }
        self.state
            .cache
            .insert(unit.accumulator.clone(), unit.value);
        self.state.dirty.insert(unit.accumulator);
        self.mark_consumed(&unit.seqs);
    }

    fn mark_consumed(&mut self, seqs: &[i64]) {
        self.consumed.extend_from_slice(seqs);
        self.first_unsaved.get_or_insert_with(Instant::now);
    }

    fn sources(&self) -> Vec<String> {
        self.spec
            .declaration
            .criterion_sources()
            .into_iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Whether the criterion holds: for `latest`, over the new-value
    /// flags; for `sequential` (one firing per event), `when_all` waits
    /// until every source has a value.
    fn criterion_holds(&self) -> bool {
        let sources = self.sources();
        let strategy = self.spec.declaration.reactor.input_strategy;
        let has = |source: &String| match strategy {
            InputStrategy::Latest => self.state.dirty.contains(source),
            InputStrategy::Sequential => self.state.cache.get(source).is_some_and(|v| !v.is_null()),
        };
        match self.spec.declaration.reactor.reaction_mode {
            ReactionMode::WhenAny => sources.iter().any(has),
            ReactionMode::WhenAll => sources.iter().all(has),
        }
    }

    /// Fires as long as there is something to fire, then saves what is due.
    async fn step(&mut self) -> Result<(), GraphError> {
        if !self.state.paused {
            match self.spec.declaration.reactor.input_strategy {
                InputStrategy::Latest => {
                    if self.criterion_holds() {
                        let firing = self.fire(false).await;
                        self.commit(vec![firing]).await?;
                    }
                }
                InputStrategy::Sequential => {
                    while !self.queue.is_empty() {
                        let mut firings = Vec::new();
                        while firings.len() < FIRINGS_PER_COMMIT {
                            let Some(unit) = self.queue.pop_front() else {
                                break;
                            };
                            self.fold(unit);
                            if self.criterion_holds() {
                                firings.push(self.fire(false).await);
                            }
                        }
                        self.commit(firings).await?;
                        // Let commands and new events in between bursts.
                        if !self.inputs.is_empty() {
                            break;
                        }
                    }
                }
            }
        }
        if self.consumed.len() >= CHECKPOINT_EVERY {
            self.save().await?;
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        let now_ms = clock::now_ms();
        let now = Instant::now();
        let batch = self
            .batches
            .iter()
            .filter_map(|(name, buffer)| {
                let interval = self.spec.declaration.accumulator(name)?.flush_interval_ms?;
                let due = buffer.first_received_at + i64::try_from(interval).ok()?;
                let wait = u64::try_from((due - now_ms).max(0)).unwrap_or(0);
                Some(now + Duration::from_millis(wait))
            })
            .min();
        let save = self.first_unsaved.map(|at| at + CHECKPOINT_AFTER);
        match (batch, save) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn on_timer(&mut self) -> Result<(), GraphError> {
        let now_ms = clock::now_ms();
        let due: Vec<String> = self
            .batches
            .iter()
            .filter(|(name, buffer)| {
                self.spec
                    .declaration
                    .accumulator(name)
                    .and_then(|a| a.flush_interval_ms)
                    .and_then(|ms| i64::try_from(ms).ok())
                    .is_some_and(|ms| buffer.first_received_at + ms <= now_ms)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            self.flush(&name);
        }
        if self
            .first_unsaved
            .is_some_and(|at| at.elapsed() >= CHECKPOINT_AFTER)
        {
            self.step().await?;
            self.save().await?;
        }
        Ok(())
    }

    /// Runs one firing on the current cache; the cache's new-value flags
    /// are cleared and state windows take their feed's output.
    async fn fire(&mut self, manual: bool) -> FiringRecord {
        self.state.last_firing += 1;
        let id = self.state.last_firing;
        let fired_at = clock::now_ms();
        let meta = json!({
            "graph": self.slot.name(),
            "id": id,
            "manual": manual,
            "fired_at_ms": fired_at,
        });
        let inputs = self.state.cache.clone();
        if let Some(accepted) = self.news_accepted.take()
            && !manual
        {
            self.slot
                .metrics()
                .observe_event_to_fire(accepted.elapsed().as_secs_f64());
        }
        let computed = firing::compute(self.spec.clone(), inputs.clone(), meta).await;
        self.state.dirty.clear();
        // This firing's events: those folded since the previous firing.
        let seqs = &self.consumed[self.fired_from..];
        let (first_seq, last_seq) = (seqs.iter().min().copied(), seqs.iter().max().copied());
        self.fired_from = self.consumed.len();
        let (ok, error, outputs) = match computed.result {
            Ok(outcome) => {
                self.feed_windows(&outcome.outputs);
                (true, None, Value::Object(outcome.outputs))
            }
            Err(failed) => {
                tracing::warn!(graph = %self.slot.name(), firing = id, node = %failed.node, error = %failed.error, "firing failed");
                (
                    false,
                    Some(format!("node `{}`: {}", failed.node, failed.error)),
                    Value::Null,
                )
            }
        };
        self.state.fires += 1;
        self.state.last_fired_at = Some(fired_at);
        FiringRecord {
            graph: self.slot.name().to_owned(),
            id,
            fired_at_ms: fired_at,
            manual,
            ok,
            error,
            duration_us: computed.duration_us,
            first_seq,
            last_seq,
            inputs: Value::Object(inputs),
            outputs,
        }
    }

    fn feed_windows(&mut self, outputs: &Map<String, Value>) {
        for accumulator in &self.spec.declaration.accumulators {
            let (Some(feed), Some(capacity)) = (&accumulator.feed, accumulator.capacity) else {
                continue;
            };
            let Some(output) = outputs.get(feed.as_str()).filter(|o| !o.is_null()) else {
                continue;
            };
            let window = self
                .state
                .cache
                .entry(accumulator.name.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !window.is_array() {
                *window = Value::Array(Vec::new());
            }
            if let Value::Array(values) = window {
                values.push(output.clone());
                let excess = values.len().saturating_sub(capacity as usize);
                values.drain(..excess);
            }
        }
    }

    /// Commits the checkpoint, the consumed events and `firings`; then
    /// gives back permits and hands successful firings to the dispatcher.
    async fn commit(&mut self, firings: Vec<FiringRecord>) -> Result<(), GraphError> {
        let consumed = std::mem::take(&mut self.consumed);
        self.fired_from = 0;
        self.first_unsaved = None;
        if let Some(max) = consumed.iter().max() {
            self.state.consumed_seq = self.state.consumed_seq.max(*max);
        }
        let count = consumed.len();
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Write::Commit {
                commit: Box::new(Commit {
                    graph: self.slot.name().to_owned(),
                    checkpoint: self.state.clone(),
                    consumed: ranges(consumed),
                    firings: firings.clone(),
                    subscribed: !self.spec.declaration.subscriptions.is_empty(),
                    lease: self.lease.clone(),
                }),
                reply,
            })
            .map_err(|_| GraphError::ShuttingDown)?;
        answer.await.map_err(|_| GraphError::ShuttingDown)??;
        self.slot.consumed(count);
        self.publish();
        if !self.spec.declaration.subscriptions.is_empty() {
            for firing in firings.into_iter().filter(|f| f.ok) {
                let _ = self.dispatcher.send(firing);
            }
        }
        Ok(())
    }

    /// Commits what was folded without firing.
    async fn save(&mut self) -> Result<(), GraphError> {
        if self.consumed.is_empty() {
            self.first_unsaved = None;
            return Ok(());
        }
        self.commit(Vec::new()).await
    }

    fn publish(&self) {
        self.slot.set_counters(
            self.state.paused,
            self.state.fires,
            self.state.last_fired_at,
        );
    }

    async fn command(
        &mut self,
        command: GraphCommand,
        reply: oneshot::Sender<Result<CommandReply, GraphError>>,
    ) -> Result<(), GraphError> {
        let paused = || GraphError::Paused(self.slot.name().to_owned());
        let answer = match command {
            GraphCommand::GetState => Ok(CommandReply::State(self.state.cache.clone())),
            GraphCommand::Pause | GraphCommand::Resume => {
                let pause = command == GraphCommand::Pause;
                self.state.paused = pause;
                self.commit(Vec::new()).await?;
                Ok(if pause {
                    CommandReply::Paused
                } else {
                    CommandReply::Resumed
                })
            }
            GraphCommand::ForceFire | GraphCommand::FireWith(_) if self.state.paused => {
                Err(paused())
            }
            // A failed commit ends the reactor (the `?`): the caller's
            // reply is dropped and the next reactor starts from what the
            // database holds.
            GraphCommand::ForceFire => Ok(CommandReply::Fired(self.fire_now().await?)),
            GraphCommand::FireWith(values) => {
                let known: BTreeSet<&str> = self
                    .spec
                    .declaration
                    .accumulators
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect();
                match values.keys().find(|name| !known.contains(name.as_str())) {
                    Some(unknown) => Err(GraphError::InvalidInput(format!(
                        "graph `{}` has no accumulator `{unknown}`",
                        self.slot.name()
                    ))),
                    None => {
                        // Every source takes the given value (the 0.8
                        // semantics); state windows not named keep theirs.
                        let mut cache = values;
                        for accumulator in &self.spec.declaration.accumulators {
                            let name = accumulator.name.as_str();
                            if accumulator.kind == AccumulatorKind::State
                                && !cache.contains_key(name)
                                && let Some(window) = self.state.cache.get(name)
                            {
                                cache.insert(name.to_owned(), window.clone());
                            }
                        }
                        self.state.cache = cache;
                        Ok(CommandReply::Fired(self.fire_now().await?))
                    }
                }
            }
        };
        let _ = reply.send(answer);
        Ok(())
    }

    async fn fire_now(&mut self) -> Result<FiringRecord, GraphError> {
        let firing = self.fire(true).await;
        self.commit(vec![firing.clone()]).await?;
        Ok(firing)
    }
}

/// Sequence numbers as inclusive ranges.
fn ranges(mut seqs: Vec<i64>) -> Vec<(i64, i64)> {
    seqs.sort_unstable();
    seqs.dedup();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for seq in seqs {
        match ranges.last_mut() {
            Some((_, to)) if *to + 1 == seq => *to = seq,
            _ => ranges.push((seq, seq)),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    #[test]
    fn sequence_numbers_fold_into_ranges() {
        assert_eq!(
            super::ranges(vec![5, 1, 2, 3, 7, 8]),
            [(1, 3), (5, 5), (7, 8)]
        );
        assert!(super::ranges(Vec::new()).is_empty());
    }
}
