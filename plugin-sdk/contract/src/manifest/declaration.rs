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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputationGraphDeclaration {
    pub name: Identifier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub accumulators: Vec<AccumulatorDeclaration>,
    pub reactor: ReactorDeclaration,
    pub nodes: Vec<GraphNodeDeclaration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccumulatorDeclaration {
    pub name: Identifier,
    pub kind: AccumulatorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccumulatorKind {
    Passthrough,
    Stream,
    Polling,
    Batch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReactorDeclaration {
    pub reaction_mode: ReactionMode,
    pub input_strategy: InputStrategy,
}

/// When the reactor fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReactionMode {
    WhenAny,
    WhenAll,
}

/// Which inputs the reactor sees when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputStrategy {
    Latest,
    Sequential,
}

/// A node of a computation graph; its inputs are accumulators or other nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphNodeDeclaration {
    pub id: Identifier,
    #[serde(default)]
    pub inputs: Vec<Identifier>,
}
