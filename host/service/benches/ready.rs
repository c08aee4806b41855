//! Time from upload to first executable, through a real host on SQLite:
//! a small package and a 20 MiB one, native and WebAssembly, cold (new
//! host, empty cache) and from cache (the same package removed and
//! uploaded again), with the parts (verify, extract, compile or load)
//! measured alone.
//!
//!   cargo bench -p cloacina-host --bench ready
//!
//! The 20 MiB packages carry incompressible padding: after the library
//! (which the dynamic loader ignores) or in a custom section of the
//! component (which wasmtime skips). Native libraries load in process
//! here; `server start` runs them in worker processes by default, which
//! adds a process start (see host/loader's `call` bench).

use std::time::{Duration, Instant};

use cloacina_bench_record::record;
use cloacina_contract::{ArtifactKind, Declaration, HOST_ABI_VERSION, Identifier, PackageInfo};
use cloacina_host::{Host, HostConfig, OnRunning};
use cloacina_loader::Plugin as _;
use cloacina_loader::native::NativePlugin;
use cloacina_loader::wasm::{WasmRuntime, WasmSettings};
use cloacina_package::{Package, PackageBuilder, ReadLimits, SignaturePolicy};
use cloacina_runtime::TenantId;
use cloacina_signing::{KeyPair, TrustScope, TrustStore};

const PADDING: usize = 20 << 20;
/// This bench's name in `docs/performance/records.jsonl`.
const BENCH: &str = "ready";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Native,
    Wasm,
}

fn main() {
    let key = KeyPair::generate("bench").expect("key");
    let mut trust = TrustStore::new();
    trust
        .add(key.name(), key.public_key(), TrustScope::Global)
        .expect("trust");
    let library = cloacina_tests::sample_library("etl");
    let declaration = NativePlugin::load(library)
        .expect("loads")
        .declaration()
        .clone();
    let native = std::fs::read(library).expect("library");
    let component = cloacina_tests::sample_component("etl");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");

    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>12} {:>10} {:>12}",
        "package", "size", "verify", "extract", "compile/load", "cold", "from cache"
    );
    for (kind, kind_name) in [(Kind::Native, "native"), (Kind::Wasm, "wasm")] {
        for padded in [false, true] {
            let artifact = match (kind, padded) {
                (Kind::Native, false) => native.clone(),
                (Kind::Native, true) => [native.clone(), noise(PADDING)].concat(),
                (Kind::Wasm, false) => component.clone(),
                (Kind::Wasm, true) => with_custom_section(&component, &noise(PADDING)),
            };
            let bytes = package(kind, artifact, declaration.clone(), &key);
            let parts = parts(kind, &bytes, &trust);
            let (cold, cached) = runtime.block_on(end_to_end(&bytes, &key, None));
            let row = format!("{kind_name}_{}", if padded { "20mib" } else { "small" });
            record(BENCH, &format!("{row}.cold_ms"), ms(cold), "ms");
            record(BENCH, &format!("{row}.cached_ms"), ms(cached), "ms");
            println!(
                "{:<22} {:>8.1}M {:>7.1}ms {:>7.1}ms {:>10.1}ms {:>8.1}ms {:>10.1}ms",
                format!("{kind_name} {}", if padded { "20 MiB" } else { "small" }),
                bytes.len() as f64 / (1 << 20) as f64,
                ms(parts.verify),
                ms(parts.extract),
                ms(parts.load),
                ms(cold),
                ms(cached),
            );
        }
    }
    // What `server start` does by default: native libraries in worker
    // processes.
    match worker_binary() {
        Some(worker) => {
            let bytes = package(Kind::Native, native.clone(), declaration.clone(), &key);
            let (cold, cached) = runtime.block_on(end_to_end(&bytes, &key, Some(&worker)));
            record(BENCH, "native_small_worker.cold_ms", ms(cold), "ms");
            record(BENCH, "native_small_worker.cached_ms", ms(cached), "ms");
            println!(
                "{:<22} {:>9} {:>9} {:>9} {:>12} {:>8.1}ms {:>10.1}ms",
                "native small, worker",
                "",
                "",
                "",
                "",
                ms(cold),
                ms(cached),
            );
        }
        None => {
            println!("native small, worker: skipped (cloacina-plugin-worker could not be built)")
        }
    }
    println!(
        "\ncold: a new host with an empty cache; from cache: the same package removed, then uploaded again\n(extraction and compiled component reused). Each is one upload + wake until the workflow is registered."
    );
}

struct Parts {
    verify: Duration,
    extract: Duration,
    load: Duration,
}

/// Each step alone, cold.
fn parts(kind: Kind, bytes: &[u8], trust: &TrustStore) -> Parts {
    let started = Instant::now();
    let verified = Package::read(bytes, &ReadLimits::default())
        .expect("readable")
        .verify(trust, None, SignaturePolicy::Required)
        .expect("verifies");
    let verify = started.elapsed();
    let cache = tempfile::tempdir().expect("cache");
    let started = Instant::now();
    let root = verified.extract_into(cache.path()).expect("extracts");
    let extract = started.elapsed();
    let artifact = &verified.manifest().artifacts()[0];
    let started = Instant::now();
    match kind {
        Kind::Native => {
            NativePlugin::load(&root.join(artifact.path.as_str())).expect("loads");
        }
        Kind::Wasm => {
            let wasm = WasmRuntime::new(WasmSettings::default()).expect("runtime");
            wasm.load(
                verified.artifact_bytes(&artifact.path).expect("bytes"),
                None,
            )
            .expect("compiles");
        }
    }
    Parts {
        verify,
        extract,
        load: started.elapsed(),
    }
}

/// Upload to registered through a host: cold, then from cache.
async fn end_to_end(
    bytes: &[u8],
    key: &KeyPair,
    worker: Option<&std::path::Path>,
) -> (Duration, Duration) {
    let home = tempfile::tempdir().expect("home");
    let url = format!("sqlite://{}", home.path().join("cloacina.db").display());
    let host = Host::start(HostConfig {
        require_signatures: true,
        worker_binary: worker.map(std::path::Path::to_path_buf),
        resync_interval: Duration::from_secs(600),
        ..HostConfig::new(url, home.path().join("cache"))
    })
    .await
    .expect("host");
    host.trust()
        .add("bench", &key.public_key(), None)
        .await
        .expect("trust");
    let public = TenantId::public();
    let tenant = host.tenant(&public).await.expect("tenant");
    let mut trust = TrustStore::new();
    trust
        .add(key.name(), key.public_key(), TrustScope::Global)
        .expect("trust");
    let upload_and_wait = async || {
        let started = Instant::now();
        let verified = Package::read(bytes, &ReadLimits::default())
            .expect("readable")
            .verify(&trust, None, SignaturePolicy::Required)
            .expect("verifies");
        tenant
            .registry()
            .upload(&verified, bytes)
            .await
            .expect("uploads");
        host.wake();
        while tenant.runner().workflows().is_empty() {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        started.elapsed()
    };
    let cold = upload_and_wait().await;
    host.remove_package(
        &public,
        "etl",
        &semver::Version::new(0, 1, 0),
        OnRunning::Wait,
    )
    .await
    .expect("removes");
    while !tenant.runner().workflows().is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cached = upload_and_wait().await;
    host.shutdown().await;
    (cold, cached)
}

fn package(kind: Kind, artifact: Vec<u8>, declaration: Declaration, key: &KeyPair) -> Vec<u8> {
    let info = PackageInfo {
        name: Identifier::new("etl").expect("name"),
        version: semver::Version::new(0, 1, 0),
        description: String::new(),
    };
    let (artifact_kind, path) = match kind {
        Kind::Native => (
            ArtifactKind::Native {
                target: cloacina_tests::HOST_TARGET.into(),
            },
            "libetl.so",
        ),
        Kind::Wasm => (ArtifactKind::Wasm, "etl.wasm"),
    };
    let mut builder = PackageBuilder::new(info, HOST_ABI_VERSION, declaration);
    builder
        .add_artifact(artifact_kind, path, artifact)
        .expect("artifact");
    builder.finish(Some(key)).expect("built").bytes
}

/// `len` bytes gzip cannot shrink (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// The component with a custom section (id 0) named `padding` appended.
fn with_custom_section(component: &[u8], payload: &[u8]) -> Vec<u8> {
    let name = b"padding";
    let mut body = leb128(name.len());
    body.extend_from_slice(name);
    body.extend_from_slice(payload);
    let mut out = component.to_vec();
    out.push(0);
    out.extend(leb128(body.len()));
    out.extend(body);
    out
}

fn leb128(mut value: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `cloacina-plugin-worker`, built (release) into this target directory.
fn worker_binary() -> Option<std::path::PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "cloacina-loader",
            "--bin",
            "cloacina-plugin-worker",
        ])
        .status()
        .ok()?
        .success();
    let exe = std::env::current_exe().ok()?;
    // target/release/deps/ready-<hash> -> target/release/cloacina-plugin-worker
    let path = exe.parent()?.parent()?.join(format!(
        "cloacina-plugin-worker{}",
        std::env::consts::EXE_SUFFIX
    ));
    (built && path.is_file()).then_some(path)
}
