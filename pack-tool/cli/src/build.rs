//! Building a plugin crate with cargo and finding what it produced.
//!
//! Cargo is asked, not guessed at: `cargo metadata` gives the crate's name,
//! version and target directory, and `--message-format json` names the exact
//! files the build wrote, wherever the target directory is. What a plugin
//! declares is read from the built library itself, through the host's
//! loader, so the manifest says exactly what the host will find.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, anyhow, bail};
use cloacina_contract::Declaration;
use cloacina_loader::Plugin as _;
use cloacina_loader::native::NativePlugin;
use indicatif::ProgressBar;
use serde::Deserialize;

/// What cargo says about the crate being packed.
#[derive(Debug)]
pub struct CrateInfo {
    pub name: String,
    pub version: semver::Version,
    pub description: String,
    pub manifest_path: PathBuf,
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
struct MetadataTarget {
    crate_types: Vec<String>,
}

fn cargo() -> Command {
    // Under `cargo run`/`cargo test`, CARGO names the cargo that is running.
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Reads the crate's metadata and checks that it builds a cdylib.
pub fn read_crate(crate_dir: &Path) -> anyhow::Result<CrateInfo> {
    let manifest_path = crate_dir.join("Cargo.toml");
    if !manifest_path.is_file() {
        bail!("{} has no Cargo.toml", crate_dir.display());
    }
    let manifest_path = manifest_path
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", manifest_path.display()))?;
    let output = cargo()
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
        .context("cannot run `cargo metadata`; is cargo installed?")?;
    if !output.status.success() {
        bail!(
            "`cargo metadata` failed for {}:\n{}",
            manifest_path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: Metadata =
        serde_json::from_slice(&output.stdout).context("cannot parse `cargo metadata` output")?;
    let package = metadata
        .packages
        .into_iter()
        .find(|package| package.manifest_path == manifest_path)
        .ok_or_else(|| {
            anyhow!(
                "cargo does not list {} as a package",
                manifest_path.display()
            )
        })?;
    let is_cdylib = package
        .targets
        .iter()
        .any(|target| target.crate_types.iter().any(|kind| kind == "cdylib"));
    if !is_cdylib {
        bail!(
            "crate `{}` builds no cdylib: add `[lib] crate-type = [\"cdylib\"]` to its Cargo.toml",
            package.name
        );
    }
    Ok(CrateInfo {
        name: package.name,
        version: package.version,
        description: package.description.unwrap_or_default(),
        manifest_path,
    })
}

/// Loads the freshly built library and asks it what it declares, exactly
/// as the host will when it loads the package.
pub fn read_declaration(library: &Path) -> anyhow::Result<Declaration> {
    let plugin = NativePlugin::load(library)?;
    Ok(plugin.declaration().clone())
}

/// This machine's target triple, as rustc reports it.
pub fn host_triple() -> anyhow::Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .arg("-vV")
        .output()
        .context("cannot run `rustc -vV`; is Rust installed?")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("`rustc -vV` did not report a host triple"))
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

/// Builds the crate's cdylib in release mode, showing cargo's progress on
/// `progress`, and returns the library's path.
pub fn build_native(info: &CrateInfo, progress: &ProgressBar) -> anyhow::Result<PathBuf> {
    let mut child = cargo()
        .args([
            "build",
            "--release",
            "--lib",
            "--message-format",
            "json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&info.manifest_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run `cargo build`")?;
    let stderr = child.stderr.take().context("cargo's stderr")?;
    let stdout = child.stdout.take().context("cargo's stdout")?;

    let progress_for_stderr = progress.clone();
    let stderr_reader = std::thread::spawn(move || {
        let mut tail = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let trimmed = line.trim();
            if !trimmed.is_empty() {
                progress_for_stderr.set_message(trimmed.to_owned());
            }
            tail.push(line);
        }
        tail
    });

    let mut library = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(message) = serde_json::from_str::<CargoMessage>(&line) else {
            continue;
        };
        let ours = message.manifest_path.as_deref() == Some(info.manifest_path.as_path());
        let cdylib = message
            .target
            .is_some_and(|target| target.crate_types.iter().any(|kind| kind == "cdylib"));
        if message.reason == "compiler-artifact" && ours && cdylib {
            library = message
                .filenames
                .into_iter()
                .find(|file| is_shared_library(file));
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    let log = stderr_reader.join().unwrap_or_default();
    if !status.success() {
        bail!("cargo build failed ({status}):\n{}", log.join("\n"));
    }
    library.ok_or_else(|| anyhow!("cargo built no shared library for `{}`", info.name))
}

fn is_shared_library(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|ext| ext.to_str()),
        Some("so" | "dylib" | "dll")
    )
}
