//! Verification and packing speed, printed as figures.
//!
//! `cargo bench -p cloacina-package --bench verify`
//!
//! For each package size, in the same run over the same bytes:
//! - plain SHA-256 of the package file (the floor any verification pays);
//! - `Package::read` + `verify` (inflate, parse, check signature, hash every file);
//! - the ratio of the two (aim: verification at no less than half SHA-256 speed).
//!
//! Two artifact contents: incompressible bytes, and "binary-like" bytes that
//! compress about as well as a release shared library (about 2.5:1).
//! Then: packing (hash, manifest, sign, gzip) a 10 MiB artifact (aim: under 1 s).

use std::hint::black_box;
use std::time::{Duration, Instant};

use cloacina_bench_record::record;
use cloacina_contract::manifest::{TaskDeclaration, WorkflowDeclaration};
use cloacina_contract::{ArtifactKind, Declaration, HOST_ABI_VERSION, Identifier, PackageInfo};
use cloacina_package::{Package, PackageBuilder, ReadLimits, SignaturePolicy};
use cloacina_signing::{KeyPair, TrustScope, TrustStore};
use sha2::{Digest as _, Sha256};

const MIB: usize = 1024 * 1024;
/// This bench's name in `docs/performance/records.jsonl`.
const BENCH: &str = "verify";

fn main() {
    let key = KeyPair::from_seed("bench", &[42; 32]);
    let mut trust = TrustStore::new();
    trust
        .add("bench", key.public_key(), TrustScope::Global)
        .expect("fresh store");

    let mut extracted_rows = Vec::new();
    println!("archive -> verified (upload path): read, inflate, hash, check signature");
    println!("vs plain SHA-256 over the same package bytes (median of runs)");
    println!(
        "{:<14} {:>8} {:>10} {:>12} {:>12} {:>8}",
        "content", "artifact", "package", "sha256 MB/s", "verify MB/s", "ratio"
    );
    for (label, make) in [
        ("incompressible", incompressible as fn(usize) -> Vec<u8>),
        ("binary-like", binary_like),
    ] {
        for size in [MIB, 50 * MIB] {
            let package = build(&key, make(size)).bytes;
            let runs = if size > MIB { 9 } else { 101 };
            let sha = median(runs, || {
                black_box(Sha256::digest(black_box(&package)));
            });
            let verify = median(runs, || {
                let read = Package::read(&package, &ReadLimits::default()).expect("readable");
                black_box(
                    read.verify(&trust, None, SignaturePolicy::Required)
                        .expect("valid"),
                );
            });
            let mbps = |d: Duration| package.len() as f64 / d.as_secs_f64() / 1e6;
            let row = format!("upload.{}_{}mib", label.replace('-', "_"), size / MIB);
            record_rates(&row, mbps(verify), mbps(sha));
            println!(
                "{label:<14} {:>5} MiB {:>7.1} MiB {:>12.0} {:>12.0} {:>7.2}x",
                size / MIB,
                package.len() as f64 / MIB as f64,
                mbps(sha),
                mbps(verify),
                mbps(verify) / mbps(sha),
            );
            if label == "incompressible" {
                extracted_rows.push(extracted_row(&package, &trust, runs));
            }
        }
    }

    println!();
    println!("extracted cache dir -> verified (load path): read files, hash, check signature");
    println!("vs plain SHA-256 over the same unpacked bytes (median of runs)");
    println!(
        "{:<14} {:>8} {:>12} {:>12} {:>8}",
        "content", "unpacked", "sha256 MB/s", "verify MB/s", "ratio"
    );
    for row in extracted_rows {
        println!("{row}");
    }
    println!();

    let artifact = binary_like(10 * MIB);
    let pack = median(5, || {
        black_box(build(&key, artifact.clone()));
    });
    record(BENCH, "pack.sign_10mib_ms", pack.as_secs_f64() * 1e3, "ms");
    println!(
        "pack + sign, 10 MiB binary-like artifact: {:.1} ms (aim: under 1000 ms)",
        pack.as_secs_f64() * 1e3
    );
}

/// Extracts `package` to a temporary cache and times re-verifying it there.
fn extracted_row(package: &[u8], trust: &TrustStore, runs: usize) -> String {
    let verified = Package::read(package, &ReadLimits::default())
        .expect("readable")
        .verify(trust, None, SignaturePolicy::Required)
        .expect("valid");
    let cache = tempfile::tempdir().expect("temp dir");
    let dir = verified.extract_into(cache.path()).expect("extract");
    let unpacked: Vec<u8> = verified
        .manifest()
        .artifacts()
        .iter()
        .flat_map(|a| {
            verified
                .artifact_bytes(&a.path)
                .unwrap_or_default()
                .to_vec()
        })
        .collect();
    let sha = median(runs, || {
        black_box(Sha256::digest(black_box(&unpacked)));
    });
    let verify = median(runs, || {
        let read = Package::read_extracted(&dir, &ReadLimits::default()).expect("readable");
        black_box(
            read.verify(trust, None, SignaturePolicy::Required)
                .expect("valid"),
        );
    });
    let mbps = |d: Duration| unpacked.len() as f64 / d.as_secs_f64() / 1e6;
    let row = format!("extracted.{}mib", unpacked.len() / MIB);
    record_rates(&row, mbps(verify), mbps(sha));
    format!(
        "{:<14} {:>4} MiB {:>12.0} {:>12.0} {:>7.2}x",
        "any",
        unpacked.len() / MIB,
        mbps(sha),
        mbps(verify),
        mbps(verify) / mbps(sha)
    )
}

fn build(key: &KeyPair, artifact: Vec<u8>) -> cloacina_package::BuiltPackage {
    let id = |text: &str| Identifier::new(text).expect("valid identifier");
    let declaration = Declaration {
        tasks: vec![TaskDeclaration {
            id: id("work"),
            description: String::new(),
            dependencies: vec![],
            retry: Default::default(),
            timeout_ms: None,
            invokes: None,
        }],
        workflows: vec![WorkflowDeclaration {
            name: id("bench"),
            description: String::new(),
            tasks: vec![id("work")],
        }],
        ..Declaration::default()
    };
    let mut builder = PackageBuilder::new(
        PackageInfo {
            name: id("bench"),
            version: semver::Version::new(1, 0, 0),
            description: String::new(),
        },
        HOST_ABI_VERSION,
        declaration,
    );
    builder
        .add_artifact(
            ArtifactKind::Native {
                target: "x86_64-unknown-linux-gnu".into(),
            },
            "libbench.so",
            artifact,
        )
        .expect("valid name");
    builder.finish(Some(key)).expect("valid package")
}

/// Records a verification rate and its ratio to SHA-256 over the same bytes.
fn record_rates(row: &str, verify_mb_s: f64, sha_mb_s: f64) {
    record(BENCH, &format!("{row}.verify_mb_s"), verify_mb_s, "MB/s");
    record(
        BENCH,
        &format!("{row}.ratio"),
        verify_mb_s / sha_mb_s,
        "x SHA-256",
    );
}

fn median(runs: usize, mut work: impl FnMut()) -> Duration {
    work(); // warm up
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// xorshift bytes: deflate cannot shrink them.
fn incompressible(size: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// Random bytes interleaved with repeated runs and zero padding, shaped like
/// machine code plus tables: compresses about 2.5:1 with gzip -6.
fn binary_like(size: usize) -> Vec<u8> {
    let noise = incompressible(size);
    let mut out = Vec::with_capacity(size);
    let mut i = 0;
    while out.len() < size {
        let block = &noise[i % (size - 256)..][..256];
        match (i / 256) % 4 {
            0 | 1 => out.extend_from_slice(block),
            2 => out.extend_from_slice(&block[..32].repeat(8)),
            _ => out.extend(std::iter::repeat_n(0u8, 256)),
        }
        i += 256;
    }
    out.truncate(size);
    out
}
