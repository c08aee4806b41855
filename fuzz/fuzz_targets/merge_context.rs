//! Any JSON values as task results to merge: see `cloacina_fuzz::context`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| cloacina_fuzz::context::check(bytes));
