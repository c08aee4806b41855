//! Packages made in memory from libraries already built, for the suites
//! that need many versions of one package quickly.

use std::path::Path;

use cloacina_contract::{ArtifactKind, Declaration, HOST_ABI_VERSION, Identifier, PackageInfo};
use cloacina_package::PackageBuilder;
use cloacina_signing::KeyPair;

/// The target triple these tests run on.
pub const HOST_TARGET: &str = env!("CLOACINA_TESTS_TARGET");

/// A package holding `library` (a native plugin built for this machine)
/// as `name` `version`, whose manifest declares `declaration`, signed by
/// `key` when given: what `cloacinactl pack` writes, minus the build.
pub fn native_package(
    library: &Path,
    name: &str,
    version: &str,
    declaration: Declaration,
    key: Option<&KeyPair>,
) -> Vec<u8> {
    let info = PackageInfo {
        name: Identifier::new(name).unwrap_or_else(|error| panic!("name {name}: {error}")),
        version: semver::Version::parse(version)
            .unwrap_or_else(|error| panic!("version {version}: {error}")),
        description: String::new(),
    };
    let file = library
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin.so".to_owned());
    let bytes = std::fs::read(library)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", library.display()));
    let mut builder = PackageBuilder::new(info, HOST_ABI_VERSION, declaration);
    builder
        .add_artifact(
            ArtifactKind::Native {
                target: HOST_TARGET.into(),
            },
            &file,
            bytes,
        )
        .unwrap_or_else(|error| panic!("cannot add {file}: {error}"));
    builder
        .finish(key)
        .unwrap_or_else(|error| panic!("cannot build the package: {error}"))
        .bytes
}

/// The worst upload a server accepts, built without ever holding it
/// unpacked: an unsigned, well-formed package of `noise` incompressible
/// bytes (a native library for another target) and `zeros` zero bytes
/// (its WebAssembly component), so a small archive unpacks to
/// `noise + zeros`. Its one workflow is named after it. Every hash in its manifest is right, so only the
/// server's bounds stand between it and the server's memory.
pub fn swollen_package(name: &str, noise: usize, zeros: u64) -> Vec<u8> {
    swollen(name, name, noise, zeros)
}

/// A small well-formed package `name` 1.0.0 whose one workflow is
/// `workflow` (its artifacts load nowhere: for upload-time checks).
pub fn swollen_package_with_workflow(name: &str, workflow: &str) -> Vec<u8> {
    swollen(name, workflow, 1024, 1024)
}

fn swollen(name: &str, workflow: &str, noise: usize, zeros: u64) -> Vec<u8> {
    use std::io::{Read as _, Write as _};

    use cloacina_contract::manifest::{TaskDeclaration, WorkflowDeclaration};
    use cloacina_contract::{Artifact, ArtifactPath, Manifest, Sha256Digest};
    use sha2::{Digest as _, Sha256};

    let id = |text: &str| Identifier::new(text).unwrap_or_else(|error| panic!("{text}: {error}"));
    // xorshift: incompressible, reproducible.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let noise: Vec<u8> = (0..noise)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    let mut zero_hash = Sha256::new();
    let mut left = zeros;
    let block = vec![0u8; 1 << 20];
    while left > 0 {
        let take = left.min(block.len() as u64);
        zero_hash.update(&block[..take as usize]);
        left -= take;
    }
    let noise_path = "native/riscv64gc-unknown-linux-gnu/libswollen.so";
    let zeros_path = "wasm/swollen.wasm";
    let declaration = Declaration {
        tasks: vec![TaskDeclaration {
            id: id("only"),
            description: String::new(),
            dependencies: Vec::new(),
            retry: Default::default(),
            timeout_ms: None,
            invokes: None,
        }],
        workflows: vec![WorkflowDeclaration {
            name: id(workflow),
            description: String::new(),
            tasks: vec![id("only")],
        }],
        ..Declaration::default()
    };
    let manifest = Manifest::new(
        PackageInfo {
            name: id(name),
            version: semver::Version::new(1, 0, 0),
            description: String::new(),
        },
        HOST_ABI_VERSION,
        vec![
            Artifact {
                path: ArtifactPath::new(noise_path).expect("path"),
                kind: ArtifactKind::Native {
                    target: "riscv64gc-unknown-linux-gnu".into(),
                },
                sha256: Sha256Digest(Sha256::digest(&noise).into()),
                size: noise.len() as u64,
            },
            Artifact {
                path: ArtifactPath::new(zeros_path).expect("path"),
                kind: ArtifactKind::Wasm,
                sha256: Sha256Digest(zero_hash.finalize().into()),
                size: zeros,
            },
        ],
        declaration,
    )
    .unwrap_or_else(|error| panic!("manifest: {error}"));
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut append = |path: &str, size: u64, data: &mut dyn std::io::Read| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        archive
            .append_data(&mut header, path, data)
            .unwrap_or_else(|error| panic!("{path}: {error}"));
    };
    let manifest_bytes = manifest.to_canonical_json();
    append(
        cloacina_package::MANIFEST_FILE,
        manifest_bytes.len() as u64,
        &mut manifest_bytes.as_slice(),
    );
    append(noise_path, noise.len() as u64, &mut noise.as_slice());
    append(zeros_path, zeros, &mut std::io::repeat(0).take(zeros));
    let mut encoder = archive.into_inner().expect("tar");
    encoder.flush().expect("gzip");
    encoder.finish().expect("gzip")
}
