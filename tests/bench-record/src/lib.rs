//! Benchmarks' figures, kept for `docs/PERFORMANCE.md`.
//!
//! Each benchmark prints its figures for a reader; next to the ones a
//! performance table wants, it also calls [`record`]. When the environment
//! variable `CLOACINA_BENCH_RECORD` ([`VARIABLE`]) names a file, every call
//! appends one JSON line to it:
//!
//! ```json
//! {"bench":"engine","figure":"sqlite.dag5_workflows_per_s","value":3120.5,"unit":"workflows/s"}
//! ```
//!
//! When the variable is unset (a plain `cargo bench`), nothing is written.
//! `scripts/performance` runs each benchmark with the variable set, merges
//! the lines into `docs/performance/records.jsonl` and renders the table
//! from them (`scripts/performance.py`, which holds each figure's label,
//! aim and the reference's figure).
//!
//! A figure id is stable across runs (the table is keyed by it): dotted,
//! lower case, for example `postgres.chain10_p50_ms`. Writing never panics
//! and never stops a benchmark: the first I/O error is printed to stderr,
//! later ones are silent.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable naming the file figures are appended to.
pub const VARIABLE: &str = "CLOACINA_BENCH_RECORD";

/// Set once an I/O error has been reported.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Appends `{"bench", "figure", "value", "unit"}` as one line to the file
/// named by [`VARIABLE`] (created if missing); does nothing when it is
/// unset or empty. A value that is not finite is written as `null`.
pub fn record(bench: &str, figure: &str, value: f64, unit: &str) {
    let Some(path) = std::env::var_os(VARIABLE).filter(|path| !path.is_empty()) else {
        return;
    };
    let entry = serde_json::json!({
        "bench": bench,
        "figure": figure,
        "value": value,
        "unit": unit,
    });
    let line = format!("{entry}\n");
    // One write of the whole line to a file opened for appending, so lines
    // from several threads do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(error) = written
        && !REPORTED.swap(true, Ordering::Relaxed)
    {
        eprintln!(
            "cloacina-bench-record: cannot append to {}: {error}",
            Path::new(&path).display()
        );
    }
}
