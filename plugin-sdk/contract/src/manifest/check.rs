//! The rules a declaration must satisfy beyond its shape: unique names,
//! references that resolve, DAGs without cycles, sane policies.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::Identifier;
use super::declaration::{Declaration, RetryPolicy, TaskDeclaration};
use super::graph::{check_graph, check_invocations, check_invoked_graph};

/// A declaration that parses but does not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclarationError {
    #[error("task `{0}` is declared twice")]
    DuplicateTask(Identifier),
    #[error(
        "task `{task}` depends on `{dependency}`, which is not declared: list its #[task] function in `plugin! {{ tasks: [...] }}`, or fix the name"
    )]
    UnknownDependency {
        task: Identifier,
        dependency: Identifier,
    },
    #[error("task `{0}` depends on itself")]
    SelfDependency(Identifier),
    #[error("task `{task}` lists dependency `{dependency}` twice")]
    RepeatedDependency {
        task: Identifier,
        dependency: Identifier,
    },
    #[error("tasks {} depend on each other in a cycle", list(.0))]
    Cycle(Vec<Identifier>),
    #[error("task `{task}` has an invalid retry policy: {reason}")]
    InvalidRetryPolicy {
        task: Identifier,
        reason: &'static str,
    },
    #[error("task `{0}` has a timeout of 0 ms")]
    ZeroTimeout(Identifier),
    #[error("workflow `{0}` is declared twice")]
    DuplicateWorkflow(Identifier),
    #[error("workflow `{0}` has no tasks")]
    EmptyWorkflow(Identifier),
    #[error(
        "workflow `{workflow}` names task `{task}`, which is not declared: list its #[task] function in `plugin! {{ tasks: [...] }}`, or fix the name"
    )]
    WorkflowUnknownTask {
        workflow: Identifier,
        task: Identifier,
    },
    #[error("workflow `{workflow}` names task `{task}` twice")]
    WorkflowRepeatedTask {
        workflow: Identifier,
        task: Identifier,
    },
    #[error("workflow `{workflow}` includes task `{task}` but not its dependency `{dependency}`")]
    WorkflowMissingDependency {
        workflow: Identifier,
        task: Identifier,
        dependency: Identifier,
    },
    #[error("{kind} `{0}` is declared twice", kind = .1)]
    DuplicateName(Identifier, &'static str),
    #[error("{kind} `{name}` runs workflow `{workflow}`, which is not declared")]
    UnknownWorkflow {
        kind: &'static str,
        name: Identifier,
        workflow: Identifier,
    },
    #[error("cron schedule `{0}` has an empty expression")]
    EmptyCronExpression(Identifier),
    #[error("cron schedule `{0}` has an empty time zone")]
    EmptyTimezone(Identifier),
    #[error("trigger `{0}` has a poll interval of 0 ms")]
    ZeroPollInterval(Identifier),
    #[error("computation graph `{0}` has no accumulators")]
    NoAccumulators(Identifier),
    #[error("computation graph `{graph}` uses the name `{name}` twice")]
    DuplicateGraphMember { graph: Identifier, name: Identifier },
    #[error(
        "computation graph `{graph}`: node `{node}` reads `{input}`, which is neither an accumulator, a node, nor `node.field`"
    )]
    UnknownGraphInput {
        graph: Identifier,
        node: Identifier,
        input: Identifier,
    },
    #[error("computation graph `{graph}`: {reason}")]
    InvalidGraph { graph: Identifier, reason: String },
    #[error("computation graph `{graph}`: nodes {} form a cycle", list(.nodes))]
    GraphCycle {
        graph: Identifier,
        nodes: Vec<Identifier>,
    },
}

fn list(names: &[Identifier]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a workflow's tasks could not be gathered from a declaration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowTasksError {
    #[error("workflow `{0}` is not declared by the package")]
    NoSuchWorkflow(String),
    #[error("workflow `{workflow}`: task `{task}` is not declared")]
    UnknownTask { workflow: String, task: String },
}

impl Declaration {
    /// The declarations of workflow `name`'s tasks, in the workflow's own
    /// order: what the runtime registers and the SDK's harness runs.
    pub fn workflow_tasks(&self, name: &str) -> Result<Vec<TaskDeclaration>, WorkflowTasksError> {
        let workflow = self
            .workflows
            .iter()
            .find(|w| w.name.as_str() == name)
            .ok_or_else(|| WorkflowTasksError::NoSuchWorkflow(name.to_owned()))?;
        workflow
            .tasks
            .iter()
            .map(|id| {
                self.tasks
                    .iter()
                    .find(|task| task.id == *id)
                    .cloned()
                    .ok_or_else(|| WorkflowTasksError::UnknownTask {
                        workflow: name.to_owned(),
                        task: id.to_string(),
                    })
            })
            .collect()
    }

    /// Checks every rule; the first broken one is returned.
    pub fn validate(&self) -> Result<(), DeclarationError> {
        let tasks = self.check_tasks()?;
        let workflows = self.check_workflows(&tasks)?;
        self.check_schedules(&workflows)?;
        for graph in &self.computation_graphs {
            check_graph(graph, self)?;
        }
        for graph in &self.invoked_graphs {
            check_invoked_graph(graph, self)?;
        }
        unique(
            self.computation_graphs
                .iter()
                .map(|graph| &graph.name)
                .chain(self.invoked_graphs.iter().map(|graph| &graph.name)),
            "computation graph",
        )?;
        check_invocations(self)?;
        Ok(())
    }

    fn check_tasks(&self) -> Result<BTreeMap<&Identifier, &TaskDeclaration>, DeclarationError> {
        let mut tasks = BTreeMap::new();
        for task in &self.tasks {
            if tasks.insert(&task.id, task).is_some() {
                return Err(DeclarationError::DuplicateTask(task.id.clone()));
            }
        }
        for task in &self.tasks {
            let mut seen = BTreeSet::new();
            for dependency in &task.dependencies {
                if dependency == &task.id {
                    return Err(DeclarationError::SelfDependency(task.id.clone()));
                }
                if !tasks.contains_key(dependency) {
                    return Err(DeclarationError::UnknownDependency {
                        task: task.id.clone(),
                        dependency: dependency.clone(),
                    });
                }
                if !seen.insert(dependency) {
                    return Err(DeclarationError::RepeatedDependency {
                        task: task.id.clone(),
                        dependency: dependency.clone(),
                    });
                }
            }
            check_retry(&task.id, &task.retry)?;
            if task.timeout_ms == Some(0) {
                return Err(DeclarationError::ZeroTimeout(task.id.clone()));
            }
        }
        let edges = self
            .tasks
            .iter()
            .map(|task| (&task.id, task.dependencies.iter().collect()))
            .collect();
        if let Some(cycle) = nodes_on_cycles(edges) {
            return Err(DeclarationError::Cycle(cycle));
        }
        Ok(tasks)
    }

    fn check_workflows(
        &self,
        tasks: &BTreeMap<&Identifier, &TaskDeclaration>,
    ) -> Result<BTreeSet<&Identifier>, DeclarationError> {
        let mut workflows = BTreeSet::new();
        for workflow in &self.workflows {
            if !workflows.insert(&workflow.name) {
                return Err(DeclarationError::DuplicateWorkflow(workflow.name.clone()));
            }
            if workflow.tasks.is_empty() {
                return Err(DeclarationError::EmptyWorkflow(workflow.name.clone()));
            }
            let mut members = BTreeSet::new();
            for task in &workflow.tasks {
                if !tasks.contains_key(task) {
                    return Err(DeclarationError::WorkflowUnknownTask {
                        workflow: workflow.name.clone(),
                        task: task.clone(),
                    });
                }
                if !members.insert(task) {
                    return Err(DeclarationError::WorkflowRepeatedTask {
                        workflow: workflow.name.clone(),
                        task: task.clone(),
                    });
                }
            }
            for task in &workflow.tasks {
                for dependency in &tasks[task].dependencies {
                    if !members.contains(dependency) {
                        return Err(DeclarationError::WorkflowMissingDependency {
                            workflow: workflow.name.clone(),
                            task: task.clone(),
                            dependency: dependency.clone(),
                        });
                    }
                }
            }
        }
        Ok(workflows)
    }

    fn check_schedules(&self, workflows: &BTreeSet<&Identifier>) -> Result<(), DeclarationError> {
        unique(
            self.cron_schedules.iter().map(|cron| &cron.name),
            "cron schedule",
        )?;
        unique(self.triggers.iter().map(|trigger| &trigger.name), "trigger")?;
        let known = |kind, name: &Identifier, workflow: &Identifier| {
            if workflows.contains(workflow) {
                Ok(())
            } else {
                Err(DeclarationError::UnknownWorkflow {
                    kind,
                    name: name.clone(),
                    workflow: workflow.clone(),
                })
            }
        };
        for cron in &self.cron_schedules {
            known("cron schedule", &cron.name, &cron.workflow)?;
            if cron.expression.trim().is_empty() {
                return Err(DeclarationError::EmptyCronExpression(cron.name.clone()));
            }
            if cron.timezone.trim().is_empty() {
                return Err(DeclarationError::EmptyTimezone(cron.name.clone()));
            }
        }
        for trigger in &self.triggers {
            known("trigger", &trigger.name, &trigger.workflow)?;
            if trigger.poll_interval_ms == 0 {
                return Err(DeclarationError::ZeroPollInterval(trigger.name.clone()));
            }
        }
        Ok(())
    }
}

fn check_retry(task: &Identifier, retry: &RetryPolicy) -> Result<(), DeclarationError> {
    let reason = if retry.max_attempts == 0 {
        Some("max_attempts must be at least 1")
    } else if retry.max_delay_ms.is_some_and(|max| max < retry.delay_ms) {
        Some("max_delay_ms is smaller than delay_ms")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(DeclarationError::InvalidRetryPolicy {
            task: task.clone(),
            reason,
        }),
        None => Ok(()),
    }
}

fn unique<'a>(
    names: impl Iterator<Item = &'a Identifier>,
    kind: &'static str,
) -> Result<(), DeclarationError> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(DeclarationError::DuplicateName(name.clone(), kind));
        }
    }
    Ok(())
}

/// The order a workflow's tasks run in: Kahn's algorithm, stable in
/// declaration order; on a cycle, the tasks on it joined with " -> ".
/// `tasks` must hold every dependency of each (a workflow is closed under
/// its dependencies). The host's runtime and the SDK's test harness both
/// order by it.
pub fn topological_order(tasks: &[TaskDeclaration]) -> Result<Vec<usize>, String> {
    let position: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let mut waiting: Vec<usize> = tasks.iter().map(|t| t.dependencies.len()).collect();
    let mut order = Vec::with_capacity(tasks.len());
    let mut done = vec![false; tasks.len()];
    while order.len() < tasks.len() {
        let Some(next) = (0..tasks.len()).find(|&i| !done[i] && waiting[i] == 0) else {
            let stuck: Vec<&str> = (0..tasks.len())
                .filter(|&i| !done[i])
                .map(|i| tasks[i].id.as_str())
                .collect();
            return Err(stuck.join(" -> "));
        };
        done[next] = true;
        order.push(next);
        for (i, task) in tasks.iter().enumerate() {
            let hits = task
                .dependencies
                .iter()
                .filter(|dep| position[dep.as_str()] == next)
                .count();
            waiting[i] -= hits;
        }
    }
    Ok(order)
}

/// Kahn's algorithm over `node -> the nodes it depends on`; edges to nodes
/// outside the map (a graph's accumulators) are ignored. Returns the nodes
/// that could not be ordered, which are exactly those on or behind a cycle.
pub(super) fn nodes_on_cycles(
    edges: BTreeMap<&Identifier, BTreeSet<&Identifier>>,
) -> Option<Vec<Identifier>> {
    let mut waiting_on: BTreeMap<&Identifier, usize> = edges
        .iter()
        .map(|(node, deps)| {
            (
                *node,
                deps.iter().filter(|d| edges.contains_key(*d)).count(),
            )
        })
        .collect();
    let mut ready: Vec<&Identifier> = waiting_on
        .iter()
        .filter(|(_, count)| **count == 0)
        .map(|(node, _)| *node)
        .collect();
    while let Some(done) = ready.pop() {
        waiting_on.remove(done);
        for (node, deps) in &edges {
            if deps.contains(done)
                && let Some(count) = waiting_on.get_mut(node)
            {
                *count -= 1;
                if *count == 0 {
                    ready.push(node);
                }
            }
        }
    }
    if waiting_on.is_empty() {
        None
    } else {
        Some(waiting_on.into_keys().cloned().collect())
    }
}
