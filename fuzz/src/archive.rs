//! The archive reader: any bytes through the safe reader and, when they
//! read, through verification; and the streaming path (what uploads use)
//! over the same bytes, which promises the same rules and checks.

use std::io::Cursor;

use cloacina_package::{Package, ReadLimits, SignaturePolicy};
use cloacina_signing::TrustStore;

/// Below this size the two paths must agree on every input. The streaming
/// read caps the files it keeps (manifest, signature) at 4 MiB, which the
/// whole read does not; an archive this small cannot unpack a file that
/// large (1 MiB of slack plus 100 times its size, the expansion cap).
const PATHS_AGREE_BELOW: usize = 30 * 1024;

pub fn check(bytes: &[u8]) {
    let limits = ReadLimits {
        max_total_size: 64 << 20,
        ..ReadLimits::default()
    };
    let trust = TrustStore::new();
    let size = bytes.len() as u64;
    let streamed = Package::verify_streaming(
        Cursor::new(bytes),
        size,
        &limits,
        &trust,
        None,
        SignaturePolicy::Optional,
    );
    let peeked = Package::peek_manifest(Cursor::new(bytes), size, &limits);
    let compare = bytes.len() < PATHS_AGREE_BELOW;

    let Ok(package) = Package::read(bytes, &limits) else {
        // What the whole read refuses, streaming refuses too: the same
        // rules, with tighter caps on what it keeps.
        assert!(
            streamed.is_err(),
            "the streaming path admitted an archive the whole read refuses"
        );
        return;
    };
    let manifest = package.unverified_manifest();
    if compare {
        assert_eq!(
            peeked.ok(),
            manifest.as_ref().ok().cloned(),
            "peek_manifest and unverified_manifest disagree"
        );
    }
    let verified = package.verify(&trust, None, SignaturePolicy::Optional);
    if let Ok(verified) = &verified {
        assert_eq!(
            Some(verified.manifest()),
            manifest.as_ref().ok(),
            "a verified package's manifest is the one it carries"
        );
    }
    if compare {
        match (&verified, &streamed) {
            (Ok(whole), Ok(streamed)) => {
                assert_eq!(whole.content_digest(), streamed.content_digest());
                assert_eq!(whole.manifest(), streamed.manifest());
            }
            (Err(_), Err(_)) => {}
            (whole, streamed) => panic!(
                "verification disagrees: whole read {}, streaming {}",
                outcome(whole),
                outcome(streamed)
            ),
        }
    }
}

fn outcome<T, E: std::fmt::Display>(result: &Result<T, E>) -> String {
    match result {
        Ok(_) => "admitted".to_owned(),
        Err(error) => format!("refused ({error})"),
    }
}
