//! Every way a signed package can be altered after signing, each caught by
//! `cloacinactl package verify` with its own reason and exit code.

use std::collections::BTreeMap;

use cloacina_tests::{cloacinactl, pack_files, package_files};

use crate::packaging::SignedSample;

/// Rewrites the sample's package with `change` applied to its files and
/// returns the verifier's outcome.
fn verify_altered(
    sample: &SignedSample,
    change: impl FnOnce(&mut BTreeMap<String, Vec<u8>>),
) -> cloacina_tests::Outcome {
    let mut files = package_files(&std::fs::read(&sample.package).expect("package"));
    change(&mut files);
    let altered = sample.dir.path().join("altered.cloacina");
    std::fs::write(&altered, pack_files(&files)).expect("write altered package");
    sample.verify(&altered, &[])
}

fn library_path(files: &BTreeMap<String, Vec<u8>>) -> String {
    files
        .keys()
        .find(|name| name.starts_with("native/"))
        .expect("native artifact")
        .clone()
}

#[test]
fn an_untouched_repack_still_verifies() {
    // The control: re-packing alone must not break anything, or every
    // failure below would prove nothing.
    let sample = SignedSample::new();
    verify_altered(&sample, |_| {}).success();
}

#[test]
fn one_flipped_artifact_byte() {
    let sample = SignedSample::new();
    verify_altered(&sample, |files| {
        let library = library_path(files);
        files.get_mut(&library).expect("library")[1000] ^= 0x01;
    })
    .failure(3, "differs from the manifest: its SHA-256 differs");
}

#[test]
fn one_flipped_manifest_byte() {
    let sample = SignedSample::new();
    verify_altered(&sample, |files| {
        let manifest = files.get_mut("manifest.json").expect("manifest");
        let at = manifest
            .windows(7)
            .position(|w| w == b"numbers")
            .expect("description");
        manifest[at] = b'N';
    })
    .failure(3, "does not match the signed bytes");
}

#[test]
fn one_flipped_signature_byte() {
    let sample = SignedSample::new();
    verify_altered(&sample, |files| {
        let signature = files.get_mut("signature.json").expect("signature");
        let text = String::from_utf8(signature.clone()).expect("utf-8");
        // Change one base64 digit inside the signature value.
        let start = text.find("\"signature\":\"").expect("signature field") + 13;
        let digit = signature[start + 10];
        signature[start + 10] = if digit == b'A' { b'B' } else { b'A' };
    })
    .failure(3, "does not match the signed bytes");
}

#[test]
fn an_added_file() {
    let sample = SignedSample::new();
    verify_altered(&sample, |files| {
        files.insert("native/backdoor.so".into(), b"\x7fELF".to_vec());
    })
    .failure(3, "`native/backdoor.so` is in the package but not listed");
}

#[test]
fn a_removed_file() {
    let sample = SignedSample::new();
    verify_altered(&sample, |files| {
        let library = library_path(files);
        files.remove(&library);
    })
    .failure(3, "missing from the package");
}

#[test]
fn a_signature_by_an_untrusted_key() {
    let sample = SignedSample::new();
    let dir = sample.dir.path();
    cloacinactl(dir, &["key", "generate", "stranger", "--out", "keys"]).success();
    cloacinactl(
        dir,
        &[
            "package",
            "verify",
            "etl.cloacina",
            "--trusted-key",
            "keys/stranger.pub",
        ],
    )
    .failure(3, "is not in the trust store");
}

#[test]
fn a_revoked_key() {
    let sample = SignedSample::new();
    sample
        .verify(&sample.package, &["--revoked-key", &sample.key_id])
        .failure(3, "has been revoked");
}

#[test]
fn a_hostile_archive_is_not_a_package() {
    let sample = SignedSample::new();
    let dir = sample.dir.path();
    // Path traversal: an entry that would land outside any extraction dir.
    let mut files = package_files(&std::fs::read(&sample.package).expect("package"));
    let library = files.remove(&library_path(&files)).expect("library");
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..5].copy_from_slice(b"../ev");
    header.set_size(library.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    archive.append(&header, library.as_slice()).expect("append");
    let bytes = archive
        .into_inner()
        .and_then(|encoder| encoder.finish())
        .expect("finish");
    std::fs::write(dir.join("hostile.cloacina"), bytes).expect("write");
    cloacinactl(dir, &["package", "verify", "hostile.cloacina"])
        .failure(4, "`../ev` has an unsafe path");
}
