//! Building plugin crates with cargo, for the pack tool and the tests.
//!
//! Cargo is asked, not guessed at: `cargo metadata` gives the crate's name
//! and version, and `--message-format json` names the exact files a build
//! wrote, wherever the target directory is.
//!
//! - [`native`]: the crate's cdylib for this machine's target triple.
//! - [`wasm`]: the same source for `wasm32-unknown-unknown`, made into a
//!   component; finds a toolchain that can build it.

mod cargo;
pub mod native;
pub mod wasm;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;

pub use cargo::Progress;

/// What cargo says about the crate being packed.
#[derive(Debug, Clone)]
pub struct CrateInfo {
    pub name: String,
    pub version: semver::Version,
    pub description: String,
    pub manifest_path: PathBuf,
}

/// A crate that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0} has no Cargo.toml")]
    NoManifest(PathBuf),
    #[error("cannot run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed:\n{log}")]
    Failed { command: String, log: String },
    #[error("cannot understand cargo's output: {0}")]
    Output(String),
    #[error(
        "crate `{0}` builds no cdylib: add `[lib] crate-type = [\"cdylib\"]` to its Cargo.toml"
    )]
    NotACdylib(String),
    #[error("cargo built no {what} for `{name}`")]
    NoArtifact { name: String, what: &'static str },
    #[error("no WebAssembly toolchain: {0}")]
    NoWasmToolchain(String),
    #[error("the WebAssembly module cannot be made a component: {0}")]
    Component(String),
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<MetadataPackage>,
}

#[derive(Deserialize)]
struct MetadataPackage {
    name: String,
    version: semver::Version,
    description: Option<String>,
    manifest_path: PathBuf,
    targets: Vec<MetadataTarget>,
}

#[derive(Deserialize)]
pub(crate) struct MetadataTarget {
    pub(crate) crate_types: Vec<String>,
}

/// Reads the crate's metadata and checks that it builds a cdylib.
pub fn read_crate(crate_dir: &Path) -> Result<CrateInfo, BuildError> {
    let manifest_path = crate_dir.join("Cargo.toml");
    if !manifest_path.is_file() {
        return Err(BuildError::NoManifest(crate_dir.to_owned()));
    }
    let manifest_path = manifest_path
        .canonicalize()
        .map_err(|source| BuildError::Io {
            path: manifest_path.clone(),
            source,
        })?;
    let command = "cargo metadata";
    let output = cargo::cargo()
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest_path)
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| BuildError::Spawn {
            command: command.into(),
            source,
        })?;
    if !output.status.success() {
        return Err(BuildError::Failed {
            command: command.into(),
            log: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let metadata: Metadata = serde_json::from_slice(&output.stdout)
        .map_err(|error| BuildError::Output(error.to_string()))?;
    let package = metadata
        .packages
        .into_iter()
        .find(|package| package.manifest_path == manifest_path)
        .ok_or_else(|| {
            BuildError::Output(format!("cargo does not list {}", manifest_path.display()))
        })?;
    let is_cdylib = package
        .targets
        .iter()
        .any(|target| target.crate_types.iter().any(|kind| kind == "cdylib"));
    if !is_cdylib {
        return Err(BuildError::NotACdylib(package.name));
    }
    Ok(CrateInfo {
        name: package.name,
        version: package.version,
        description: package.description.unwrap_or_default(),
        manifest_path,
    })
}
