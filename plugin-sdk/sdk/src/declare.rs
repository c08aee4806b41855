//! Builders for what a plugin declares besides its tasks. Policy values are
//! the contract's enums, so a typo does not compile; names are checked when
//! the plugin is packed.

use cloacina_contract::Identifier;
use cloacina_contract::manifest::{
    AccumulatorDeclaration, AccumulatorKind, CatchUp, ComputationGraphDeclaration,
    CronScheduleDeclaration, GraphNodeDeclaration, InputStrategy, InvokedGraphDeclaration,
    ReactionMode, ReactorDeclaration, SubscriptionDeclaration, TriggerDeclaration,
    WorkflowDeclaration,
};

fn id(text: &str) -> Result<Identifier, String> {
    Identifier::new(text).map_err(|error| error.to_string())
}

fn ids<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Vec<Identifier>, String> {
    texts.into_iter().map(id).collect()
}

/// A workflow: `workflow("etl").description("...").tasks(["extract", "load"])`.
pub fn workflow(name: &str) -> WorkflowBuilder {
    WorkflowBuilder {
        name: name.to_owned(),
        description: String::new(),
        tasks: Vec::new(),
    }
}

#[derive(Debug, Clone)]
pub struct WorkflowBuilder {
    name: String,
    description: String,
    tasks: Vec<String>,
}

impl WorkflowBuilder {
    pub fn description(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }

    pub fn tasks<'a>(mut self, tasks: impl IntoIterator<Item = &'a str>) -> Self {
        self.tasks = tasks.into_iter().map(str::to_owned).collect();
        self
    }

    pub(crate) fn build(self) -> Result<WorkflowDeclaration, String> {
        Ok(WorkflowDeclaration {
            name: id(&self.name)?,
            description: self.description,
            tasks: ids(self.tasks.iter().map(String::as_str))?,
        })
    }
}

/// A cron schedule: `cron("nightly", "etl", "0 3 * * *").timezone("Europe/Paris")`.
pub fn cron(name: &str, workflow: &str, expression: &str) -> CronBuilder {
    CronBuilder {
        name: name.to_owned(),
        workflow: workflow.to_owned(),
        expression: expression.to_owned(),
        timezone: "UTC".to_owned(),
        catch_up: CatchUp::Skip,
    }
}

#[derive(Debug, Clone)]
pub struct CronBuilder {
    name: String,
    workflow: String,
    expression: String,
    timezone: String,
    catch_up: CatchUp,
}

impl CronBuilder {
    pub fn timezone(mut self, timezone: &str) -> Self {
        self.timezone = timezone.to_owned();
        self
    }

    pub fn catch_up(mut self, catch_up: CatchUp) -> Self {
        self.catch_up = catch_up;
        self
    }

    pub(crate) fn build(self) -> Result<CronScheduleDeclaration, String> {
        Ok(CronScheduleDeclaration {
            name: id(&self.name)?,
            workflow: id(&self.workflow)?,
            expression: self.expression,
            timezone: self.timezone,
            catch_up: self.catch_up,
        })
    }
}

/// A poll trigger: `trigger("inbox", "etl", 5_000)`.
pub fn trigger(name: &str, workflow: &str, poll_interval_ms: u64) -> TriggerBuilder {
    TriggerBuilder {
        name: name.to_owned(),
        workflow: workflow.to_owned(),
        poll_interval_ms,
        allow_concurrent: false,
    }
}

#[derive(Debug, Clone)]
pub struct TriggerBuilder {
    name: String,
    workflow: String,
    poll_interval_ms: u64,
    allow_concurrent: bool,
}

impl TriggerBuilder {
    pub fn allow_concurrent(mut self, allow: bool) -> Self {
        self.allow_concurrent = allow;
        self
    }

    pub(crate) fn build(self) -> Result<TriggerDeclaration, String> {
        Ok(TriggerDeclaration {
            name: id(&self.name)?,
            workflow: id(&self.workflow)?,
            poll_interval_ms: self.poll_interval_ms,
            allow_concurrent: self.allow_concurrent,
        })
    }
}

/// Nodes as declared: `(task, inputs)` pairs, names checked.
fn nodes(nodes: Vec<(String, Vec<String>)>) -> Result<Vec<GraphNodeDeclaration>, String> {
    nodes
        .into_iter()
        .map(|(name, inputs)| {
            Ok(GraphNodeDeclaration {
                id: id(&name)?,
                inputs: ids(inputs.iter().map(String::as_str))?,
            })
        })
        .collect()
}

/// A computation graph. Its nodes are `#[task]` functions of the plugin;
/// each is called with one key per input it names.
///
/// ```
/// use cloacina_plugin::{BatchFlush, InputStrategy, ReactionMode, computation_graph};
/// let graph = computation_graph("prices", ReactionMode::WhenAll, InputStrategy::Latest)
///     .passthrough("ticks")
///     .batch("fills", BatchFlush::EveryOrAtSize { ms: 1_000, size: 500 })
///     .state("history", 10, "decide")
///     .node("decide", ["ticks", "fills", "history"])
///     .node("trade", ["decide.trade"]) // runs only when `decide` answers a `trade` field
///     .subscribe("book_trade");
/// # let _ = graph;
/// ```
pub fn computation_graph(
    name: &str,
    reaction_mode: ReactionMode,
    input_strategy: InputStrategy,
) -> ComputationGraphBuilder {
    ComputationGraphBuilder {
        name: name.to_owned(),
        description: String::new(),
        accumulators: Vec::new(),
        reaction_mode,
        input_strategy,
        sources: Vec::new(),
        nodes: Vec::new(),
        subscriptions: Vec::new(),
    }
}

/// When a batch accumulator delivers its buffer. Each variant carries
/// exactly the parameters it needs, so a batch that never flushes cannot be
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFlush {
    /// This many milliseconds after the first buffered event.
    Every(u64),
    /// As soon as this many events are buffered.
    AtSize(u32),
    /// Whichever comes first.
    EveryOrAtSize { ms: u64, size: u32 },
}

#[derive(Debug, Clone)]
enum Accumulator {
    Pushed(String, AccumulatorKind),
    Polling(String, u64),
    Batch(String, BatchFlush),
    State {
        name: String,
        capacity: u32,
        feed: String,
    },
}

#[derive(Debug, Clone)]
pub struct ComputationGraphBuilder {
    name: String,
    description: String,
    accumulators: Vec<Accumulator>,
    reaction_mode: ReactionMode,
    input_strategy: InputStrategy,
    sources: Vec<String>,
    nodes: Vec<(String, Vec<String>)>,
    subscriptions: Vec<String>,
}

impl ComputationGraphBuilder {
    pub fn description(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }

    /// An accumulator whose every pushed event is its new value.
    pub fn passthrough(mut self, name: &str) -> Self {
        self.accumulators.push(Accumulator::Pushed(
            name.to_owned(),
            AccumulatorKind::Passthrough,
        ));
        self
    }

    /// A pushed stream (a producer on the accumulator socket); each event is
    /// the new value.
    pub fn stream(mut self, name: &str) -> Self {
        self.accumulators.push(Accumulator::Pushed(
            name.to_owned(),
            AccumulatorKind::Stream,
        ));
        self
    }

    /// An accumulator the host fills by calling the task named `name` every
    /// `interval_ms` (at least 10); the task answers `null` for "nothing
    /// new" or the new value.
    pub fn polling(mut self, name: &str, interval_ms: u64) -> Self {
        self.accumulators
            .push(Accumulator::Polling(name.to_owned(), interval_ms));
        self
    }

    /// Buffers pushed events and delivers them as one JSON array.
    pub fn batch(mut self, name: &str, flush: BatchFlush) -> Self {
        self.accumulators
            .push(Accumulator::Batch(name.to_owned(), flush));
        self
    }

    /// A window of the last `capacity` outputs of node `feed`, read by the
    /// graph's nodes as a JSON array (oldest first). It never fires the
    /// graph by itself.
    pub fn state(mut self, name: &str, capacity: u32, feed: &str) -> Self {
        self.accumulators.push(Accumulator::State {
            name: name.to_owned(),
            capacity,
            feed: feed.to_owned(),
        });
        self
    }

    /// The accumulators the criterion watches (default: all but state
    /// windows): `when_all` over `["ticks", "fx"]` fires once both have
    /// news, whatever the others do.
    pub fn sources<'a>(mut self, sources: impl IntoIterator<Item = &'a str>) -> Self {
        self.sources = sources.into_iter().map(str::to_owned).collect();
        self
    }

    /// A node: the task `name`, reading accumulators, other nodes, or
    /// `node.field` (that field of a node's output; when it is missing or
    /// null the node is skipped, which is how a graph routes).
    pub fn node<'a>(mut self, name: &str, inputs: impl IntoIterator<Item = &'a str>) -> Self {
        self.nodes.push((
            name.to_owned(),
            inputs.into_iter().map(str::to_owned).collect(),
        ));
        self
    }

    /// Starts `workflow` once per successful firing, with the firing's
    /// inputs and node outputs as its context.
    pub fn subscribe(mut self, workflow: &str) -> Self {
        self.subscriptions.push(workflow.to_owned());
        self
    }

    pub(crate) fn build(self) -> Result<ComputationGraphDeclaration, String> {
        let accumulators = self
            .accumulators
            .into_iter()
            .map(|accumulator| {
                Ok(match accumulator {
                    Accumulator::Pushed(name, kind) => {
                        AccumulatorDeclaration::new(id(&name)?, kind)
                    }
                    Accumulator::Polling(name, ms) => AccumulatorDeclaration {
                        poll_interval_ms: Some(ms),
                        ..AccumulatorDeclaration::new(id(&name)?, AccumulatorKind::Polling)
                    },
                    Accumulator::Batch(name, flush) => {
                        let (ms, size) = match flush {
                            BatchFlush::Every(ms) => (Some(ms), None),
                            BatchFlush::AtSize(size) => (None, Some(size)),
                            BatchFlush::EveryOrAtSize { ms, size } => (Some(ms), Some(size)),
                        };
                        AccumulatorDeclaration {
                            flush_interval_ms: ms,
                            max_buffer_size: size,
                            ..AccumulatorDeclaration::new(id(&name)?, AccumulatorKind::Batch)
                        }
                    }
                    Accumulator::State {
                        name,
                        capacity,
                        feed,
                    } => AccumulatorDeclaration {
                        capacity: Some(capacity),
                        feed: Some(id(&feed)?),
                        ..AccumulatorDeclaration::new(id(&name)?, AccumulatorKind::State)
                    },
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(ComputationGraphDeclaration {
            name: id(&self.name)?,
            description: self.description,
            accumulators,
            reactor: ReactorDeclaration {
                reaction_mode: self.reaction_mode,
                input_strategy: self.input_strategy,
                sources: ids(self.sources.iter().map(String::as_str))?,
            },
            nodes: nodes(self.nodes)?,
            subscriptions: self
                .subscriptions
                .iter()
                .map(|workflow| {
                    Ok(SubscriptionDeclaration {
                        workflow: id(workflow)?,
                    })
                })
                .collect::<Result<_, String>>()?,
        })
    }
}

/// A graph with no trigger, run by a task that `invokes` it, within the
/// task's attempt: `#[task(invokes = "pricing")]`. Its nodes read the
/// task's context (its input with its output merged in) by the names in
/// `inputs`, and each node's output joins the task's output under the
/// node's name.
///
/// ```
/// use cloacina_plugin::invoked_graph;
/// let graph = invoked_graph("pricing")
///     .inputs(["order"])
///     .node("subtotal", ["order"])
///     .node("with_tax", ["subtotal"]);
/// # let _ = graph;
/// ```
pub fn invoked_graph(name: &str) -> InvokedGraphBuilder {
    InvokedGraphBuilder {
        name: name.to_owned(),
        description: String::new(),
        inputs: Vec::new(),
        nodes: Vec::new(),
    }
}

#[derive(Debug, Clone)]
pub struct InvokedGraphBuilder {
    name: String,
    description: String,
    inputs: Vec<String>,
    nodes: Vec<(String, Vec<String>)>,
}

impl InvokedGraphBuilder {
    pub fn description(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }

    /// The context keys its nodes read.
    pub fn inputs<'a>(mut self, inputs: impl IntoIterator<Item = &'a str>) -> Self {
        self.inputs = inputs.into_iter().map(str::to_owned).collect();
        self
    }

    /// A node: the task `name`, reading inputs, other nodes, or
    /// `node.field` (routing, as in any graph).
    pub fn node<'a>(mut self, name: &str, inputs: impl IntoIterator<Item = &'a str>) -> Self {
        self.nodes.push((
            name.to_owned(),
            inputs.into_iter().map(str::to_owned).collect(),
        ));
        self
    }

    pub(crate) fn build(self) -> Result<InvokedGraphDeclaration, String> {
        Ok(InvokedGraphDeclaration {
            name: id(&self.name)?,
            description: self.description,
            inputs: ids(self.inputs.iter().map(String::as_str))?,
            nodes: nodes(self.nodes)?,
        })
    }
}
