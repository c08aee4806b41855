//! The cross-check between a manifest's declaration and the artifact's.
//!
//! The manifest is what was signed; the artifact is what will run. They
//! must agree exactly, or a package could declare one DAG and run another.

use cloacina_contract::Declaration;

/// The artifact declares something other than its manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclarationMismatch {
    #[error("the manifest declares task `{0}`, which the artifact lacks")]
    MissingTask(String),
    #[error("the artifact has task `{0}`, which the manifest does not declare")]
    UndeclaredTask(String),
    #[error("task `{0}` is declared differently in the manifest and the artifact")]
    TaskDiffers(String),
    #[error("the manifest and the artifact declare different {0}")]
    Differs(&'static str),
}

/// Checks that `artifact` declares exactly what `manifest` does.
pub fn check_declaration(
    manifest: &Declaration,
    artifact: &Declaration,
) -> Result<(), DeclarationMismatch> {
    for task in &manifest.tasks {
        match artifact.tasks.iter().find(|other| other.id == task.id) {
            None => return Err(DeclarationMismatch::MissingTask(task.id.to_string())),
            Some(other) if other != task => {
                return Err(DeclarationMismatch::TaskDiffers(task.id.to_string()));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = artifact
        .tasks
        .iter()
        .find(|task| !manifest.tasks.iter().any(|other| other.id == task.id))
    {
        return Err(DeclarationMismatch::UndeclaredTask(extra.id.to_string()));
    }
    if manifest.workflows != artifact.workflows {
        return Err(DeclarationMismatch::Differs("workflows"));
    }
    if manifest.cron_schedules != artifact.cron_schedules {
        return Err(DeclarationMismatch::Differs("cron schedules"));
    }
    if manifest.triggers != artifact.triggers {
        return Err(DeclarationMismatch::Differs("triggers"));
    }
    if manifest.computation_graphs != artifact.computation_graphs {
        return Err(DeclarationMismatch::Differs("computation graphs"));
    }
    Ok(())
}
