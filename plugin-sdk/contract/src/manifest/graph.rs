//! Computation graphs: how a node's input names resolve, which sources the
//! criterion watches, the order nodes run in, and the rules a graph
//! declaration must satisfy.

use std::collections::{BTreeMap, BTreeSet};

use super::Identifier;
use super::check::{DeclarationError, nodes_on_cycles};
use super::declaration::{
    AccumulatorDeclaration, AccumulatorKind, ComputationGraphDeclaration, Declaration,
    GraphNodeDeclaration, InvokedGraphDeclaration,
};

/// The smallest polling interval a graph may declare.
pub const MIN_POLL_INTERVAL_MS: u64 = 10;

/// What a node input names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSource<'a> {
    /// An accumulator's current value.
    Accumulator(&'a AccumulatorDeclaration),
    /// A node's whole output.
    Node(&'a Identifier),
    /// One field of a node's output (routing).
    Field {
        node: &'a Identifier,
        field: &'a str,
    },
    /// A key of the invoking task's context (invoked graphs).
    Context(&'a Identifier),
}

/// What a graph's firing needs to know of it: its nodes, and what each
/// input name means. Reactive graphs read accumulators; invoked graphs read
/// their invoking task's context.
pub trait GraphTopology {
    fn graph_name(&self) -> &Identifier;

    fn nodes(&self) -> &[GraphNodeDeclaration];

    /// A source of values that is not a node (an accumulator or a context
    /// input), by name.
    fn source<'a>(&'a self, name: &str) -> Option<InputSource<'a>>;

    fn node(&self, id: &str) -> Option<&GraphNodeDeclaration> {
        self.nodes().iter().find(|n| n.id.as_str() == id)
    }

    /// What `input` names: a member of the graph by its exact name first,
    /// then `node.field`, split at the first `.`.
    fn resolve<'a>(&'a self, input: &'a Identifier) -> Option<InputSource<'a>> {
        if let Some(source) = self.source(input.as_str()) {
            return Some(source);
        }
        if let Some(node) = self.node(input.as_str()) {
            return Some(InputSource::Node(&node.id));
        }
        let (node, field) = input.as_str().split_once('.')?;
        let node = self.node(node)?;
        (!field.is_empty()).then_some(InputSource::Field {
            node: &node.id,
            field,
        })
    }

    /// The nodes a node reads from (whole outputs or fields).
    fn upstream<'a>(&'a self, node: &'a GraphNodeDeclaration) -> Vec<&'a Identifier> {
        node.inputs
            .iter()
            .filter_map(|input| match self.resolve(input)? {
                InputSource::Node(id) | InputSource::Field { node: id, .. } => Some(id),
                InputSource::Accumulator(_) | InputSource::Context(_) => None,
            })
            .collect()
    }

    /// Node indexes in an order where every node comes after what it reads
    /// (stable in declaration order). The declaration must be valid.
    fn node_order(&self) -> Vec<usize> {
        let nodes = self.nodes();
        let mut order = Vec::with_capacity(nodes.len());
        let mut placed = vec![false; nodes.len()];
        while order.len() < nodes.len() {
            let next = (0..nodes.len()).find(|&i| {
                !placed[i]
                    && self.upstream(&nodes[i]).iter().all(|up| {
                        nodes
                            .iter()
                            .position(|n| &n.id == *up)
                            .is_some_and(|j| placed[j])
                    })
            });
            let Some(next) = next else {
                // A cycle: validation refuses it; keep the rest in order.
                order.extend((0..nodes.len()).filter(|&i| !placed[i]));
                break;
            };
            placed[next] = true;
            order.push(next);
        }
        order
    }
}

impl GraphTopology for ComputationGraphDeclaration {
    fn graph_name(&self) -> &Identifier {
        &self.name
    }

    fn nodes(&self) -> &[GraphNodeDeclaration] {
        &self.nodes
    }

    fn source<'a>(&'a self, name: &str) -> Option<InputSource<'a>> {
        self.accumulator(name).map(InputSource::Accumulator)
    }
}

impl GraphTopology for InvokedGraphDeclaration {
    fn graph_name(&self) -> &Identifier {
        &self.name
    }

    fn nodes(&self) -> &[GraphNodeDeclaration] {
        &self.nodes
    }

    fn source<'a>(&'a self, name: &str) -> Option<InputSource<'a>> {
        self.inputs
            .iter()
            .find(|input| input.as_str() == name)
            .map(InputSource::Context)
    }
}

impl ComputationGraphDeclaration {
    pub fn accumulator(&self, name: &str) -> Option<&AccumulatorDeclaration> {
        self.accumulators.iter().find(|a| a.name.as_str() == name)
    }

    /// The accumulators the reactor's criterion watches.
    pub fn criterion_sources(&self) -> Vec<&Identifier> {
        if self.reactor.sources.is_empty() {
            self.accumulators
                .iter()
                .filter(|a| a.kind != AccumulatorKind::State)
                .map(|a| &a.name)
                .collect()
        } else {
            self.reactor.sources.iter().collect()
        }
    }
}

/// Why an accumulator's parameters are wrong, in words.
fn parameter_problem(accumulator: &AccumulatorDeclaration) -> Option<String> {
    let given = [
        ("poll_interval_ms", accumulator.poll_interval_ms.is_some()),
        ("flush_interval_ms", accumulator.flush_interval_ms.is_some()),
        ("max_buffer_size", accumulator.max_buffer_size.is_some()),
        ("capacity", accumulator.capacity.is_some()),
        ("feed", accumulator.feed.is_some()),
    ];
    let allowed: &[&str] = match accumulator.kind {
        AccumulatorKind::Passthrough | AccumulatorKind::Stream => &[],
        AccumulatorKind::Polling => &["poll_interval_ms"],
        AccumulatorKind::Batch => &["flush_interval_ms", "max_buffer_size"],
        AccumulatorKind::State => &["capacity", "feed"],
    };
    if let Some((name, _)) = given
        .iter()
        .find(|(name, set)| *set && !allowed.contains(name))
    {
        return Some(format!(
            "`{name}` does not apply to a {} accumulator",
            accumulator.kind.as_str()
        ));
    }
    match accumulator.kind {
        AccumulatorKind::Polling => match accumulator.poll_interval_ms {
            None => Some("a polling accumulator needs `poll_interval_ms`".into()),
            Some(ms) if ms < MIN_POLL_INTERVAL_MS => Some(format!(
                "`poll_interval_ms` must be at least {MIN_POLL_INTERVAL_MS}"
            )),
            Some(_) => None,
        },
        AccumulatorKind::Batch => {
            if accumulator.flush_interval_ms.is_none() && accumulator.max_buffer_size.is_none() {
                Some(
                    "a batch accumulator needs `flush_interval_ms`, `max_buffer_size` or both"
                        .into(),
                )
            } else if accumulator.flush_interval_ms == Some(0) {
                Some("`flush_interval_ms` must be at least 1".into())
            } else if accumulator.max_buffer_size == Some(0) {
                Some("`max_buffer_size` must be at least 1".into())
            } else {
                None
            }
        }
        AccumulatorKind::State => {
            if accumulator.capacity.is_none_or(|c| c == 0) {
                Some("a state accumulator needs a `capacity` of at least 1".into())
            } else if accumulator.feed.is_none() {
                Some("a state accumulator needs `feed`: the node whose outputs it keeps".into())
            } else {
                None
            }
        }
        AccumulatorKind::Passthrough | AccumulatorKind::Stream => None,
    }
}

pub(super) fn check_graph(
    graph: &ComputationGraphDeclaration,
    package: &Declaration,
) -> Result<(), DeclarationError> {
    let invalid = |reason: String| DeclarationError::InvalidGraph {
        graph: graph.name.clone(),
        reason,
    };
    if graph.accumulators.is_empty() {
        return Err(DeclarationError::NoAccumulators(graph.name.clone()));
    }
    if graph.nodes.is_empty() {
        return Err(invalid("it has no nodes".into()));
    }
    let mut names = BTreeSet::new();
    let members = graph
        .accumulators
        .iter()
        .map(|accumulator| &accumulator.name)
        .chain(graph.nodes.iter().map(|node| &node.id));
    for name in members {
        if !names.insert(name) {
            return Err(DeclarationError::DuplicateGraphMember {
                graph: graph.name.clone(),
                name: name.clone(),
            });
        }
    }
    let is_task = |name: &Identifier| package.tasks.iter().any(|task| &task.id == name);
    for accumulator in &graph.accumulators {
        if let Some(problem) = parameter_problem(accumulator) {
            return Err(invalid(format!(
                "accumulator `{}`: {problem}",
                accumulator.name
            )));
        }
        if accumulator.kind == AccumulatorKind::Polling && !is_task(&accumulator.name) {
            return Err(invalid(format!(
                "polling accumulator `{0}` needs a task named `{0}` to call",
                accumulator.name
            )));
        }
        if let Some(feed) = &accumulator.feed
            && graph.node(feed.as_str()).is_none()
        {
            return Err(invalid(format!(
                "state accumulator `{}` is fed by `{feed}`, which is not a node of the graph",
                accumulator.name
            )));
        }
    }
    check_nodes(graph, package)?;
    let mut sources = BTreeSet::new();
    for source in &graph.reactor.sources {
        match graph.accumulator(source.as_str()) {
            None => {
                return Err(invalid(format!(
                    "the reactor watches `{source}`, which is not an accumulator of the graph"
                )));
            }
            Some(a) if a.kind == AccumulatorKind::State => {
                return Err(invalid(format!(
                    "the reactor watches state accumulator `{source}`, which never fires a graph"
                )));
            }
            Some(_) => {}
        }
        if !sources.insert(source) {
            return Err(invalid(format!("the reactor watches `{source}` twice")));
        }
    }
    if graph.criterion_sources().is_empty() {
        return Err(invalid(
            "the reactor has nothing to watch: every accumulator is a state window".into(),
        ));
    }
    let mut subscribed = BTreeSet::new();
    for subscription in &graph.subscriptions {
        if !package
            .workflows
            .iter()
            .any(|w| w.name == subscription.workflow)
        {
            return Err(invalid(format!(
                "subscribed workflow `{}` is not declared by the package",
                subscription.workflow
            )));
        }
        if !subscribed.insert(&subscription.workflow) {
            return Err(invalid(format!(
                "workflow `{}` is subscribed twice",
                subscription.workflow
            )));
        }
    }
    check_cycles(graph)
}

/// Nodes are tasks of the package, their inputs resolve, none is read twice.
fn check_nodes(graph: &impl GraphTopology, package: &Declaration) -> Result<(), DeclarationError> {
    let invalid = |reason: String| DeclarationError::InvalidGraph {
        graph: graph.graph_name().clone(),
        reason,
    };
    for node in graph.nodes() {
        let Some(task) = package.tasks.iter().find(|task| task.id == node.id) else {
            return Err(invalid(format!(
                "node `{}` is not a task of the package: list its #[task] function in `plugin! {{ tasks: [...] }}`",
                node.id
            )));
        };
        if let Some(invoked) = &task.invokes {
            return Err(invalid(format!(
                "node `{}` invokes graph `{invoked}`: graph nodes do not invoke graphs",
                node.id
            )));
        }
        if let Some(input) = node
            .inputs
            .iter()
            .find(|input| graph.resolve(input).is_none())
        {
            return Err(DeclarationError::UnknownGraphInput {
                graph: graph.graph_name().clone(),
                node: node.id.clone(),
                input: input.clone(),
            });
        }
        let mut seen = BTreeSet::new();
        if let Some(input) = node.inputs.iter().find(|input| !seen.insert(*input)) {
            return Err(invalid(format!("node `{}` reads `{input}` twice", node.id)));
        }
    }
    Ok(())
}

fn check_cycles(graph: &impl GraphTopology) -> Result<(), DeclarationError> {
    let edges: BTreeMap<&Identifier, BTreeSet<&Identifier>> = graph
        .nodes()
        .iter()
        .map(|node| (&node.id, graph.upstream(node).into_iter().collect()))
        .collect();
    match nodes_on_cycles(edges) {
        Some(nodes) => Err(DeclarationError::GraphCycle {
            graph: graph.graph_name().clone(),
            nodes,
        }),
        None => Ok(()),
    }
}

/// An invoked graph: nodes and inputs as for any graph; its inputs are
/// distinct context keys, not node names.
pub(super) fn check_invoked_graph(
    graph: &InvokedGraphDeclaration,
    package: &Declaration,
) -> Result<(), DeclarationError> {
    let invalid = |reason: String| DeclarationError::InvalidGraph {
        graph: graph.name.clone(),
        reason,
    };
    if graph.nodes.is_empty() {
        return Err(invalid("it has no nodes".into()));
    }
    let mut names = BTreeSet::new();
    for name in graph.inputs.iter().chain(graph.nodes.iter().map(|n| &n.id)) {
        if !names.insert(name) {
            return Err(DeclarationError::DuplicateGraphMember {
                graph: graph.name.clone(),
                name: name.clone(),
            });
        }
    }
    check_nodes(graph, package)?;
    check_cycles(graph)
}

/// A task's `invokes` names an invoked graph the task is not part of.
pub(super) fn check_invocations(package: &Declaration) -> Result<(), DeclarationError> {
    for task in &package.tasks {
        let Some(name) = &task.invokes else { continue };
        let Some(graph) = package.invoked_graphs.iter().find(|g| &g.name == name) else {
            return Err(DeclarationError::InvalidGraph {
                graph: name.clone(),
                reason: format!(
                    "task `{}` invokes it, but the package declares no invoked graph of that name",
                    task.id
                ),
            });
        };
        if graph.node(task.id.as_str()).is_some() {
            return Err(DeclarationError::InvalidGraph {
                graph: name.clone(),
                reason: format!("task `{}` is a node of the graph it invokes", task.id),
            });
        }
    }
    Ok(())
}
