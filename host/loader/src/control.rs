//! Cancellation and deadlines for one task call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::TaskFailure;

/// What the host can tell a running task: stop (cancelled, or past the
/// deadline). Cheap to clone; clones share the cancellation flag.
#[derive(Debug, Clone, Default)]
pub struct CallControl {
    cancelled: Arc<AtomicBool>,
    deadline: Option<(Instant, Duration)>,
    attempt: u32,
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

    /// A control whose deadline is `timeout` from now.
    pub fn with_timeout(timeout: Duration) -> Self {
        CallControl {
            cancelled: Arc::default(),
            deadline: Some((Instant::now() + timeout, timeout)),
            attempt: 1,
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
