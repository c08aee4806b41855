//! `cloacinactl pack`: build, assemble, sign, write.

use crate::output::out;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use cloacina_build::CrateInfo;
use cloacina_build::wasm::WasmToolchain;
use cloacina_contract::{ArtifactKind, Declaration, HOST_ABI_VERSION, Identifier, PackageInfo};
use cloacina_loader::native::NativePlugin;
use cloacina_loader::wasm::{WasmRuntime, WasmSettings};
use cloacina_loader::{Plugin as _, check_declaration};
use cloacina_package::PackageBuilder;
use cloacina_signing::KeyFile;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::cli::{PackArgs, PackTarget};
use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output;

#[derive(Serialize)]
struct PackReport {
    name: String,
    version: String,
    path: PathBuf,
    size: u64,
    artifacts: Vec<ArtifactReport>,
    key_id: Option<String>,
}

#[derive(Serialize)]
struct ArtifactReport {
    path: String,
    kind: ArtifactKind,
    size: u64,
    sha256: String,
}

pub fn run(args: PackArgs, json: bool) -> Result<(), Failure> {
    // Read the key first: a bad key should not cost a build.
    let key = args
        .sign
        .as_deref()
        .map(|path| KeyFile::read(path).and_then(|file| file.into_key_pair(path)))
        .transpose()
        .classify(FailureKind::Key)?;
    let info = cloacina_build::read_crate(&args.crate_dir).classify(FailureKind::Build)?;
    let name = Identifier::new(info.name.clone())
        .context("the crate name cannot be a package name")
        .classify(FailureKind::Build)?;

    let mut artifacts = Vec::new();
    if matches!(args.target, PackTarget::Native | PackTarget::All) {
        artifacts.push(build_native(&info, json)?);
    }
    if matches!(args.target, PackTarget::Wasm | PackTarget::All) {
        artifacts.push(build_wasm(&info, json)?);
    }
    // Every artifact must declare the same thing; the first one's
    // declaration goes into the manifest.
    let declaration = artifacts[0].declaration.clone();
    for artifact in &artifacts[1..] {
        check_declaration(&declaration, &artifact.declaration)
            .with_context(|| format!("the {} artifact declares something else", artifact.kind))
            .classify(FailureKind::Build)?;
    }
    let mut builder = PackageBuilder::new(
        PackageInfo {
            name,
            version: info.version.clone(),
            description: info.description.clone(),
        },
        HOST_ABI_VERSION,
        declaration,
    );
    for artifact in artifacts {
        builder
            .add_artifact(artifact.kind, &artifact.file_name, artifact.bytes)
            .classify(FailureKind::Build)?;
    }
    let package = builder.finish(key.as_ref()).classify(FailureKind::Build)?;

    let output_path = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}-{}.cloacina", info.name, info.version)));
    write_atomically(&output_path, &package.bytes)
        .with_context(|| format!("cannot write {}", output_path.display()))?;

    let report = PackReport {
        name: info.name,
        version: info.version.to_string(),
        path: output_path,
        size: package.bytes.len() as u64,
        artifacts: package
            .manifest
            .artifacts()
            .iter()
            .map(|artifact| ArtifactReport {
                path: artifact.path.to_string(),
                kind: artifact.kind.clone(),
                size: artifact.size,
                sha256: artifact.sha256.to_hex(),
            })
            .collect(),
        key_id: package.signed_by.map(|id| id.to_string()),
    };
    if json {
        output::json(&report);
    } else {
        print_report(&report, key.as_ref().map(|key| key.name()));
    }
    Ok(())
}

fn print_report(report: &PackReport, key_name: Option<&str>) {
    out!(
        "packed {} {} -> {} ({})",
        report.name,
        report.version,
        report.path.display(),
        output::size(report.size)
    );
    for artifact in &report.artifacts {
        out!(
            "  {}  {}  sha256 {}",
            artifact.path,
            output::size(artifact.size),
            artifact.sha256
        );
    }
    match (&report.key_id, key_name) {
        (Some(id), Some(name)) => out!("  signed with key `{name}` ({id})"),
        _ => out!("  unsigned (use --sign KEY_FILE to sign)"),
    }
}

/// One built artifact and what it declares.
struct Built {
    kind: ArtifactKind,
    file_name: String,
    bytes: Vec<u8>,
    declaration: Declaration,
}

fn build_native(info: &CrateInfo, json: bool) -> Result<Built, Failure> {
    let progress = spinner(
        json,
        format!("building {} {} (native)", info.name, info.version),
    );
    let built =
        cloacina_build::native::build(info, None, &|line| progress.set_message(line.to_owned()));
    progress.finish_and_clear();
    let library = built.classify(FailureKind::Build)?;
    let target = cloacina_build::native::host_triple().classify(FailureKind::Build)?;
    // Ask the library itself, as the host will when it loads the package.
    let declaration = NativePlugin::load(&library)
        .map(|plugin| plugin.declaration().clone())
        .with_context(|| format!("cannot read what {} declares", info.name))
        .classify(FailureKind::Build)?;
    let bytes = std::fs::read(&library)
        .with_context(|| format!("cannot read built artifact {}", library.display()))
        .classify(FailureKind::Build)?;
    let file_name = library
        .file_name()
        .and_then(|name| name.to_str())
        .with_context(|| format!("artifact {} has no usable file name", library.display()))
        .classify(FailureKind::Build)?
        .to_owned();
    Ok(Built {
        kind: ArtifactKind::Native { target },
        file_name,
        bytes,
        declaration,
    })
}

fn build_wasm(info: &CrateInfo, json: bool) -> Result<Built, Failure> {
    let toolchain = WasmToolchain::find().classify(FailureKind::Build)?;
    let progress = spinner(
        json,
        format!("building {} {} (wasm)", info.name, info.version),
    );
    let built = cloacina_build::wasm::build(info, &toolchain, None, &|line| {
        progress.set_message(line.to_owned())
    });
    progress.finish_and_clear();
    let bytes = built.classify(FailureKind::Build)?;
    let runtime = WasmRuntime::new(WasmSettings::default()).classify(FailureKind::Build)?;
    let declaration = runtime
        .load(&bytes, None)
        .map(|plugin| plugin.declaration().clone())
        .with_context(|| format!("cannot read what the {} component declares", info.name))
        .classify(FailureKind::Build)?;
    Ok(Built {
        kind: ArtifactKind::Wasm,
        file_name: format!("{}.wasm", info.name.replace('-', "_")),
        bytes,
        declaration,
    })
}

fn spinner(json: bool, message: String) -> ProgressBar {
    // indicatif draws nothing when stderr is not a terminal.
    let target = if json {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let progress = ProgressBar::with_draw_target(None, target);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}") {
        progress.set_style(style);
    }
    progress.set_prefix(message);
    progress.enable_steady_tick(Duration::from_millis(100));
    progress
}

/// Writes through a temporary file in the same directory and a rename, so an
/// interrupted pack never leaves half a package under the final name (a drop
/// directory could otherwise pick it up).
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // Packages are public artifacts; the temporary file starts at 0600.
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    file.as_file().sync_all()?;
    file.persist(path)?;
    Ok(())
}
