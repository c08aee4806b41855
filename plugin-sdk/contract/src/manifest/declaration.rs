//! What a package declares: tasks, workflows, cron schedules, triggers and
//! computation graphs.
//!
//! The same types are built by the authoring SDK (`#[task]`, `plugin!`),
//! reported by a plugin artifact to the host, and stored in `manifest.json`.
//! Every struct refuses unknown fields and every policy value is an enum, so
//! a typo is an error at compile or pack time, never a silent default at run
//! time.

use serde::{Deserialize, Serialize};

use super::Identifier;

/// Everything a package offers to the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    #[serde(default)]
    pub tasks: Vec<TaskDeclaration>,
    #[serde(default)]
    pub workflows: Vec<WorkflowDeclaration>,
    #[serde(default)]
    pub cron_schedules: Vec<CronScheduleDeclaration>,
    #[serde(default)]
    pub triggers: Vec<TriggerDeclaration>,
    #[serde(default)]
    pub computation_graphs: Vec<ComputationGraphDeclaration>,
    /// Graphs with no trigger, run by the task that invokes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invoked_graphs: Vec<InvokedGraphDeclaration>,
}

/// A task: a function of the JSON context, with its place in the DAG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDeclaration {
    pub id: Identifier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Tasks whose outputs this task receives, merged in declaration order.
    #[serde(default)]
    pub dependencies: Vec<Identifier>,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Hard limit on one attempt, in milliseconds; none means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// An invoked graph run right after the task's body, within the same
    /// attempt: its inputs are read from the task's context and output,
    /// and each node's output is added to the task's output under the
    /// node's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invokes: Option<Identifier>,
}

/// How a failed attempt is retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 means never retry.
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// The first delay, in milliseconds.
    pub delay_ms: u64,
    /// The ceiling for growing delays, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_ms: Option<u64>,
    /// Randomise each delay (full jitter) so that retries do not stampede.
    #[serde(default)]
    pub jitter: bool,
    #[serde(default)]
    pub condition: RetryCondition,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 1,
            backoff: Backoff::Fixed,
            delay_ms: 1_000,
            max_delay_ms: None,
            jitter: false,
            condition: RetryCondition::Retryable,
        }
    }
}

/// How an attempt failed, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptFailure {
    /// An error of kind `retryable`.
    Retryable,
    /// The attempt passed its timeout.
    TimedOut,
    /// Fatal, cancelled, or an output that breaks the contract.
    Final,
}

impl RetryPolicy {
    /// Whether attempt `attempt` (from 1), failed as `failure`, runs
    /// again: the host's decision, and the SDK test harness's.
    pub fn retries(&self, attempt: u32, failure: AttemptFailure) -> bool {
        let eligible = match failure {
            AttemptFailure::Retryable => self.condition == RetryCondition::Retryable,
            AttemptFailure::TimedOut => self.condition != RetryCondition::Never,
            AttemptFailure::Final => false,
        };
        eligible && attempt < self.max_attempts
    }
}

/// How the delay grows between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Fixed,
    Linear,
    Exponential,
}

impl std::fmt::Display for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backoff::Fixed => "fixed",
            Backoff::Linear => "linear",
            Backoff::Exponential => "exponential",
        })
    }
}

/// Which failures are retried. Errors of kind `fatal` never are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryCondition {
    /// Errors of kind `retryable`, and timeouts.
    #[default]
    Retryable,
    /// Timeouts only.
    Timeout,
    /// Nothing.
    Never,
}

/// A workflow: a named set of tasks that run as one DAG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDeclaration {
    pub name: Identifier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub tasks: Vec<Identifier>,
}

/// A workflow run on a cron schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronScheduleDeclaration {
    pub name: Identifier,
    pub workflow: Identifier,
    /// A cron expression (five or six fields).
    pub expression: String,
    /// An IANA time zone name.
    #[serde(default = "utc")]
    pub timezone: String,
    #[serde(default)]
    pub catch_up: CatchUp,
}

fn utc() -> String {
    "UTC".to_owned()
}

/// What to do with firings missed while no host was running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CatchUp {
    /// Forget missed firings; run at the next one.
    #[default]
    Skip,
    /// Run missed firings, at most `max_runs` of them.
    RunMissed { max_runs: u32 },
}

/// A trigger the host polls; when it fires, its workflow runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDeclaration {
    pub name: Identifier,
    pub workflow: Identifier,
    pub poll_interval_ms: u64,
    /// Whether a new firing may start while the previous one still runs.
    #[serde(default)]
    pub allow_concurrent: bool,
}

/// A computation graph: accumulators feed a reactor that runs the nodes.
///
/// Every node is a task of the package, called with one key per declared
/// input. A firing runs the nodes in dependency order; a node whose input
/// was routed away (an upstream output field that is missing or null) is
/// skipped, and so is everything behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputationGraphDeclaration {
    pub name: Identifier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub accumulators: Vec<AccumulatorDeclaration>,
    pub reactor: ReactorDeclaration,
    pub nodes: Vec<GraphNodeDeclaration>,
    /// Workflows started once per successful firing, with the firing's
    /// inputs and outputs as their context.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<SubscriptionDeclaration>,
}

/// A named source of a graph. Which parameters apply depends on the kind;
/// a parameter given to a kind it does not belong to is a declaration
/// error, never ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccumulatorDeclaration {
    pub name: Identifier,
    pub kind: AccumulatorKind,
    /// Polling: how often the task named like the accumulator is called
    /// (at least 10 ms). Required for polling, refused elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
    /// Batch: flush this long after the first buffered event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_interval_ms: Option<u64>,
    /// Batch: flush when this many events are buffered. A batch needs this,
    /// `flush_interval_ms`, or both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_buffer_size: Option<u32>,
    /// State: how many values the window keeps (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    /// State: the node whose output is appended to the window after each
    /// firing. Required for state, refused elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<Identifier>,
}

impl AccumulatorDeclaration {
    /// An accumulator of `kind` with no parameters.
    pub fn new(name: Identifier, kind: AccumulatorKind) -> Self {
        AccumulatorDeclaration {
            name,
            kind,
            poll_interval_ms: None,
            flush_interval_ms: None,
            max_buffer_size: None,
            capacity: None,
            feed: None,
        }
    }

    /// Whether events are pushed to it (socket, REST inject, embedded API).
    pub fn takes_events(&self) -> bool {
        matches!(
            self.kind,
            AccumulatorKind::Passthrough | AccumulatorKind::Stream | AccumulatorKind::Batch
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccumulatorKind {
    /// Each pushed event is the source's new value.
    Passthrough,
    /// A pushed stream of events (a producer on the accumulator socket);
    /// each event is the source's new value.
    Stream,
    /// The host calls the task named like the accumulator every
    /// `poll_interval_ms`; a non-null answer is the new value.
    Polling,
    /// Pushed events are buffered and delivered as one JSON array.
    Batch,
    /// A window of a node's recent outputs, fed back to the graph.
    State,
}

impl AccumulatorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccumulatorKind::Passthrough => "passthrough",
            AccumulatorKind::Stream => "stream",
            AccumulatorKind::Polling => "polling",
            AccumulatorKind::Batch => "batch",
            AccumulatorKind::State => "state",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReactorDeclaration {
    pub reaction_mode: ReactionMode,
    pub input_strategy: InputStrategy,
    /// The accumulators the criterion looks at; empty means every
    /// accumulator that is not a state window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Identifier>,
}

/// When the reactor fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReactionMode {
    /// When any criterion source has a new value.
    WhenAny,
    /// When every criterion source has a new value.
    WhenAll,
}

impl ReactionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReactionMode::WhenAny => "when_any",
            ReactionMode::WhenAll => "when_all",
        }
    }
}

/// Which inputs the reactor sees when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputStrategy {
    /// Bursts coalesce: one firing with the newest value of each source.
    Latest,
    /// One firing per event, in arrival order.
    Sequential,
}

impl InputStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            InputStrategy::Latest => "latest",
            InputStrategy::Sequential => "sequential",
        }
    }
}

/// A node of a computation graph: a task of the package. Its inputs are
/// accumulators, other nodes, or `node.field`: that field of the node's
/// output (routing: a missing or null field skips this node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphNodeDeclaration {
    pub id: Identifier,
    #[serde(default)]
    pub inputs: Vec<Identifier>,
}

/// A graph with no trigger: no accumulators, no reactor. A task that
/// `invokes` it runs it within its own attempt; `inputs` are the context
/// keys its nodes may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokedGraphDeclaration {
    pub name: Identifier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub inputs: Vec<Identifier>,
    pub nodes: Vec<GraphNodeDeclaration>,
}

/// A workflow started once per successful firing of its graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionDeclaration {
    pub workflow: Identifier,
}
