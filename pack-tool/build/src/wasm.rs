//! The WebAssembly artifact: the same crate built for
//! `wasm32-unknown-unknown`, then made a component with `wit-component`
//! (the SDK embeds the component type, so the module needs nothing else).
//!
//! Toolchains, in order of preference:
//! 1. `CLOACINA_WASM_RUSTC` (+ optional `CLOACINA_WASM_CARGO`): a rustc
//!    without a prebuilt wasm32 std, used with `-Zbuild-std`;
//! 2. the current rustc, when its sysroot has the wasm32 target
//!    (`rustup target add wasm32-unknown-unknown`);
//! 3. Debian's `rustc-web` (`/usr/bin/rustc` with `rust-web-src`), with
//!    `-Zbuild-std` (install: `apt-get install rustc-web cargo-web
//!    rust-web-src lld-22`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cargo::{self, Progress};
use crate::{BuildError, CrateInfo};

/// The target plugins are built for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The guest's stack, in bytes.
pub const GUEST_STACK_SIZE: u32 = 256 * 1024;

/// How to build for wasm32 on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WasmToolchain {
    /// A rustc whose sysroot ships the wasm32 std.
    Prebuilt { cargo: PathBuf },
    /// A rustc that builds std from source (`-Zbuild-std`).
    BuildStd { rustc: PathBuf, cargo: PathBuf },
}

impl WasmToolchain {
    /// Finds a toolchain, or says how to get one.
    pub fn find() -> Result<WasmToolchain, BuildError> {
        if let Some(rustc) = std::env::var_os("CLOACINA_WASM_RUSTC") {
            let cargo = std::env::var_os("CLOACINA_WASM_CARGO")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("cargo"));
            return Ok(WasmToolchain::BuildStd {
                rustc: PathBuf::from(rustc),
                cargo,
            });
        }
        let current = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        if sysroot(Path::new(&current)).is_some_and(|root| {
            root.join("lib/rustlib")
                .join(WASM_TARGET)
                .join("lib")
                .is_dir()
        }) {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            return Ok(WasmToolchain::Prebuilt {
                cargo: PathBuf::from(cargo),
            });
        }
        let debian = Path::new("/usr/bin/rustc");
        if sysroot(debian).is_some_and(|root| root.join("lib/rustlib/src/rust/library").is_dir()) {
            return Ok(WasmToolchain::BuildStd {
                rustc: debian.to_owned(),
                cargo: PathBuf::from("/usr/bin/cargo"),
            });
        }
        Err(BuildError::NoWasmToolchain(format!(
            "run `rustup target add {WASM_TARGET}`, or on Debian `apt-get install rustc-web cargo-web rust-web-src lld-22`, or set CLOACINA_WASM_RUSTC"
        )))
    }

    fn command(&self) -> Command {
        match self {
            WasmToolchain::Prebuilt { cargo } => {
                let mut command = Command::new(cargo);
                command.args(["build", "--release", "--lib", "--target", WASM_TARGET]);
                command
            }
            WasmToolchain::BuildStd { rustc, cargo } => {
                let mut command = Command::new(cargo);
                command
                    .env("RUSTC", rustc)
                    // -Zbuild-std is unstable; this is the documented way to
                    // use it on a stable compiler.
                    .env("RUSTC_BOOTSTRAP", "1")
                    .args(["build", "--release", "--lib", "--target", WASM_TARGET])
                    .arg("-Zbuild-std=std,panic_abort");
                command
            }
        }
        // wasm32 cannot unwind: the SDK reports panics to the host before
        // the instance traps.
    }
}

fn sysroot(rustc: &Path) -> Option<PathBuf> {
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}

/// Builds the crate for wasm32 (into `target_dir`, or cargo's choice) and
/// returns the component's bytes.
pub fn build(
    info: &CrateInfo,
    toolchain: &WasmToolchain,
    target_dir: Option<&Path>,
    progress: Progress<'_>,
) -> Result<Vec<u8>, BuildError> {
    let mut command = toolchain.command();
    command
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        // The default 1 MiB stack makes every fresh instance's memory that
        // much larger, and the host resets it after each call; 256 KiB is
        // ample for JSON-in, JSON-out tasks.
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
            format!("-C link-arg=-zstack-size={GUEST_STACK_SIZE}"),
        );
    let module = cargo::build(command, info, target_dir, progress)?
        .into_iter()
        .find(|file| file.extension().is_some_and(|ext| ext == "wasm"))
        .ok_or_else(|| BuildError::NoArtifact {
            name: info.name.clone(),
            what: "WebAssembly module",
        })?;
    let bytes = std::fs::read(&module).map_err(|source| BuildError::Io {
        path: module.clone(),
        source,
    })?;
    componentize(&bytes)
}

/// Makes a core module carrying the SDK's component-type section into a
/// component, validating the result.
pub fn componentize(module: &[u8]) -> Result<Vec<u8>, BuildError> {
    wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|error| BuildError::Component(format!("{error:#}")))
}
