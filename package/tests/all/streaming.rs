//! Streaming verification (uploads, loads): the same verdicts as reading
//! into memory, with only the manifest and signature held.

use std::io::Cursor;

use cloacina_package::{
    AdmitError, MANIFEST_FILE, Package, ReadError, ReadLimits, SignaturePolicy, VerifyError,
};

use crate::fixtures::{LIBRARY, files_of, repack, signed_package, trusting, zero_bomb};

fn stream(bytes: &[u8], trust: &cloacina_signing::TrustStore) -> Result<(), AdmitError> {
    Package::verify_streaming(
        Cursor::new(bytes),
        bytes.len() as u64,
        &ReadLimits::default(),
        trust,
        None,
        SignaturePolicy::Required,
    )
    .map(|_| ())
}

#[test]
fn a_signed_package_verifies_streaming_as_it_does_in_memory() {
    let (signer, bytes) = signed_package();
    let trust = trusting(&signer);
    let streamed = Package::verify_streaming(
        Cursor::new(&bytes),
        bytes.len() as u64,
        &ReadLimits::default(),
        &trust,
        None,
        SignaturePolicy::Required,
    )
    .expect("valid");
    let in_memory = Package::read(&bytes, &ReadLimits::default())
        .expect("readable")
        .verify(&trust, None, SignaturePolicy::Required)
        .expect("valid");
    assert_eq!(streamed.content_digest(), in_memory.content_digest());
    assert_eq!(
        streamed.signer().map(|s| s.key_id),
        Some(signer.id()),
        "the signer is named"
    );
}

#[test]
fn tampering_is_refused_streaming_with_the_same_errors() {
    let (signer, bytes) = signed_package();
    let trust = trusting(&signer);
    let mut files = files_of(&bytes);
    files.get_mut(LIBRARY).expect("library")[3] ^= 1;
    let error = stream(&repack(&files), &trust).expect_err("changed");
    assert!(
        matches!(&error, AdmitError::Verify(VerifyError::FileChanged { path, .. }) if path == LIBRARY),
        "{error}"
    );
    let mut files = files_of(&bytes);
    files.insert("native/extra.so".into(), b"surprise".to_vec());
    let error = stream(&repack(&files), &trust).expect_err("unlisted");
    assert!(
        matches!(&error, AdmitError::Verify(VerifyError::UnlistedFile { .. })),
        "{error}"
    );
    let mut files = files_of(&bytes);
    files.remove(MANIFEST_FILE);
    let error = stream(&repack(&files), &trust).expect_err("no manifest");
    assert!(error.is_bad_input(), "{error}");
    let error = stream(b"not an archive at all", &trust).expect_err("garbage");
    assert!(matches!(&error, AdmitError::Read(_)), "{error}");
}

#[test]
fn a_bomb_is_refused_streaming_without_holding_it() {
    let bomb = zero_bomb(2 << 30);
    let (signer, _) = signed_package();
    let error = stream(&bomb, &trusting(&signer)).expect_err("bomb");
    assert!(
        matches!(
            &error,
            AdmitError::Read(cloacina_package::PackageError::Read(
                ReadError::ExpansionTooHigh { .. }
                    | ReadError::TotalTooLarge { .. }
                    | ReadError::EntryTooLarge { .. }
            ))
        ),
        "{error}"
    );
}

#[test]
fn verify_and_extract_installs_only_verified_content() {
    let (signer, bytes) = signed_package();
    let trust = trusting(&signer);
    let cache = tempfile::tempdir().expect("cache");
    let (verified, dir) = Package::verify_and_extract(
        Cursor::new(&bytes),
        bytes.len() as u64,
        &ReadLimits::default(),
        &trust,
        None,
        SignaturePolicy::Required,
        cache.path(),
    )
    .expect("valid");
    assert_eq!(
        dir,
        cache.path().join(verified.content_digest().to_hex()),
        "content addressed"
    );
    assert_eq!(
        std::fs::read(dir.join(LIBRARY)).expect("library"),
        b"\x7fELF pretend library".repeat(100)
    );
    assert_eq!(
        std::fs::read(dir.join(MANIFEST_FILE)).expect("manifest"),
        verified.manifest_bytes()
    );
    // The extracted directory verifies again, as every load does.
    Package::read_extracted(&dir, &ReadLimits::default())
        .expect("readable")
        .verify(&trust, None, SignaturePolicy::Required)
        .expect("still valid");

    // A tampered copy leaves nothing behind: no directory, no staging.
    let other = tempfile::tempdir().expect("cache");
    let mut files = files_of(&bytes);
    files.get_mut(LIBRARY).expect("library")[3] ^= 1;
    let tampered = repack(&files);
    let error = Package::verify_and_extract(
        Cursor::new(&tampered),
        tampered.len() as u64,
        &ReadLimits::default(),
        &trust,
        None,
        SignaturePolicy::Required,
        other.path(),
    )
    .expect_err("tampered");
    assert!(error.is_bad_input(), "{error}");
    let left: Vec<_> = std::fs::read_dir(other.path())
        .expect("list")
        .filter_map(Result::ok)
        .collect();
    assert!(left.is_empty(), "nothing installed or staged: {left:?}");
}

#[test]
fn peek_manifest_reads_only_the_manifest() {
    let (_, bytes) = signed_package();
    let manifest = Package::peek_manifest(
        Cursor::new(&bytes),
        bytes.len() as u64,
        &ReadLimits::default(),
    )
    .expect("manifest");
    assert_eq!(manifest.package().name.as_str(), "etl");
}

#[test]
fn a_huge_manifest_is_refused_before_it_is_held() {
    // 5 MiB of spaces compress to almost nothing; a streaming read keeps
    // the manifest in memory, so it is capped far below other files.
    let archive = crate::fixtures::raw_tar_gz([crate::fixtures::RawEntry::file(
        MANIFEST_FILE,
        vec![b' '; 5 << 20],
    )]);
    let (signer, _) = signed_package();
    let error = stream(&archive, &trusting(&signer)).expect_err("too big to keep");
    assert!(
        matches!(
            &error,
            AdmitError::Read(cloacina_package::PackageError::Read(ReadError::EntryTooLarge { entry, .. }))
                if entry == MANIFEST_FILE
        ),
        "{error}"
    );
}
