//! What each fuzz target checks of one input, shared by the cargo-fuzz
//! targets (`fuzz_targets/`, coverage-guided, libFuzzer) and the replay
//! test (`tests/replay.rs`, stable `cargo test`), so a crash found by the
//! fuzzer is replayed by exactly the code that found it.
//!
//! One module per parser of untrusted input. Each `check` takes raw bytes,
//! must never panic, hang or allocate without bound on any of them, and
//! asserts what the parser promises of the inputs it accepts: a failed
//! assertion is a crash like any other.
//!
//! Nothing here uses libFuzzer: the `libfuzzer` feature (on by default,
//! what `cargo fuzz` builds) only links the targets' `main`.

pub mod archive;
pub mod context;
pub mod frames;
pub mod manifest;

/// A fuzz target: its name (the `fuzz_targets/<name>.rs` binary, the
/// `corpus/<name>/` and `regressions/<name>/` folders) and its check.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub check: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "read_archive",
        check: archive::check,
    },
    Target {
        name: "parse_manifest",
        check: manifest::check,
    },
    Target {
        name: "merge_context",
        check: context::check,
    },
    Target {
        name: "decode_frames",
        check: frames::check,
    },
];
