//! Any bytes through the safe reader and, when they read, through
//! verification: neither may panic, hang or allocate past the caps.
#![no_main]

use cloacina_package::{Package, ReadLimits, SignaturePolicy};
use cloacina_signing::TrustStore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let limits = ReadLimits {
        max_total_size: 64 << 20,
        ..ReadLimits::default()
    };
    if let Ok(package) = Package::read(bytes, &limits) {
        let _ = package.verify(&TrustStore::new(), None, SignaturePolicy::Optional);
    }
});
