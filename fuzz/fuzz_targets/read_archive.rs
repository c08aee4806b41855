//! Any bytes as a `.cloacina` archive: see `cloacina_fuzz::archive`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| cloacina_fuzz::archive::check(bytes));
