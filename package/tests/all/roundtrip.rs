//! Pack, read and verify; then tamper in every way and see each refused with
//! its own error.

use cloacina_package::{
    MANIFEST_FILE, Package, PackageError, ReadLimits, SIGNATURE_FILE, SignaturePolicy, VerifyError,
};
use cloacina_signing::{SignatureEnvelope, TrustError};

use crate::fixtures::{self, LIBRARY, files_of, repack, signed_package, trusting};

fn verify(bytes: &[u8], trust: &cloacina_signing::TrustStore) -> Result<(), VerifyError> {
    Package::read(bytes, &ReadLimits::default())
        .expect("readable")
        .verify(trust, None, SignaturePolicy::Required)
        .map(|_| ())
}

#[test]
fn a_signed_package_verifies_and_names_its_signer() {
    let (signer, bytes) = signed_package();
    let verified = Package::read(&bytes, &ReadLimits::default())
        .expect("readable")
        .verify(&trusting(&signer), None, SignaturePolicy::Required)
        .expect("valid package");
    assert_eq!(verified.signer().map(|s| s.key_id), Some(signer.id()));
    assert_eq!(verified.manifest().package().name.as_str(), "etl");
    let library = verified
        .manifest()
        .artifact(LIBRARY)
        .expect("library listed");
    assert_eq!(library.path.as_str(), LIBRARY);
    assert_eq!(
        verified.artifact_bytes(&library.path),
        Some(&b"\x7fELF pretend library".repeat(100)[..])
    );
}

#[test]
fn packing_is_reproducible() {
    let (signer, bytes) = signed_package();
    let again = fixtures::package(Some(&signer), b"\x7fELF pretend library".repeat(100));
    assert_eq!(bytes, again);
}

#[test]
fn a_flipped_artifact_byte_is_a_changed_file() {
    let (signer, bytes) = signed_package();
    let mut files = files_of(&bytes);
    files.get_mut(LIBRARY).expect("library")[10] ^= 0x01;
    let error = verify(&repack(&files), &trusting(&signer)).expect_err("tampered");
    assert!(
        matches!(&error, VerifyError::FileChanged { path, .. } if path == LIBRARY),
        "{error}"
    );
}

#[test]
fn a_flipped_manifest_byte_breaks_the_signature() {
    let (signer, bytes) = signed_package();
    let mut files = files_of(&bytes);
    let manifest = files.get_mut(MANIFEST_FILE).expect("manifest");
    let at = manifest
        .windows(12)
        .position(|w| w == b"test package")
        .expect("description in manifest");
    manifest[at] = b'b';
    let error = verify(&repack(&files), &trusting(&signer)).expect_err("tampered");
    assert!(
        matches!(error, VerifyError::Signature(TrustError::BadSignature(id)) if id == signer.id()),
        "{error}"
    );
}

#[test]
fn a_flipped_signature_bit_breaks_the_signature() {
    let (signer, bytes) = signed_package();
    let mut files = files_of(&bytes);
    let envelope = SignatureEnvelope::from_json(&files[SIGNATURE_FILE]).expect("envelope");
    let mut raw = envelope.signature_bytes();
    raw[5] ^= 0x80;
    files.insert(
        SIGNATURE_FILE.into(),
        SignatureEnvelope::from_parts(envelope.key_id(), &raw).to_json(),
    );
    let error = verify(&repack(&files), &trusting(&signer)).expect_err("tampered");
    assert!(
        matches!(error, VerifyError::Signature(TrustError::BadSignature(_))),
        "{error}"
    );
}

#[test]
fn a_garbled_signature_file_is_refused_at_read() {
    let (_, bytes) = signed_package();
    let mut files = files_of(&bytes);
    files.get_mut(SIGNATURE_FILE).expect("signature")[3] = b'#';
    let error = Package::read(&repack(&files), &ReadLimits::default()).expect_err("garbled");
    assert!(
        matches!(error, PackageError::MalformedSignature(_)),
        "{error}"
    );
}

#[test]
fn an_added_file_is_unlisted() {
    let (signer, bytes) = signed_package();
    let mut files = files_of(&bytes);
    files.insert("native/extra.so".into(), b"surprise".to_vec());
    let error = verify(&repack(&files), &trusting(&signer)).expect_err("extra file");
    assert!(
        matches!(&error, VerifyError::UnlistedFile { path } if path == "native/extra.so"),
        "{error}"
    );
}

#[test]
fn a_removed_file_is_missing() {
    let (signer, bytes) = signed_package();
    let mut files = files_of(&bytes);
    files.remove("wasm/etl.wasm");
    let error = verify(&repack(&files), &trusting(&signer)).expect_err("missing file");
    assert!(
        matches!(&error, VerifyError::MissingFile { path } if path == "wasm/etl.wasm"),
        "{error}"
    );
}

#[test]
fn an_untrusted_key_is_refused() {
    let (_, bytes) = signed_package();
    let stranger = fixtures::key(2);
    let error = verify(&bytes, &trusting(&stranger)).expect_err("untrusted");
    assert!(
        matches!(error, VerifyError::Signature(TrustError::Untrusted(_))),
        "{error}"
    );
}

#[test]
fn a_revoked_key_is_refused() {
    let (signer, bytes) = signed_package();
    let mut trust = trusting(&signer);
    trust.revoke(signer.id());
    let error = verify(&bytes, &trust).expect_err("revoked");
    assert!(
        matches!(error, VerifyError::Signature(TrustError::Revoked(id)) if id == signer.id()),
        "{error}"
    );
}

#[test]
fn unsigned_packages_follow_the_policy_but_are_still_hash_checked() {
    let unsigned = fixtures::package(None, b"lib".to_vec());
    let trust = cloacina_signing::TrustStore::new();
    assert!(matches!(
        verify(&unsigned, &trust),
        Err(VerifyError::Unsigned)
    ));
    let read = || Package::read(&unsigned, &ReadLimits::default()).expect("readable");
    let verified = read()
        .verify(&trust, None, SignaturePolicy::Optional)
        .expect("allowed unsigned");
    assert!(verified.signer().is_none());

    let mut files = files_of(&unsigned);
    files.get_mut(LIBRARY).expect("library")[0] ^= 1;
    let tampered = Package::read(&repack(&files), &ReadLimits::default()).expect("readable");
    assert!(matches!(
        tampered.verify(&trust, None, SignaturePolicy::Optional),
        Err(VerifyError::FileChanged { .. })
    ));
}

#[test]
fn a_detached_signature_verifies_an_unsigned_package() {
    let signer = fixtures::key(3);
    let unsigned = fixtures::package(None, b"lib".to_vec());
    let files = files_of(&unsigned);
    let detached = signer.sign(&cloacina_package::signed_message(&files[MANIFEST_FILE]));
    let verified = Package::read(&unsigned, &ReadLimits::default())
        .expect("readable")
        .verify_detached(&detached, &trusting(&signer), None)
        .expect("detached signature");
    assert_eq!(verified.signer().map(|s| s.key_id), Some(signer.id()));
}

#[test]
fn a_zip_package_reads_and_verifies_like_a_tar() {
    use std::io::Write as _;
    let (signer, bytes) = signed_package();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in files_of(&bytes) {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        writer.start_file(name, options).expect("zip entry");
        writer.write_all(&data).expect("zip data");
    }
    let zipped = writer.finish().expect("zip").into_inner();
    verify(&zipped, &trusting(&signer)).expect("zip package verifies");
}

#[test]
fn extraction_is_content_addressed_and_complete() {
    let (signer, bytes) = signed_package();
    let verified = Package::read(&bytes, &ReadLimits::default())
        .expect("readable")
        .verify(&trusting(&signer), None, SignaturePolicy::Required)
        .expect("valid");
    let cache = tempfile::tempdir().expect("temp dir");
    let dir = verified.extract_into(cache.path()).expect("extract");
    assert_eq!(
        dir.file_name().and_then(|n| n.to_str()),
        Some(verified.content_digest().to_hex().as_str())
    );
    let library = std::fs::read(dir.join(LIBRARY)).expect("library extracted");
    assert_eq!(library, b"\x7fELF pretend library".repeat(100));
    assert_eq!(
        std::fs::read(dir.join(MANIFEST_FILE)).expect("manifest"),
        verified.manifest_bytes()
    );
    assert_eq!(verified.extract_into(cache.path()).expect("again"), dir);
    let leftovers: Vec<_> = std::fs::read_dir(cache.path())
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".extracting"))
        .collect();
    assert!(leftovers.is_empty(), "staging directories left behind");
}

#[test]
fn an_extracted_package_is_verified_again_at_load() {
    let (signer, bytes) = signed_package();
    let trust = trusting(&signer);
    let verified = Package::read(&bytes, &ReadLimits::default())
        .expect("readable")
        .verify(&trust, None, SignaturePolicy::Required)
        .expect("valid");
    let cache = tempfile::tempdir().expect("temp dir");
    let dir = verified.extract_into(cache.path()).expect("extract");
    let reloaded = Package::read_extracted(&dir, &ReadLimits::default())
        .expect("readable directory")
        .verify(&trust, None, SignaturePolicy::Required)
        .expect("the cache verifies");
    assert_eq!(reloaded.content_digest(), verified.content_digest());

    // A byte changed on disk after extraction is caught at the next load.
    let library = dir.join(LIBRARY);
    let mut contents = std::fs::read(&library).expect("library");
    contents[3] ^= 0x20;
    std::fs::write(&library, contents).expect("tamper");
    let error = Package::read_extracted(&dir, &ReadLimits::default())
        .expect("readable directory")
        .verify(&trust, None, SignaturePolicy::Required)
        .expect_err("tampered cache");
    assert!(matches!(error, VerifyError::FileChanged { .. }), "{error}");
}

#[cfg(unix)]
#[test]
fn a_symlink_planted_in_the_cache_is_refused() {
    let (signer, bytes) = signed_package();
    let verified = Package::read(&bytes, &ReadLimits::default())
        .expect("readable")
        .verify(&trusting(&signer), None, SignaturePolicy::Required)
        .expect("valid");
    let cache = tempfile::tempdir().expect("temp dir");
    let dir = verified.extract_into(cache.path()).expect("extract");
    std::os::unix::fs::symlink("/etc/passwd", dir.join("wasm/extra")).expect("symlink");
    let error = Package::read_extracted(&dir, &ReadLimits::default()).expect_err("symlink");
    assert!(
        matches!(
            error,
            PackageError::Read(cloacina_package::ReadError::ForbiddenEntryType { .. })
        ),
        "{error}"
    );
}
