//! `cloacinactl pack`: build, assemble, sign, write.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use cloacina_contract::{ArtifactKind, HOST_ABI_VERSION, Identifier, PackageInfo};
use cloacina_package::PackageBuilder;
use cloacina_signing::KeyFile;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::build;
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
    let info = build::read_crate(&args.crate_dir).classify(FailureKind::Build)?;
    let name = Identifier::new(info.name.clone())
        .context("the crate name cannot be a package name")
        .classify(FailureKind::Build)?;

    let (kind, artifact) = match args.target {
        PackTarget::Native => {
            let progress = spinner(json, format!("building {} {}", info.name, info.version));
            let built = build::build_native(&info, &progress);
            progress.finish_and_clear();
            let library = built.classify(FailureKind::Build)?;
            let target = build::host_triple().classify(FailureKind::Build)?;
            (ArtifactKind::Native { target }, library)
        }
    };
    let declaration = build::read_declaration(&artifact)
        .with_context(|| format!("cannot read what {} declares", info.name))
        .classify(FailureKind::Build)?;
    let mut builder = PackageBuilder::new(
        PackageInfo {
            name,
            version: info.version.clone(),
            description: info.description.clone(),
        },
        HOST_ABI_VERSION,
        declaration,
    );
    add_file(&mut builder, kind, &artifact)?;
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
    println!(
        "packed {} {} -> {} ({})",
        report.name,
        report.version,
        report.path.display(),
        output::size(report.size)
    );
    for artifact in &report.artifacts {
        println!(
            "  {}  {}  sha256 {}",
            artifact.path,
            output::size(artifact.size),
            artifact.sha256
        );
    }
    match (&report.key_id, key_name) {
        (Some(id), Some(name)) => println!("  signed with key `{name}` ({id})"),
        _ => println!("  unsigned (use --sign KEY_FILE to sign)"),
    }
}

fn add_file(builder: &mut PackageBuilder, kind: ArtifactKind, path: &Path) -> Result<(), Failure> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read built artifact {}", path.display()))
        .classify(FailureKind::Build)?;
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .with_context(|| format!("artifact {} has no usable file name", path.display()))
        .classify(FailureKind::Build)?;
    builder
        .add_artifact(kind, file_name, bytes)
        .classify(FailureKind::Build)?;
    Ok(())
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
