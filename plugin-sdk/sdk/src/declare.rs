//! Builders for what a plugin declares besides its tasks. Policy values are
//! the contract's enums, so a typo does not compile; names are checked when
//! the plugin is packed.

use cloacina_contract::Identifier;
use cloacina_contract::manifest::{
    AccumulatorDeclaration, AccumulatorKind, CatchUp, ComputationGraphDeclaration,
    CronScheduleDeclaration, GraphNodeDeclaration, InputStrategy, ReactionMode, ReactorDeclaration,
    TriggerDeclaration, WorkflowDeclaration,
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

/// A computation graph:
/// `computation_graph("prices", ReactionMode::WhenAny, InputStrategy::Latest)
///     .accumulator("ticks", AccumulatorKind::Stream).node("mean", ["ticks"])`.
pub fn computation_graph(
    name: &str,
    reaction_mode: ReactionMode,
    input_strategy: InputStrategy,
) -> ComputationGraphBuilder {
    ComputationGraphBuilder {
        name: name.to_owned(),
        description: String::new(),
        accumulators: Vec::new(),
        reactor: ReactorDeclaration {
            reaction_mode,
            input_strategy,
        },
        nodes: Vec::new(),
    }
}

#[derive(Debug, Clone)]
pub struct ComputationGraphBuilder {
    name: String,
    description: String,
    accumulators: Vec<(String, AccumulatorKind)>,
    reactor: ReactorDeclaration,
    nodes: Vec<(String, Vec<String>)>,
}

impl ComputationGraphBuilder {
    pub fn description(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }

    pub fn accumulator(mut self, name: &str, kind: AccumulatorKind) -> Self {
        self.accumulators.push((name.to_owned(), kind));
        self
    }

    pub fn node<'a>(mut self, name: &str, inputs: impl IntoIterator<Item = &'a str>) -> Self {
        self.nodes.push((
            name.to_owned(),
            inputs.into_iter().map(str::to_owned).collect(),
        ));
        self
    }

    pub(crate) fn build(self) -> Result<ComputationGraphDeclaration, String> {
        Ok(ComputationGraphDeclaration {
            name: id(&self.name)?,
            description: self.description,
            accumulators: self
                .accumulators
                .into_iter()
                .map(|(name, kind)| {
                    Ok(AccumulatorDeclaration {
                        name: id(&name)?,
                        kind,
                    })
                })
                .collect::<Result<_, String>>()?,
            reactor: self.reactor,
            nodes: self
                .nodes
                .into_iter()
                .map(|(name, inputs)| {
                    Ok(GraphNodeDeclaration {
                        id: id(&name)?,
                        inputs: ids(inputs.iter().map(String::as_str))?,
                    })
                })
                .collect::<Result<_, String>>()?,
        })
    }
}
