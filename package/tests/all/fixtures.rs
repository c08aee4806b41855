//! Packages and raw archives for the tests.

use std::collections::BTreeMap;
use std::io::{Read, Write as _};

use cloacina_contract::manifest::{TaskDeclaration, WorkflowDeclaration};
use cloacina_contract::{ArtifactKind, Declaration, HOST_ABI_VERSION, Identifier, PackageInfo};
use cloacina_package::{PackageBuilder, ReadLimits};
use cloacina_signing::{KeyPair, TrustScope, TrustStore};
use flate2::Compression;
use flate2::write::GzEncoder;

pub const TARGET: &str = "x86_64-unknown-linux-gnu";
pub const LIBRARY: &str = "native/x86_64-unknown-linux-gnu/libetl.so";

pub fn id(text: &str) -> Identifier {
    Identifier::new(text).expect("valid identifier")
}

pub fn declaration() -> Declaration {
    let task = |name: &str, dependencies: &[&str]| TaskDeclaration {
        id: id(name),
        description: String::new(),
        dependencies: dependencies.iter().map(|d| id(d)).collect(),
        retry: Default::default(),
        timeout_ms: Some(1_000),
        invokes: None,
    };
    Declaration {
        tasks: vec![task("extract", &[]), task("load", &["extract"])],
        workflows: vec![WorkflowDeclaration {
            name: id("etl"),
            description: String::new(),
            tasks: vec![id("extract"), id("load")],
        }],
        ..Declaration::default()
    }
}

pub fn key(seed: u8) -> KeyPair {
    KeyPair::from_seed(format!("key-{seed}"), &[seed; 32])
}

pub fn trusting(key: &KeyPair) -> TrustStore {
    let mut store = TrustStore::new();
    store
        .add(key.name(), key.public_key(), TrustScope::Global)
        .expect("fresh store");
    store
}

/// A package with one native artifact and one wasm artifact.
pub fn package(signer: Option<&KeyPair>, artifact: Vec<u8>) -> Vec<u8> {
    let mut builder = PackageBuilder::new(
        PackageInfo {
            name: id("etl"),
            version: semver::Version::new(1, 0, 0),
            description: "test package".into(),
        },
        HOST_ABI_VERSION,
        declaration(),
    );
    builder
        .add_artifact(
            ArtifactKind::Native {
                target: TARGET.into(),
            },
            "libetl.so",
            artifact,
        )
        .expect("valid name")
        .add_artifact(ArtifactKind::Wasm, "etl.wasm", b"\0asm fake".to_vec())
        .expect("valid name");
    builder.finish(signer).expect("valid package").bytes
}

pub fn signed_package() -> (KeyPair, Vec<u8>) {
    let signer = key(1);
    let bytes = package(Some(&signer), b"\x7fELF pretend library".repeat(100));
    (signer, bytes)
}

/// The files of a package, read with default limits.
pub fn files_of(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    cloacina_package::reader::read_archive(bytes, &ReadLimits::default())
        .expect("readable fixture")
        .into_bytes()
}

/// One entry of a hand-made tar.
pub struct RawEntry {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    pub declared_size: Option<u64>,
    pub link: Option<&'static [u8]>,
}

impl RawEntry {
    pub fn file(name: impl AsRef<[u8]>, data: impl Into<Vec<u8>>) -> Self {
        RawEntry {
            name: name.as_ref().to_vec(),
            kind: tar::EntryType::Regular,
            data: data.into(),
            declared_size: None,
            link: None,
        }
    }

    pub fn of_kind(name: &str, kind: tar::EntryType) -> Self {
        RawEntry {
            kind,
            ..RawEntry::file(name, Vec::new())
        }
    }
}

/// A gzip'd tar written header by header, bypassing every check the `tar`
/// crate's friendly API makes, as an attacker would.
pub fn raw_tar_gz(entries: impl IntoIterator<Item = RawEntry>) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    for entry in entries {
        let mut header = tar::Header::new_old();
        {
            let name = &mut header.as_old_mut().name;
            name.fill(0);
            name[..entry.name.len()].copy_from_slice(&entry.name);
        }
        if let Some(link) = entry.link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        }
        header.set_entry_type(entry.kind);
        header.set_mode(0o644);
        header.set_size(entry.declared_size.unwrap_or(entry.data.len() as u64));
        header.set_cksum();
        encoder.write_all(header.as_bytes()).expect("in memory");
        encoder.write_all(&entry.data).expect("in memory");
        let padding = (512 - entry.data.len() % 512) % 512;
        encoder.write_all(&vec![0; padding]).expect("in memory");
    }
    encoder.write_all(&[0; 1024]).expect("in memory");
    encoder.finish().expect("in memory")
}

/// A gzip'd tar holding `files`, as a well-behaved writer would make it.
pub fn repack(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    raw_tar_gz(
        files
            .iter()
            .map(|(name, data)| RawEntry::file(name, data.clone())),
    )
}

/// A gzip'd tar with one entry of `size` zero bytes, streamed so that the
/// test never holds the unpacked bytes.
pub fn zero_bomb(size: u64) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    let mut header = tar::Header::new_ustar();
    header.set_path("bomb.bin").expect("valid path");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    encoder.write_all(header.as_bytes()).expect("in memory");
    std::io::copy(&mut std::io::repeat(0).take(size), &mut encoder).expect("in memory");
    encoder.write_all(&[0; 1024]).expect("in memory");
    encoder.finish().expect("in memory")
}
