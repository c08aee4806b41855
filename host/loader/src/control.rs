//! Cancellation and deadlines for one task call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::TaskFailure;

/// Where a task's `ctx.log` lines go.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// The longest log line kept, in bytes; longer ones are cut.
pub const MAX_LOG_LINE: usize = 8 << 10;

/// What the host can tell a running task: stop (cancelled, or past the
/// deadline); and where its log lines go. Cheap to clone; clones share the
/// cancellation flag.
#[derive(Clone, Default)]
pub struct CallControl {
    cancelled: Arc<AtomicBool>,
    deadline: Option<(Instant, Duration)>,
    attempt: u32,
    log: Option<LogSink>,
}

impl std::fmt::Debug for CallControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallControl")
            .field("cancelled", &self.is_cancelled())
            .field("deadline", &self.deadline)
            .field("attempt", &self.attempt)
            .field("log", &self.log.is_some())
            .finish()
    }
}

impl CallControl {
    pub fn new() -> Self {
        CallControl {
            attempt: 1,
            ..Self::default()
        }
    }

    /// The same control for attempt number `attempt` (from 1).
    pub fn attempt_number(mut self, attempt: u32) -> Self {
        self.attempt = attempt.max(1);
        self
    }

    pub fn attempt(&self) -> u32 {
        self.attempt.max(1)
    }

    /// The same control, sending the task's log lines to `sink`.
    pub fn with_log(mut self, sink: LogSink) -> Self {
        self.log = Some(sink);
        self
    }

    /// A line the task logged (`ctx.log`): to the sink, or else to this
    /// process's log. Lines over [`MAX_LOG_LINE`] bytes are cut.
    pub fn log(&self, message: &str) {
        let message = if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            &message[..end]
        } else {
            message
        };
        match &self.log {
            Some(sink) => sink(message),
            None => {
                tracing::info!(target: "cloacina::plugin", attempt = self.attempt(), "{message}")
            }
        }
    }

    /// A control whose deadline is `timeout` from now.
    pub fn with_timeout(timeout: Duration) -> Self {
        CallControl {
            cancelled: Arc::default(),
            deadline: Some((Instant::now() + timeout, timeout)),
            attempt: 1,
            log: None,
        }
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Time left before the deadline, if there is one (zero once passed).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|(deadline, _)| deadline.saturating_duration_since(Instant::now()))
    }

    /// The timeout, if its deadline has passed.
    pub fn expired(&self) -> Option<Duration> {
        self.deadline
            .filter(|(deadline, _)| Instant::now() >= *deadline)
            .map(|(_, timeout)| timeout)
    }

    /// Why the call must be reported as stopped, whatever the task
    /// returned: a task that noticed its deadline and returned early is
    /// still timed out.
    pub fn stop_reason(&self) -> Option<TaskFailure> {
        if let Some(timeout) = self.expired() {
            return Some(TaskFailure::TimedOut(
                u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            ));
        }
        self.is_cancelled().then_some(TaskFailure::Cancelled)
    }

    /// Whether the task should stop, for either reason.
    pub fn should_stop(&self) -> bool {
        self.is_cancelled() || self.expired().is_some()
    }
}
