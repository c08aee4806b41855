//! Executions that have ended never change again: their API answers are
//! kept (bounded) so reading them does not touch the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cloacina_runtime::{ExecutionId, TenantId};
use cloacina_wire::executions::ExecutionDetail;

const CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
pub struct EndedExecutions {
    answers: Mutex<HashMap<(TenantId, ExecutionId), Arc<ExecutionDetail>>>,
}

impl EndedExecutions {
    pub fn get(&self, tenant: &TenantId, id: ExecutionId) -> Option<Arc<ExecutionDetail>> {
        self.lock().get(&(tenant.clone(), id)).cloned()
    }

    pub fn insert(&self, tenant: &TenantId, id: ExecutionId, answer: Arc<ExecutionDetail>) {
        let mut answers = self.lock();
        if answers.len() >= CAPACITY {
            // Any one: a miss only costs a read.
            if let Some(key) = answers.keys().next().cloned() {
                answers.remove(&key);
            }
        }
        answers.insert((tenant.clone(), id), answer);
    }

    /// A removed tenant's executions are gone.
    pub fn forget_tenant(&self, tenant: &TenantId) {
        self.lock().retain(|(owner, _), _| owner != tenant);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(TenantId, ExecutionId), Arc<ExecutionDetail>>> {
        self.answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
