//! The writer: the only place an execution's state changes. It takes
//! commands in batches, applies a batch in one transaction, and only after
//! the commit tells anyone (callers, workers, event subscribers).
//!
//! This module holds the writer itself: its loop, the batching, the retry
//! of a batch the database could not take, and the announcements after a
//! commit. Each kind of change has its own module:
//!
//! - `start`: new executions (`Command::Start`);
//! - `finish`: finished task calls (`Command::Finished`) and the end of
//!   executions whose last task ended;
//! - `cancel`: cancelled executions (`Command::Cancel`);
//! - `claim`: claiming ready tasks for workers, and putting back those of
//!   hosts whose lease expired (`Command::Reap`);
//! - `events`: event rows (sequence numbers, task logs) and live events;
//! - `active`: what the writer remembers of the executions it drives.

mod active;
mod cancel;
mod claim;
mod events;
mod finish;
mod start;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cloacina_loader::CallControl;
use sqlx::Acquire;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use self::active::Active;
use self::events::PendingEvent;
use super::sql::{self, Conn};
use super::{Assignment, Command};
use crate::RuntimeError;
use crate::clock::now_ms;
use crate::completions::Completions;
use crate::database::{Database, Dialect};
use crate::model::{Event, ExecutionId};
use crate::workflow::WorkflowRegistry;

/// Commands applied in one transaction, at most.
const MAX_BATCH: usize = 512;
/// How often the writer looks for work nobody announced (another host's
/// retries, tasks a dead host left): the safety net, not the hot path.
const RESYNC: Duration = Duration::from_secs(2);

/// Where the writer announces what it committed.
pub(crate) struct Outlets {
    pub events: broadcast::Sender<Arc<Event>>,
    pub completions: Arc<Completions>,
    pub stats: Arc<EngineStats>,
}

/// Counters of the writer's work, for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct EngineStats {
    transactions: AtomicU64,
    commands: AtomicU64,
}

impl EngineStats {
    /// Transactions the writer committed.
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Commands (starts, finished tasks, cancels...) those applied.
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    /// Counts one committed transaction of `commands` commands.
    fn committed(&self, commands: usize) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.commands.fetch_add(commands as u64, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct WriterConfig {
    pub host_id: String,
    pub max_running: usize,
    pub lease_ttl: Duration,
}

pub(crate) struct Writer {
    db: Database,
    config: WriterConfig,
    registry: Arc<WorkflowRegistry>,
    commands: mpsc::UnboundedReceiver<Command>,
    to_self: mpsc::UnboundedSender<Command>,
    outlets: Outlets,
    running: HashMap<(ExecutionId, usize), CallControl>,
    active: HashMap<ExecutionId, Active>,
    next_wake: Option<Instant>,
    draining: bool,
    drain_waiters: Vec<oneshot::Sender<()>>,
}

/// Why a batch did not commit, or may not have.
enum ApplyError {
    /// It did not: nothing of it is in the database.
    Failed(sqlx::Error),
    /// The COMMIT was sent and its answer lost (PostgreSQL): transaction
    /// `xid` may have landed, with `outcome` to announce if it did.
    CommitUnknown {
        error: sqlx::Error,
        xid: i64,
        outcome: Box<Outcome>,
    },
}

impl From<sqlx::Error> for ApplyError {
    fn from(error: sqlx::Error) -> Self {
        ApplyError::Failed(error)
    }
}

/// What a committed batch announces.
#[derive(Default)]
struct Outcome {
    started: Vec<(usize, Option<ExecutionId>)>,
    cancelled: Vec<(usize, bool)>,
    assignments: Vec<Assignment>,
    released: Vec<(ExecutionId, usize)>,
    cancel_running: Vec<ExecutionId>,
    ended: Vec<ExecutionId>,
    events: Vec<PendingEvent>,
    sequences: Vec<i64>,
    wake_at: Option<i64>,
    work_left: bool,
}

impl Outcome {
    fn wake_at(&mut self, at: i64) {
        self.wake_at = Some(self.wake_at.map_or(at, |t| t.min(at)));
    }
}

impl Writer {
    pub(crate) fn new(
        db: Database,
        config: WriterConfig,
        registry: Arc<WorkflowRegistry>,
        commands: mpsc::UnboundedReceiver<Command>,
        to_self: mpsc::UnboundedSender<Command>,
        outlets: Outlets,
    ) -> Self {
        Writer {
            db,
            config,
            registry,
            commands,
            to_self,
            outlets,
            running: HashMap::new(),
            active: HashMap::new(),
            next_wake: Some(Instant::now()),
            draining: false,
            drain_waiters: Vec::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        let mut resync = tokio::time::interval(RESYNC);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self.next_wake;
            let first = tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => command,
                    None => break,
                },
                _ = sleep_until(wake) => { self.next_wake = None; Command::Wake }
                _ = resync.tick() => Command::Wake,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.commands.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            self.handle(batch).await;
        }
        tracing::debug!(tenant = %self.db.tenant(), "writer stopped");
    }

    async fn handle(&mut self, commands: Vec<Command>) {
        let mut batch = Vec::with_capacity(commands.len());
        for command in commands {
            self.take(command, &mut batch);
        }
        let mut delay = Duration::from_millis(50);
        let mut unavailable_since: Option<tokio::time::Instant> = None;
        loop {
            match self.apply_settled(&batch).await {
                Ok(outcome) => {
                    self.announce(batch, outcome);
                    break;
                }
                Err(error) if crate::database::is_transient(&error) => {
                    tracing::warn!(%error, retry_in = ?delay, tenant = %self.db.tenant(),
                        "the database is unavailable; the batch waits and will be applied");
                    let since = *unavailable_since.get_or_insert_with(tokio::time::Instant::now);
                    self.wait_out(&mut batch, since, delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    tracing::error!(%error, tenant = %self.db.tenant(), commands = batch.len(),
                        "a batch failed; applying its commands one by one");
                    self.apply_one_by_one(batch).await;
                    break;
                }
            }
        }
        self.answer_drain();
    }

    /// Waits `delay` before the batch is tried again while the database is
    /// unavailable (since `since`), taking the commands that arrive.
    /// Callers waiting for an answer are told to come back rather than
    /// held through the outage: once [`REPLY_PATIENCE`] has passed, at
    /// once as they arrive (and no later than that deadline for those
    /// already waiting). What they asked for is dropped with the
    /// uncommitted batch, so asking again cannot do it twice. Task results
    /// and logs wait in the batch.
    async fn wait_out(
        &mut self,
        batch: &mut Vec<Command>,
        since: tokio::time::Instant,
        delay: Duration,
    ) {
        let retry_at = tokio::time::Instant::now() + delay;
        let patience_ends = since + REPLY_PATIENCE;
        let mut patience_spent = false;
        let mut waiting = batch.iter().any(Command::awaits_reply);
        loop {
            let now = tokio::time::Instant::now();
            if !patience_spent && now >= patience_ends {
                answer_unavailable(batch);
                patience_spent = true;
                waiting = false;
            }
            if now >= retry_at {
                return;
            }
            let wake_at = if waiting {
                retry_at.min(patience_ends)
            } else {
                retry_at
            };
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) if patience_spent => {
                        if let Some(command) = refuse_if_waiting(command) {
                            self.take(command, batch);
                        }
                    }
                    Some(command) => {
                        waiting |= command.awaits_reply();
                        self.take(command, batch);
                    }
                    // The writer holds a sender of its own: never.
                    None => return,
                },
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    /// Adds a command to the batch; a drain request is noted instead.
    fn take(&mut self, command: Command, batch: &mut Vec<Command>) {
        match command {
            Command::Drain { reply } => {
                self.draining = true;
                self.drain_waiters.push(reply);
            }
            Command::Wake if batch.iter().any(|c| matches!(c, Command::Wake)) => {}
            // Nothing to write: the calls are stopped at once.
            Command::StopCalls(executions) => self.stop_cancelled(&executions),
            command => batch.push(command),
        }
    }

    async fn apply_one_by_one(&mut self, batch: Vec<Command>) {
        for command in batch {
            let single = vec![command];
            match self.apply_settled(&single).await {
                Ok(outcome) => self.announce(single, outcome),
                Err(error) => {
                    let message = error.to_string();
                    for command in single {
                        match command {
                            Command::Start { reply, .. } => {
                                let _ = reply.send(Err(RuntimeError::Database {
                                    doing: "starting an execution",
                                    source: error_again(&message),
                                }));
                            }
                            Command::Cancel { reply, .. } => {
                                let _ = reply.send(Err(RuntimeError::Database {
                                    doing: "cancelling an execution",
                                    source: error_again(&message),
                                }));
                            }
                            Command::Finished(finished) => {
                                tracing::error!(error = %message, execution = %finished.execution,
                                    "a task's result could not be recorded; it will run again when its lease is reaped");
                                self.running
                                    .remove(&(finished.execution, finished.position));
                            }
                            _ => tracing::error!(error = %message, "a command failed"),
                        }
                    }
                }
            }
        }
    }

    /// Applies a batch ([`Writer::apply`]); when the answer to its COMMIT
    /// was lost, asks the database whether it landed: its outcome if it
    /// did, the error if it did not.
    async fn apply_settled(&mut self, batch: &[Command]) -> Result<Outcome, sqlx::Error> {
        match self.apply(batch).await {
            Ok(outcome) => Ok(outcome),
            Err(ApplyError::Failed(error)) => Err(error),
            Err(ApplyError::CommitUnknown {
                error,
                xid,
                outcome,
            }) => {
                if self.landed(xid).await {
                    tracing::info!(%error, xid, tenant = %self.db.tenant(),
                        "the answer to a commit was lost; it had landed");
                    self.outlets.stats.committed(batch.len());
                    Ok(*outcome)
                } else {
                    Err(error)
                }
            }
        }
    }

    /// Applies a batch in one transaction: cancels, reaps and task logs in
    /// the batch's order, then the starts, the finished tasks, claims for
    /// the free slots, the events and the NOTIFY to other hosts; then the
    /// commit. Nothing is announced here.
    async fn apply(&mut self, batch: &[Command]) -> Result<Outcome, ApplyError> {
        let mut connection = self.db.pool().acquire().await?;
        let applied = self.apply_on(&mut connection, batch).await;
        if applied.is_err() {
            // A connection a transaction failed on may be out of step with
            // the database, or opened read-only by SQLite while its file
            // could not be written: closed, never handed out again.
            connection.close_on_drop();
        }
        applied
    }

    async fn apply_on(
        &mut self,
        connection: &mut sqlx::AnyConnection,
        batch: &[Command],
    ) -> Result<Outcome, ApplyError> {
        let now = now_ms();
        let mut outcome = Outcome::default();
        let mut tx = connection.begin().await?;
        // On PostgreSQL the transaction's id, so that a commit whose answer
        // is lost can be looked up rather than guessed.
        let xid = match self.db.dialect() {
            Dialect::Postgres => Some(
                sqlx::query_scalar::<_, i64>("SELECT txid_current()")
                    .fetch_one(&mut *tx)
                    .await?,
            ),
            Dialect::Sqlite => None,
        };
        let mut freed = 0usize;
        let mut starts = Vec::new();
        let mut finished = Vec::new();
        let mut look_for_work = false;
        for (index, command) in batch.iter().enumerate() {
            match command {
                Command::Start { request, .. } => {
                    if !self.draining {
                        starts.push((index, request));
                    }
                }
                Command::Finished(done) => {
                    if self.running.contains_key(&(done.execution, done.position)) {
                        freed += 1;
                    }
                    finished.push(done);
                }
                Command::Cancel { execution, .. } => {
                    let cancelled = self.cancel(&mut tx, *execution, now, &mut outcome).await?;
                    outcome.cancelled.push((index, cancelled));
                }
                Command::Reap { all_but_me } => {
                    look_for_work = true;
                    self.reap(&mut tx, now, *all_but_me, &mut outcome).await?
                }
                Command::Wake => look_for_work = true,
                // Taken before the batch (`take`): never in one.
                Command::Drain { .. } | Command::StopCalls(_) => {}
                Command::TaskLog(line) => outcome.task_log(line),
            }
        }
        self.start_all(&mut tx, &starts, now, &mut outcome).await?;
        self.finish_all(&mut tx, &finished, now, &mut outcome)
            .await?;
        if !self.draining {
            let busy = self.running.len().saturating_sub(freed);
            let free = self.config.max_running.saturating_sub(busy);
            if free > 0 {
                self.claim(&mut tx, free, now, &mut outcome).await?;
            }
            if outcome.assignments.len() == free {
                outcome.work_left = true;
            }
            // Retries this writer schedules set their own wake-up; others'
            // (and a restart's) are found when looking for work.
            if look_for_work && let Some(at) = sql::next_ready_at(&mut tx).await? {
                outcome.wake_at(at);
            }
        }
        self.write_events(&mut tx, &mut outcome, now).await?;
        self.notify_hosts(&mut tx, &outcome).await?;
        let committed = tx.commit().await;
        #[cfg(feature = "failpoints")]
        let committed = committed.and_then(|()| self.lose_commit_reply());
        match (committed, xid) {
            (Ok(()), _) => {
                self.outlets.stats.committed(batch.len());
                Ok(outcome)
            }
            // The COMMIT was sent; whether it landed is for the database
            // to say.
            (Err(error), Some(xid)) => Err(ApplyError::CommitUnknown {
                error,
                xid,
                outcome: Box::new(outcome),
            }),
            // SQLite is in this process: a COMMIT that failed did not land.
            (Err(error), None) => Err(ApplyError::Failed(error)),
        }
    }

    /// Fail point `writer-commit-reply-lost` (tests): configured with this
    /// writer's tenant (`return(TENANT)`), every commit of the tenant's
    /// batches lands but reports a broken connection, as when the answer
    /// to a COMMIT is lost.
    #[cfg(feature = "failpoints")]
    fn lose_commit_reply(&self) -> Result<(), sqlx::Error> {
        let tenant = self.db.tenant().to_string();
        match fail::eval("writer-commit-reply-lost", |armed| armed == Some(tenant)) {
            Some(true) => Err(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the transaction `xid` committed (PostgreSQL), asked until
    /// the database answers: true when it did, false when it aborted or is
    /// unknown to it (it never got as far as an id the database kept).
    async fn landed(&self, xid: i64) -> bool {
        let mut delay = Duration::from_millis(50);
        loop {
            match sql::transaction_status(self.db.pool(), xid).await {
                Ok(Some(status)) if status == "in progress" => {}
                Ok(status) => return status.as_deref() == Some("committed"),
                Err(error) if crate::database::is_transient(&error) => {
                    tracing::warn!(%error, retry_in = ?delay, tenant = %self.db.tenant(),
                        "the answer to a commit was lost; asking the database whether it landed");
                }
                Err(error) => {
                    tracing::error!(%error, xid, tenant = %self.db.tenant(),
                        "cannot tell whether a commit whose answer was lost landed; taking it as not");
                    return false;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// On PostgreSQL, tells the other hosts what the batch did (delivered
    /// at the commit): whether it left claimable work, the executions it
    /// ended, and those it wrote events for (their followers read them).
    async fn notify_hosts(&self, tx: &mut Conn, outcome: &Outcome) -> Result<(), sqlx::Error> {
        if self.db.dialect() != Dialect::Postgres {
            return Ok(());
        }
        let evented = outcome.evented();
        if !outcome.work_left && outcome.ended.is_empty() && evented.is_empty() {
            return Ok(());
        }
        let note = super::notify::Note {
            sender: self.config.host_id.clone(),
            work: outcome.work_left,
            ended: outcome.ended.clone(),
            evented,
        };
        for payload in note.payloads() {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::notify::channel(&self.db))
                .bind(payload)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// After the commit: tell everyone.
    fn announce(&mut self, batch: Vec<Command>, outcome: Outcome) {
        let now = now_ms();
        let Outcome {
            started,
            cancelled,
            assignments,
            released,
            cancel_running,
            ended,
            events: pending,
            sequences,
            wake_at,
            work_left,
        } = outcome;
        self.forget_released(&released);
        self.stop_cancelled(&cancel_running);
        events::publish(&self.outlets.events, pending, sequences, now);
        self.reply(batch, started, cancelled);
        for execution in &ended {
            self.active.remove(execution);
        }
        self.outlets.completions.complete(&ended);
        self.hand_out(assignments);
        self.schedule_wake(wake_at, work_left, now);
    }

    /// Answers the batch's starts and cancels; a start the batch did not
    /// apply (the writer drains) is refused.
    fn reply(
        &mut self,
        batch: Vec<Command>,
        started: Vec<(usize, Option<ExecutionId>)>,
        cancelled: Vec<(usize, bool)>,
    ) {
        let mut started: HashMap<usize, Option<ExecutionId>> = started.into_iter().collect();
        let mut cancelled: HashMap<usize, bool> = cancelled.into_iter().collect();
        for (index, command) in batch.into_iter().enumerate() {
            match command {
                Command::Start { reply, request } => {
                    let answer = match started.remove(&index) {
                        Some(started) => Ok(started),
                        None => Err(RuntimeError::ShuttingDown),
                    };
                    if answer.as_ref().is_ok_and(Option::is_none) {
                        self.active.remove(&request.id);
                    }
                    let _ = reply.send(answer);
                }
                Command::Cancel { reply, .. } => {
                    let _ = reply.send(Ok(cancelled.remove(&index).unwrap_or(false)));
                }
                _ => {}
            }
        }
    }

    /// When the writer next looks for work unasked: at once while work
    /// is left and a slot is free, else at the earliest retry (if any).
    fn schedule_wake(&mut self, wake_at: Option<i64>, work_left: bool, now: i64) {
        self.next_wake = match (wake_at, work_left) {
            (_, true) if !self.draining => Some(Instant::now()),
            (Some(at), _) => {
                Some(Instant::now() + Duration::from_millis(u64::try_from(at - now).unwrap_or(0)))
            }
            (None, _) => None,
        };
        if work_left && self.running.len() >= self.config.max_running {
            // Full: the next finished task wakes the writer anyway.
            self.next_wake = wake_at.map(|at| {
                Instant::now() + Duration::from_millis(u64::try_from(at - now).unwrap_or(0))
            });
        }
    }

    fn answer_drain(&mut self) {
        if self.draining && self.running.is_empty() {
            for waiter in self.drain_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

fn error_again(message: &str) -> sqlx::Error {
    sqlx::Error::Protocol(message.to_owned())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How long a caller waiting on a command (start, cancel) is held while
/// the database is unreachable before it is answered "unavailable".
const REPLY_PATIENCE: Duration = cloacina_database::ACQUIRE_TIMEOUT;

/// Answers the batch's starts and cancels "the database is unavailable"
/// and takes them out of it (nothing of them was committed).
fn answer_unavailable(batch: &mut Vec<Command>) {
    let kept: Vec<Command> = std::mem::take(batch)
        .into_iter()
        .filter_map(refuse_if_waiting)
        .collect();
    *batch = kept;
}

/// Answers a start or a cancel "the database is unavailable"; any other
/// command is handed back.
fn refuse_if_waiting(command: Command) -> Option<Command> {
    let unavailable = |doing| RuntimeError::Database {
        doing,
        source: sqlx::Error::PoolTimedOut,
    };
    match command {
        Command::Start { reply, .. } => {
            let _ = reply.send(Err(unavailable("starting an execution")));
            None
        }
        Command::Cancel { reply, .. } => {
            let _ = reply.send(Err(unavailable("cancelling an execution")));
            None
        }
        command => Some(command),
    }
}
