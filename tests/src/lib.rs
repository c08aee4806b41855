//! Helpers shared by the end-to-end tests: finding and running the real
//! binaries, the sample plugin crates, scratch directories, and rewriting
//! packages the way an attacker would.
//!
//! Tests drive the product from the outside, as users do: `cloacinactl` is
//! run as a process and judged by its exit code and its output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod packages;
mod postgres;
mod process;
mod proxy;
mod tls;
pub use packages::{HOST_TARGET, native_package, swollen_package, swollen_package_with_workflow};
pub use postgres::{
    DEFAULT_POSTGRES_URL, FreshDatabase, drop_database, drop_schema, fresh_database, postgres_url,
    unique_schema,
};
pub use process::{ServerProcess, status_kib};
pub use proxy::CuttableProxy;
pub use tls::{SelfSigned, trusting};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A sample plugin crate under `sample-packages/`.
pub fn sample_crate(name: &str) -> PathBuf {
    repo_root().join("sample-packages").join(name)
}

/// The `cloacinactl` binary built alongside this test (`CLOACINACTL`
/// overrides). `cargo test --workspace` builds it before running tests.
pub fn cloacinactl_path() -> PathBuf {
    if let Some(path) = std::env::var_os("CLOACINACTL") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/cloacinactl
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = profile_dir.join(format!("cloacinactl{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: build it first (`cargo build -p cloacinactl`, which `cargo test --workspace` does) or set CLOACINACTL",
        path.display()
    );
    path
}

/// What a finished command left behind.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Asserts exit 0 and returns self for chaining.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "expected success:\n{self}");
        self
    }

    /// Asserts the given exit code and that stderr mentions `phrase`.
    #[track_caller]
    pub fn failure(self, code: i32, phrase: &str) -> Self {
        assert_eq!(self.code, Some(code), "expected exit {code}:\n{self}");
        assert!(
            self.stderr.contains(phrase),
            "stderr should mention `{phrase}`:\n{self}"
        );
        self
    }

    /// Stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{self}"))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Where plugin crates are built during tests: the sample workspace's
/// target directory (or `CARGO_TARGET_DIR`), so that scratch crates made by
/// tests reuse the SDK already compiled there.
pub fn plugin_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("sample-packages").join("target"))
}

/// A plugin crate in a scratch directory, using the SDK from this
/// repository, with `source` as its `lib.rs`.
pub fn scratch_plugin(source: &str) -> tempfile::TempDir {
    // Each scratch crate has a name of its own: they build into one shared
    // target directory, where two of one name (tests running at once, in
    // one process or several) would overwrite each other's library.
    static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "scratch_{}_{}",
        std::process::id(),
        MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let dir = scratch();
    let sdk = repo_root().join("plugin-sdk").join("sdk");
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\ncloacina-plugin = {{ path = {:?} }}\n\n[workspace]\n",
        sdk.display().to_string()
    );
    let write = |path: &Path, contents: &str| {
        std::fs::write(path, contents)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()))
    };
    write(&dir.path().join("Cargo.toml"), &manifest);
    // The samples' lock file pins the same dependency versions, so the
    // scratch crate reuses what the samples compiled.
    let lock = std::fs::read_to_string(repo_root().join("sample-packages").join("Cargo.lock"))
        .unwrap_or_default();
    write(&dir.path().join("Cargo.lock"), &lock);
    std::fs::create_dir(dir.path().join("src"))
        .unwrap_or_else(|error| panic!("cannot create src: {error}"));
    write(&dir.path().join("src").join("lib.rs"), source);
    dir
}

/// The sample plugin crates built for this machine (release), by package
/// name: `cargo build --release` once per test process, then the library
/// paths cargo reported.
pub fn sample_libraries() -> &'static BTreeMap<String, PathBuf> {
    static LIBRARIES: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    LIBRARIES.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--workspace",
                "--message-format",
                "json",
            ])
            .arg("--manifest-path")
            .arg(repo_root().join("sample-packages").join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", plugin_target_dir())
            .output()
            .unwrap_or_else(|error| panic!("cannot run cargo: {error}"));
        assert!(
            output.status.success(),
            "building the sample plugins failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut libraries = BTreeMap::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let Some(name) = message["target"]["name"].as_str() else {
                continue;
            };
            let library = message["filenames"].as_array().and_then(|files| {
                files
                    .iter()
                    .filter_map(|file| file.as_str())
                    .find(|file| file.ends_with(std::env::consts::DLL_SUFFIX))
            });
            if let Some(library) = library {
                libraries.insert(name.replace('_', "-"), PathBuf::from(library));
            }
        }
        libraries
    })
}

/// Builds the plugin crate in `crate_dir` as a component, into the shared
/// plugin target directory, with the toolchain `cloacinactl pack` uses.
pub fn build_component(crate_dir: &Path) -> Vec<u8> {
    let toolchain = cloacina_build::wasm::WasmToolchain::find()
        .unwrap_or_else(|error| panic!("{error} (./scripts/test installs one)"));
    let info = cloacina_build::read_crate(crate_dir)
        .unwrap_or_else(|error| panic!("{}: {error}", crate_dir.display()));
    cloacina_build::wasm::build(&info, &toolchain, Some(&plugin_target_dir()), &|_| {})
        .unwrap_or_else(|error| panic!("building {} for wasm: {error}", crate_dir.display()))
}

/// Builds the plugin crate in `crate_dir` as a native library, into the
/// shared plugin target directory, and returns the library's path.
pub fn build_library(crate_dir: &Path) -> PathBuf {
    let info = cloacina_build::read_crate(crate_dir)
        .unwrap_or_else(|error| panic!("{}: {error}", crate_dir.display()));
    cloacina_build::native::build(&info, Some(&plugin_target_dir()), &|_| {})
        .unwrap_or_else(|error| panic!("building {}: {error}", crate_dir.display()))
}

/// The WebAssembly component of one sample plugin crate, built once per
/// test process.
pub fn sample_component(name: &str) -> Vec<u8> {
    static COMPONENTS: OnceLock<std::sync::Mutex<BTreeMap<String, Vec<u8>>>> = OnceLock::new();
    let components = COMPONENTS.get_or_init(Default::default);
    let mut components = components
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(bytes) = components.get(name) {
        return bytes.clone();
    }
    let bytes = build_component(&sample_crate(name));
    components.insert(name.to_owned(), bytes.clone());
    bytes
}

/// The built library of one sample plugin crate.
pub fn sample_library(name: &str) -> &'static Path {
    sample_libraries()
        .get(name)
        .unwrap_or_else(|| panic!("no sample plugin named `{name}`"))
}

/// Runs `cloacinactl` with `args` in `dir`.
pub fn cloacinactl(dir: &Path, args: &[&str]) -> Outcome {
    let output = Command::new(cloacinactl_path())
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", plugin_target_dir())
        .output()
        .unwrap_or_else(|error| panic!("cannot run cloacinactl: {error}"));
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The files of a package, read through the safe reader.
pub fn package_files(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    cloacina_package::reader::read_archive(bytes, &cloacina_package::ReadLimits::default())
        .unwrap_or_else(|error| panic!("unreadable package: {error}"))
        .into_bytes()
}

/// A well-formed gzip'd tar of `files`: how a tamperer re-packs.
pub fn pack_files(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut archive = tar::Builder::new(encoder);
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        archive
            .append_data(&mut header, path, bytes.as_slice())
            .unwrap_or_else(|error| panic!("cannot append {path}: {error}"));
    }
    archive
        .into_inner()
        .and_then(|encoder| encoder.finish())
        .unwrap_or_else(|error| panic!("cannot finish archive: {error}"))
}

/// A scratch directory removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|error| panic!("cannot create a temp dir: {error}"))
}

/// The URL of a host's SQLite database in `home` (made if missing), where
/// `server start --home home` keeps it.
pub fn sqlite_url(home: &Path) -> String {
    std::fs::create_dir_all(home)
        .unwrap_or_else(|error| panic!("cannot make {}: {error}", home.display()));
    format!("sqlite://{}", home.join("cloacina.db").display())
}

/// The status code of the HTTP response in `response` (its first line), or
/// 0 when there is none.
pub fn http_status(response: &[u8]) -> u16 {
    std::str::from_utf8(response)
        .ok()
        .and_then(|text| text.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}
