//! Who may declare a workflow name: one package of a tenant. The registry
//! (at admission) and the runtime (at registration) both refuse a second
//! package with this error.

/// `claimant` declares a workflow that `owner` (another package) holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "workflow `{workflow}` belongs to package `{owner}`; package `{claimant}` cannot declare it too (rename the workflow, or remove `{owner}` first)"
)]
pub struct WorkflowOwned {
    pub workflow: String,
    /// `name version` of the package that holds it.
    pub owner: String,
    /// `name version` of the package refused.
    pub claimant: String,
}
