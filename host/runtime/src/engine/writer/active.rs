//! What the writer remembers of the executions it drives (their workflow,
//! input and task results), so the hot path reads nothing back from the
//! database; an execution it does not remember is loaded from its row.

use std::sync::Arc;

use serde_json::Value;

use super::Writer;
use crate::engine::sql::{self, Conn};
use crate::model::ExecutionId;
use crate::workflow::Workflow;

/// What the writer remembers of an execution it is driving, so the hot
/// path reads nothing back from the database.
pub(super) struct Active {
    pub(super) workflow: Arc<Workflow>,
    pub(super) input: Arc<Value>,
    pub(super) results: Vec<Option<Arc<Value>>>,
}

impl Active {
    pub(super) fn new(workflow: Arc<Workflow>, input: Value) -> Self {
        let results = vec![None; workflow.tasks().len()];
        Active {
            workflow,
            input: Arc::new(input),
            results,
        }
    }
}

impl Writer {
    /// The workflow an execution runs, from memory or from its row.
    pub(super) async fn workflow_of(
        &mut self,
        tx: &mut Conn,
        execution: ExecutionId,
    ) -> Result<Option<Arc<Workflow>>, sqlx::Error> {
        if let Some(active) = self.active.get(&execution) {
            return Ok(Some(active.workflow.clone()));
        }
        let Some(head) = sql::execution_head(tx, &execution.to_string()).await? else {
            return Ok(None);
        };
        let Ok(version) = semver::Version::parse(&head.package_version) else {
            return Ok(None);
        };
        let Some(workflow) = self.registry.get(&head.workflow, &version) else {
            tracing::warn!(%execution, workflow = %head.workflow, %version,
                "an execution's workflow version is not registered on this host");
            return Ok(None);
        };
        let input: Value = serde_json::from_str(&head.input).unwrap_or_default();
        self.active
            .insert(execution, Active::new(workflow.clone(), input));
        Ok(Some(workflow))
    }

    /// The results of the tasks at `positions` (all completed), from
    /// memory where they are, else read back.
    pub(super) async fn results(
        &mut self,
        tx: &mut Conn,
        execution: ExecutionId,
        workflow: &Workflow,
        positions: &[usize],
    ) -> Result<Vec<Arc<Value>>, sqlx::Error> {
        let cached = |active: Option<&Active>| -> Option<Vec<Arc<Value>>> {
            let active = active?;
            positions
                .iter()
                .map(|&p| active.results.get(p).cloned().flatten())
                .collect()
        };
        if let Some(results) = cached(self.active.get(&execution)) {
            return Ok(results);
        }
        let stored = sql::completed_results(tx, &execution.to_string()).await?;
        let mut read = vec![None; workflow.tasks().len()];
        for (task, result) in stored {
            if let Some(position) = workflow.position(&task) {
                read[position] = Some(Arc::new(serde_json::from_str(&result).unwrap_or_default()));
            }
        }
        let results = positions.iter().filter_map(|&p| read[p].clone()).collect();
        if let Some(active) = self.active.get_mut(&execution) {
            for (slot, value) in active.results.iter_mut().zip(read) {
                if slot.is_none() {
                    *slot = value;
                }
            }
        }
        Ok(results)
    }
}
