//! Any bytes as `manifest.json`: see `cloacina_fuzz::manifest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| cloacina_fuzz::manifest::check(bytes));
