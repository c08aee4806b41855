//! Running `cargo build` and reading what it says it built.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::{BuildError, CrateInfo, MetadataTarget};

/// Receives cargo's progress lines ("Compiling foo v1.0"), for display.
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

/// The cargo that is running us (`CARGO`), or `cargo` from `PATH`.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

#[derive(Deserialize)]
struct CargoMessage {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    target: Option<MetadataTarget>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
}

/// Runs `command` (a `cargo build` with `--message-format json`), streaming
/// its stderr to `progress`, and returns the files of the crate's cdylib.
pub(crate) fn build(
    mut command: Command,
    info: &CrateInfo,
    target_dir: Option<&Path>,
    progress: Progress<'_>,
) -> Result<Vec<PathBuf>, BuildError> {
    if let Some(dir) = target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    let shown = format!("{command:?}");
    let mut child = command
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&info.manifest_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| BuildError::Spawn {
            command: shown.clone(),
            source,
        })?;
    let (Some(stderr), Some(stdout)) = (child.stderr.take(), child.stdout.take()) else {
        return Err(BuildError::Output(
            "cargo's output streams are missing".into(),
        ));
    };
    let tail = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut log = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let trimmed = line.trim();
                if !trimmed.is_empty() {
                    progress(trimmed);
                }
                log.push(line);
            }
            log
        });
        let mut files = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(message) = serde_json::from_str::<CargoMessage>(&line) else {
                continue;
            };
            let ours = message.manifest_path.as_deref() == Some(info.manifest_path.as_path());
            let cdylib = message
                .target
                .is_some_and(|target| target.crate_types.iter().any(|kind| kind == "cdylib"));
            if message.reason == "compiler-artifact" && ours && cdylib {
                files = message.filenames;
            }
        }
        (reader.join().unwrap_or_default(), files)
    });
    let status = child.wait().map_err(|source| BuildError::Spawn {
        command: shown.clone(),
        source,
    })?;
    let (log, files) = tail;
    if !status.success() {
        return Err(BuildError::Failed {
            command: shown,
            log: log.join("\n"),
        });
    }
    Ok(files)
}
