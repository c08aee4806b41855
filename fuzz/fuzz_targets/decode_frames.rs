//! Any bytes as a WebSocket frame of each socket: see `cloacina_fuzz::frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| cloacina_fuzz::frames::check(bytes));
