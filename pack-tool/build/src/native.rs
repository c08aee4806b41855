//! The native artifact: the crate's cdylib for this machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cargo::{self, Progress};
use crate::{BuildError, CrateInfo};

/// Builds the crate's cdylib in release mode (into `target_dir`, or cargo's
/// choice) and returns its path.
pub fn build(
    info: &CrateInfo,
    target_dir: Option<&Path>,
    progress: Progress<'_>,
) -> Result<PathBuf, BuildError> {
    let mut command = cargo::cargo();
    command.args(["build", "--release", "--lib"]);
    cargo::build(command, info, target_dir, progress)?
        .into_iter()
        .find(|file| is_shared_library(file))
        .ok_or_else(|| BuildError::NoArtifact {
            name: info.name.clone(),
            what: "shared library",
        })
}

/// This machine's target triple, as rustc reports it.
pub fn host_triple() -> Result<String, BuildError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .arg("-vV")
        .output()
        .map_err(|source| BuildError::Spawn {
            command: "rustc -vV".into(),
            source,
        })?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| BuildError::Output("`rustc -vV` did not report a host triple".into()))
}

fn is_shared_library(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|ext| ext.to_str()),
        Some("so" | "dylib" | "dll")
    )
}
