//! Waiting for executions to end without polling: the writer fires the
//! waiters of the executions a commit ended.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::model::ExecutionId;

#[derive(Debug, Default)]
pub(crate) struct Completions {
    waiters: Mutex<HashMap<ExecutionId, Vec<oneshot::Sender<()>>>>,
}

impl Completions {
    /// A receiver that fires when `execution` ends (register, then check
    /// the database, so an end in between is not missed).
    pub(crate) fn watch(&self, execution: ExecutionId) -> oneshot::Receiver<()> {
        let (sender, receiver) = oneshot::channel();
        self.lock().entry(execution).or_default().push(sender);
        receiver
    }

    pub(crate) fn complete(&self, ended: &[ExecutionId]) {
        if ended.is_empty() {
            return;
        }
        let mut waiters = self.lock();
        for execution in ended {
            for waiter in waiters.remove(execution).unwrap_or_default() {
                let _ = waiter.send(());
            }
        }
    }

    pub(crate) fn forget(&self, execution: ExecutionId) {
        let mut waiters = self.lock();
        if let Some(list) = waiters.get_mut(&execution) {
            list.retain(|waiter| !waiter.is_closed());
            if list.is_empty() {
                waiters.remove(&execution);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ExecutionId, Vec<oneshot::Sender<()>>>> {
        self.waiters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
