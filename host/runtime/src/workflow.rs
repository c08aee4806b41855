//! Workflows as the runtime runs them: tasks in a checked DAG, each with
//! its retry policy and timeout, and the plugin that runs their code.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cloacina_contract::context::{Join, Output};
use cloacina_contract::manifest::{
    Declaration, InvokedGraphDeclaration, RetryPolicy, TaskDeclaration, WorkflowTasksError,
    topological_order,
};
use cloacina_loader::Plugin;

use crate::RegistrationError;

/// Which package (and version) a workflow came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageRef {
    pub name: String,
    pub version: semver::Version,
}

/// One task as scheduled.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub id: String,
    /// Indices into [`Workflow::tasks`], in declaration order.
    pub dependencies: Vec<usize>,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    /// The invoked graph run after the task's body, within its attempt.
    pub invokes: Option<Arc<InvokedGraphDeclaration>>,
}

/// A workflow ready to run: its tasks in a topological order (every task
/// after its dependencies), checked for cycles and missing dependencies.
pub struct Workflow {
    name: String,
    package: PackageRef,
    tasks: Vec<TaskSpec>,
    index: HashMap<String, usize>,
    dependants: Vec<Vec<usize>>,
    plugin: Arc<dyn Plugin>,
    join: Join,
    output: Output,
}

impl fmt::Debug for Workflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workflow")
            .field("name", &self.name)
            .field("package", &self.package)
            .field(
                "tasks",
                &self.tasks.iter().map(|t| &t.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Workflow {
    /// The workflow `name` of a package's declaration, run by `plugin`.
    pub fn from_declaration(
        declaration: &Declaration,
        name: &str,
        package: PackageRef,
        plugin: Arc<dyn Plugin>,
    ) -> Result<Self, RegistrationError> {
        let tasks = declaration
            .workflow_tasks(name)
            .map_err(|error| match error {
                WorkflowTasksError::NoSuchWorkflow(workflow) => {
                    RegistrationError::NoSuchWorkflow { workflow }
                }
                WorkflowTasksError::UnknownTask { workflow, task } => {
                    RegistrationError::UnknownTask { workflow, task }
                }
            })?;
        let mut workflow = Self::new(name, package, tasks.clone(), plugin)?;
        for spec in &mut workflow.tasks {
            let Some(graph) = tasks
                .iter()
                .find(|task| task.id.as_str() == spec.id)
                .and_then(|task| task.invokes.as_ref())
            else {
                continue;
            };
            let invoked = declaration
                .invoked_graphs
                .iter()
                .find(|g| &g.name == graph)
                .ok_or_else(|| RegistrationError::UnknownTask {
                    workflow: name.to_owned(),
                    task: format!(
                        "{} (it invokes graph `{graph}`, which is not declared)",
                        spec.id
                    ),
                })?;
            spec.invokes = Some(Arc::new(invoked.clone()));
        }
        Ok(workflow)
    }

    /// A workflow of the given tasks; their dependencies must all be among
    /// them and form no cycle.
    pub fn new(
        name: &str,
        package: PackageRef,
        tasks: Vec<TaskDeclaration>,
        plugin: Arc<dyn Plugin>,
    ) -> Result<Self, RegistrationError> {
        let workflow = name.to_owned();
        if tasks.is_empty() {
            return Err(RegistrationError::Empty { workflow });
        }
        let mut declared: HashMap<&str, &TaskDeclaration> = HashMap::new();
        for task in &tasks {
            if declared.insert(task.id.as_str(), task).is_some() {
                return Err(RegistrationError::DuplicateTask {
                    workflow,
                    task: task.id.to_string(),
                });
            }
        }
        for task in &tasks {
            if let Some(missing) = task
                .dependencies
                .iter()
                .find(|dep| !declared.contains_key(dep.as_str()))
            {
                return Err(RegistrationError::MissingDependency {
                    workflow,
                    task: task.id.to_string(),
                    dependency: missing.to_string(),
                });
            }
        }
        let order = topological_order(&tasks).map_err(|cycle| RegistrationError::Cycle {
            workflow: workflow.clone(),
            cycle,
        })?;
        let index: HashMap<String, usize> = order
            .iter()
            .enumerate()
            .map(|(position, &i)| (tasks[i].id.to_string(), position))
            .collect();
        let specs: Vec<TaskSpec> = order
            .iter()
            .map(|&i| {
                let task = &tasks[i];
                TaskSpec {
                    id: task.id.to_string(),
                    dependencies: task
                        .dependencies
                        .iter()
                        .map(|dep| index[dep.as_str()])
                        .collect(),
                    retry: task.retry.clone(),
                    timeout: task.timeout_ms.map(Duration::from_millis),
                    invokes: None,
                }
            })
            .collect();
        let mut dependants = vec![Vec::new(); specs.len()];
        for (position, spec) in specs.iter().enumerate() {
            for &dep in &spec.dependencies {
                dependants[dep].push(position);
            }
        }
        Ok(Workflow {
            name: workflow,
            package,
            tasks: specs,
            index,
            dependants,
            plugin,
            join: Join::default(),
            output: Output::default(),
        })
    }

    /// The same workflow, joining its dependencies' results by `join`.
    pub fn with_join(mut self, join: Join) -> Self {
        self.join = join;
        self
    }

    /// How a task's dependencies' results are joined into its input.
    pub fn join(&self) -> Join {
        self.join
    }

    /// The same workflow, its tasks' outputs applied to their inputs by
    /// `output`.
    pub fn with_output_rule(mut self, output: Output) -> Self {
        self.output = output;
        self
    }

    /// What a task's output does to its input.
    pub fn output_rule(&self) -> Output {
        self.output
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn package(&self) -> &PackageRef {
        &self.package
    }

    /// The tasks, every one after its dependencies.
    pub fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    pub fn position(&self, task: &str) -> Option<usize> {
        self.index.get(task).copied()
    }

    /// The tasks that depend directly on `position`.
    pub fn dependants(&self, position: usize) -> &[usize] {
        &self.dependants[position]
    }

    /// Every task downstream of `position`, each once, in topological order.
    pub fn descendants(&self, position: usize) -> Vec<usize> {
        let mut marked = vec![false; self.tasks.len()];
        let mut stack = vec![position];
        while let Some(at) = stack.pop() {
            for &next in &self.dependants[at] {
                if !marked[next] {
                    marked[next] = true;
                    stack.push(next);
                }
            }
        }
        (0..self.tasks.len()).filter(|&i| marked[i]).collect()
    }

    /// Tasks nothing depends on: their outputs make the final context.
    pub fn sinks(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.tasks.len()).filter(|&i| self.dependants[i].is_empty())
    }

    pub fn plugin(&self) -> &Arc<dyn Plugin> {
        &self.plugin
    }
}

/// The workflows a runner knows, by name and version. New executions use
/// the highest version that is not retired; running ones keep (and may
/// still claim tasks of) the version they started on until it is removed.
#[derive(Debug, Default)]
pub struct WorkflowRegistry {
    workflows: RwLock<HashMap<String, BTreeMap<semver::Version, Registered>>>,
}

#[derive(Debug)]
struct Registered {
    workflow: Arc<Workflow>,
    /// Finishing its running executions; starts no new ones.
    retired: bool,
}

impl WorkflowRegistry {
    pub fn insert(&self, workflow: Arc<Workflow>) {
        let mut workflows = self.workflows.write().unwrap_or_else(|e| e.into_inner());
        workflows.entry(workflow.name.clone()).or_default().insert(
            workflow.package.version.clone(),
            Registered {
                workflow,
                retired: false,
            },
        );
    }

    /// The package that owns workflow `name`: the one whose versions are
    /// registered under it, retired ones included (a draining version
    /// still runs executions under the name until it is forgotten).
    pub fn owner(&self, name: &str) -> Option<PackageRef> {
        let workflows = self.workflows.read().unwrap_or_else(|e| e.into_inner());
        let versions = workflows.get(name)?;
        versions
            .values()
            .rev()
            .find(|r| !r.retired)
            .or_else(|| versions.values().next_back())
            .map(|r| r.workflow.package.clone())
    }

    /// Stops `name` `version` from starting executions; running ones go on.
    pub fn retire(&self, name: &str, version: &semver::Version) -> bool {
        let mut workflows = self.workflows.write().unwrap_or_else(|e| e.into_inner());
        match workflows.get_mut(name).and_then(|v| v.get_mut(version)) {
            Some(registered) => {
                registered.retired = true;
                true
            }
            None => false,
        }
    }

    /// Inserts `workflow` and retires every other version of its name, in
    /// one step: no start in between sees an older version as the latest.
    pub fn insert_replacing(&self, workflow: Arc<Workflow>) {
        let mut workflows = self.workflows.write().unwrap_or_else(|e| e.into_inner());
        let versions = workflows.entry(workflow.name.clone()).or_default();
        for registered in versions.values_mut() {
            registered.retired = true;
        }
        versions.insert(
            workflow.package.version.clone(),
            Registered {
                workflow,
                retired: false,
            },
        );
    }

    pub fn remove(&self, name: &str, version: &semver::Version) -> Option<Arc<Workflow>> {
        let mut workflows = self.workflows.write().unwrap_or_else(|e| e.into_inner());
        let versions = workflows.get_mut(name)?;
        let removed = versions.remove(version);
        if versions.is_empty() {
            workflows.remove(name);
        }
        removed.map(|r| r.workflow)
    }

    /// Version `version` of `name`, if it may start executions (registered
    /// and not retired): for a start pinned to a version.
    pub fn startable(&self, name: &str, version: &semver::Version) -> Option<Arc<Workflow>> {
        let workflows = self.workflows.read().unwrap_or_else(|e| e.into_inner());
        workflows
            .get(name)?
            .get(version)
            .filter(|r| !r.retired)
            .map(|r| r.workflow.clone())
    }

    /// The version new executions of `name` use.
    pub fn latest(&self, name: &str) -> Option<Arc<Workflow>> {
        let workflows = self.workflows.read().unwrap_or_else(|e| e.into_inner());
        workflows
            .get(name)?
            .values()
            .rev()
            .find(|r| !r.retired)
            .map(|r| r.workflow.clone())
    }

    pub fn get(&self, name: &str, version: &semver::Version) -> Option<Arc<Workflow>> {
        let workflows = self.workflows.read().unwrap_or_else(|e| e.into_inner());
        workflows
            .get(name)?
            .get(version)
            .map(|r| r.workflow.clone())
    }

    /// Every registered (workflow, package version), retired ones included,
    /// as stored on executions: what this host can run tasks of.
    pub fn runnable(&self) -> Vec<(String, String)> {
        let workflows = self.workflows.read().unwrap_or_else(|e| e.into_inner());
        workflows
            .iter()
            .flat_map(|(name, versions)| {
                versions.keys().map(move |v| (name.clone(), v.to_string()))
            })
            .collect()
    }

    /// The names of workflows that can start executions, sorted.
    pub fn names(&self) -> Vec<String> {
        let workflows = self.workflows.read().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<String> = workflows
            .iter()
            .filter(|(_, versions)| versions.values().any(|r| !r.retired))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FunctionPlugin;
    use cloacina_contract::Identifier;

    fn task(id: &str, deps: &[&str]) -> TaskDeclaration {
        TaskDeclaration {
            id: Identifier::new(id).expect("id"),
            description: String::new(),
            dependencies: deps
                .iter()
                .map(|d| Identifier::new(*d).expect("id"))
                .collect(),
            retry: RetryPolicy::default(),
            timeout_ms: None,
            invokes: None,
        }
    }

    fn package() -> PackageRef {
        PackageRef {
            name: "p".into(),
            version: semver::Version::new(1, 0, 0),
        }
    }

    fn build(tasks: Vec<TaskDeclaration>) -> Result<Workflow, RegistrationError> {
        Workflow::new("w", package(), tasks, Arc::new(FunctionPlugin::new()))
    }

    #[test]
    fn orders_tasks_after_their_dependencies() {
        let workflow = build(vec![
            task("c", &["a", "b"]),
            task("a", &[]),
            task("b", &["a"]),
        ])
        .expect("valid");
        let order: Vec<&str> = workflow.tasks().iter().map(|t| t.id.as_str()).collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert_eq!(workflow.descendants(0), vec![1, 2]);
        assert_eq!(workflow.sinks().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn refuses_cycles_missing_dependencies_and_duplicates() {
        let cycle = build(vec![task("a", &["b"]), task("b", &["a"]), task("c", &[])]);
        assert!(
            matches!(cycle, Err(RegistrationError::Cycle { ref cycle, .. }) if cycle == "a -> b")
        );
        let missing = build(vec![task("a", &["ghost"])]);
        assert!(
            matches!(missing, Err(RegistrationError::MissingDependency { ref dependency, .. }) if dependency == "ghost")
        );
        let twice = build(vec![task("a", &[]), task("a", &[])]);
        assert!(matches!(
            twice,
            Err(RegistrationError::DuplicateTask { .. })
        ));
        assert!(matches!(
            build(vec![]),
            Err(RegistrationError::Empty { .. })
        ));
    }
}
