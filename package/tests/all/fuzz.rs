//! Property tests over the reader and verifier, run on every CI build: no
//! input makes them panic, and no mutation of a signed package verifies with
//! different content.

use cloacina_package::reader::read_archive;
use cloacina_package::{Package, ReadLimits, SignaturePolicy};
use proptest::prelude::*;

use crate::fixtures::{files_of, signed_package, trusting};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = read_archive(&bytes, &ReadLimits::default());
        let mut gzip = vec![0x1f, 0x8b];
        gzip.extend(&bytes);
        let _ = read_archive(&gzip, &ReadLimits::default());
    }

    #[test]
    fn mutated_packages_never_verify_with_other_content(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let (signer, original) = signed_package();
        let mut bytes = original.clone();
        for (at, mask) in &flips {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        let Ok(package) = Package::read(&bytes, &ReadLimits::default()) else {
            return Ok(());
        };
        if package.verify(&trusting(&signer), None, SignaturePolicy::Required).is_ok() {
            // Only changes that leave every file as it was (gzip header
            // fields, padding) may pass.
            prop_assert_eq!(files_of(&bytes), files_of(&original));
        }
    }
}
