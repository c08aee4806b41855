//! `cloacinactl new NAME`: a plugin crate that builds, tests, packs and
//! runs as it is, outside any workspace: the SDK dependency, both crate
//! types, a lean release profile, a two-task workflow with typed context,
//! and a test on the SDK's harness.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use serde::Serialize;

use crate::cli::NewArgs;
use crate::failure::{Classify as _, Failure, FailureKind};
use crate::output::{self, out};

const CARGO_TOML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/templates/new/Cargo.toml.txt"
));
const LIB_RS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/templates/new/lib.rs.txt"
));
const GITIGNORE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/templates/new/gitignore.txt"
));
/// The dependency versions the SDK and its samples are tested with, so a
/// new crate builds with them too (cargo drops the samples' own entries).
const CARGO_LOCK: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../sample-packages/Cargo.lock"
));
/// Where this program was built from: its SDK, if the source is still there.
const SOURCE_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugin-sdk/sdk");

#[derive(Serialize)]
struct Created {
    path: PathBuf,
    name: String,
    workflow: String,
    sdk: String,
}

pub fn run(args: NewArgs, json: bool) -> Result<(), Failure> {
    let name = args.name.as_str();
    check_crate_name(name)?;
    let workflow = name.replace('-', "_");
    let dir = args.path.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        return Err(anyhow!(
            "{} already exists; choose another name or --path",
            dir.display()
        ))
        .classify(FailureKind::Usage);
    }
    let sdk = sdk_dependency(args.sdk.as_deref())?;
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{workflow}}", &workflow)
            .replace("{{sdk}}", &sdk)
    };
    write(&dir.join("Cargo.toml"), &fill(CARGO_TOML))?;
    write(&dir.join("Cargo.lock"), CARGO_LOCK)?;
    write(&dir.join("src").join("lib.rs"), &fill(LIB_RS))?;
    write(&dir.join(".gitignore"), GITIGNORE)?;
    let created = Created {
        path: dir.clone(),
        name: name.to_owned(),
        workflow: workflow.clone(),
        sdk,
    };
    if json {
        output::json(&created);
    } else {
        out!("created {} (workflow `{workflow}`)", dir.display());
        out!("next:");
        out!("  cd {}", dir.display());
        out!("  cargo test");
        out!("  cloacinactl key generate author --out keys");
        out!("  cloacinactl pack . --sign keys/author.key -o {name}.cloacina");
        out!("  cloacinactl run {name}.cloacina --trusted-key keys/author.pub");
        out!("the guide: docs/AUTHORING.md");
    }
    Ok(())
}

/// A crate name cargo accepts and a workflow name the manifest accepts.
fn check_crate_name(name: &str) -> Result<(), Failure> {
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 64;
    // Names the generated crate could not use: Rust keywords, the
    // standard crates, and its own dependencies.
    const TAKEN: &[&str] = &[
        "as",
        "async",
        "await",
        "break",
        "const",
        "continue",
        "crate",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "fn",
        "for",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "match",
        "mod",
        "move",
        "mut",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "struct",
        "super",
        "trait",
        "true",
        "type",
        "unsafe",
        "use",
        "where",
        "while",
        "abstract",
        "become",
        "box",
        "do",
        "final",
        "macro",
        "override",
        "priv",
        "typeof",
        "unsized",
        "virtual",
        "yield",
        "try",
        "gen",
        "std",
        "core",
        "alloc",
        "test",
        "proc_macro",
        "serde",
        "cloacina_plugin",
    ];
    if TAKEN.contains(&name.replace('-', "_").as_str()) {
        return Err(anyhow!(
            "`{name}` is reserved (a Rust keyword, a standard crate or a dependency): choose another name"
        ))
        .classify(FailureKind::Usage);
    }
    if valid {
        Ok(())
    } else {
        Err(anyhow!(
            "`{name}` is not a crate name: a letter, then letters, digits, `_` or `-` (64 at most)"
        ))
        .classify(FailureKind::Usage)
    }
}

/// The `cloacina-plugin` dependency line: --sdk, else the SDK this program
/// was built from.
fn sdk_dependency(given: Option<&Path>) -> Result<String, Failure> {
    let path = match given {
        Some(path) => path.to_owned(),
        None => PathBuf::from(SOURCE_SDK),
    };
    let path = path
        .canonicalize()
        .ok()
        .filter(|path| path.join("Cargo.toml").is_file())
        .ok_or_else(|| {
            anyhow!(
                "no cloacina-plugin SDK at {}; give its directory with --sdk (plugin-sdk/sdk in the cloacina source)",
                path.display()
            )
        })
        .classify(FailureKind::Usage)?;
    let path = path.to_string_lossy();
    Ok(format!("{{ path = {path:?} }}"))
}

fn write(path: &Path, contents: &str) -> Result<(), Failure> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
