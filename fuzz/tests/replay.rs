//! The fuzz targets' inputs, on stable `cargo test` (no libFuzzer):
//!
//! - every file of `corpus/<target>/` and `regressions/<target>/` through
//!   the target's check, so a crash the fuzzer once found stays fixed;
//! - seeded random mutations of those files, a small stand-in for the
//!   fuzzer where cargo-fuzz cannot run (`CLOACINA_FUZZ_SECONDS=N` mutates
//!   for N seconds per target instead of a fixed number of rounds,
//!   `CLOACINA_FUZZ_TARGETS="a b"` only those targets). An input that fails
//!   is written under the target directory, and the failure says where and
//!   how to keep it as a regression.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloacina_fuzz::{TARGETS, Target};

/// Mutation rounds over every seed when no time is given: quick enough for
/// every test run.
const DEFAULT_ROUNDS: usize = 64;

#[test]
fn every_target_has_a_binary_and_a_corpus() {
    let names: Vec<&str> = TARGETS.iter().map(|target| target.name).collect();
    let mut binaries: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .expect("fuzz_targets/")
        .map(|entry| entry.expect("an entry").path())
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    binaries.sort();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        binaries, sorted,
        "fuzz_targets/*.rs and cloacina_fuzz::TARGETS"
    );
    for name in names {
        assert!(!seeds(name).is_empty(), "corpus/{name}/ has no seed inputs");
    }
}

/// The seeds meant to be valid are, so fuzzing starts past the parsers'
/// first refusals; a schema change that breaks them shows here.
#[test]
fn valid_seeds_are_valid() {
    use cloacina_contract::Manifest;
    use cloacina_package::{Package, ReadLimits, SignaturePolicy};
    use cloacina_signing::TrustStore;

    let corpus = fuzz_dir().join("corpus");
    for name in [
        "minimal.json",
        "etl-native-cron-trigger.json",
        "graphs.json",
    ] {
        let bytes = std::fs::read(corpus.join("parse_manifest").join(name)).expect(name);
        if let Err(error) = Manifest::from_canonical_json(&bytes) {
            let cause = std::error::Error::source(&error).map(ToString::to_string);
            panic!("corpus/parse_manifest/{name}: {error} ({cause:?})");
        }
    }
    for name in ["minimal.tar.gz", "etl-dirs.tar.gz", "graphs.zip"] {
        let bytes = std::fs::read(corpus.join("read_archive").join(name)).expect(name);
        let verified = Package::read(&bytes, &ReadLimits::default())
            .map_err(|error| error.to_string())
            .and_then(|package| {
                package
                    .verify(&TrustStore::new(), None, SignaturePolicy::Optional)
                    .map_err(|error| error.to_string())
            });
        if let Err(error) = verified {
            panic!("corpus/read_archive/{name}: {error}");
        }
    }
}

#[test]
fn corpus_and_regressions_replay() {
    for target in TARGETS {
        for (path, bytes) in inputs(target.name) {
            if catch_unwind(AssertUnwindSafe(|| (target.check)(&bytes))).is_err() {
                panic!(
                    "{} fails on {} (the message is above)",
                    target.name,
                    path.display()
                );
            }
        }
    }
}

#[test]
fn mutated_seeds_hold() {
    let seconds = std::env::var("CLOACINA_FUZZ_SECONDS").ok().map(|text| {
        text.parse::<u64>()
            .expect("CLOACINA_FUZZ_SECONDS is a number")
    });
    // scripts/fuzz names the targets it stands in for.
    let only = std::env::var("CLOACINA_FUZZ_TARGETS").unwrap_or_default();
    let chosen = |name: &str| only.trim().is_empty() || only.split_whitespace().any(|n| n == name);
    for target in TARGETS.iter().filter(|target| chosen(target.name)) {
        let seeds: Vec<Vec<u8>> = inputs(target.name).into_iter().map(|(_, b)| b).collect();
        let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
        let mut random = Random::new(target.name);
        let mut runs = 0usize;
        for round in 0.. {
            match deadline {
                Some(deadline) if Instant::now() >= deadline => break,
                None if round == DEFAULT_ROUNDS => break,
                _ => {}
            }
            for seed in &seeds {
                let other = &seeds[random.below(seeds.len())];
                let input = random.mutate(seed, other);
                run_keeping_failures(target, &input);
                runs += 1;
            }
        }
        eprintln!("{}: {runs} mutated inputs held", target.name);
    }
}

/// Runs one input; if the check fails, writes the input where it can be
/// kept and says how, then fails the same way.
fn run_keeping_failures(target: &Target, input: &[u8]) {
    let Err(panic) = catch_unwind(AssertUnwindSafe(|| (target.check)(input))) else {
        return;
    };
    let path = found_dir()
        .join(target.name)
        .join(format!("crash-{:016x}", fnv(input)));
    let saved = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, input));
    match saved {
        Ok(()) => eprintln!(
            "\n{name} fails on a mutated input, saved as {path}\n\
             keep it as a regression test (then fix the code):\n    \
             mkdir -p fuzz/regressions/{name} && cp {path} fuzz/regressions/{name}/\n",
            name = target.name,
            path = path.display(),
        ),
        Err(error) => eprintln!(
            "\n{} fails on a mutated input ({} bytes); it could not be saved to {}: {error}\n{input:?}\n",
            target.name,
            input.len(),
            path.display()
        ),
    }
    resume_unwind(panic);
}

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where failing mutated inputs go: beside the fuzzer's scratch files.
fn found_dir() -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| fuzz_dir().join("../target"));
    target_dir.join("fuzz/mutations")
}

/// The seed corpus of a target.
fn seeds(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    files(&fuzz_dir().join("corpus").join(name))
}

/// Seeds and kept crashes: every input a target must hold on.
fn inputs(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut inputs = seeds(name);
    inputs.extend(files(&fuzz_dir().join("regressions").join(name)));
    inputs
}

/// The files of a folder (none if it does not exist), in name order.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes =
                std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            (path, bytes)
        })
        .collect()
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A seeded xorshift generator: the same mutations on every run, one
/// sequence per target.
struct Random(u64);

/// Bytes worth trying: edges of integers, and JSON's and paths' punctuation.
const INTERESTING: &[u8] = b"\x00\x01\x7f\x80\xff{}[]\":,.-/\\0123456789eE+ \n";

impl Random {
    fn new(name: &str) -> Self {
        Random(fnv(name.as_bytes()) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        if self.next_u64() & 1 == 0 {
            INTERESTING[self.below(INTERESTING.len())]
        } else {
            self.next_u64() as u8
        }
    }

    /// `seed` with one to four edits: bit flips, byte changes, inserts,
    /// deletions, a copied run, a splice with `other`.
    fn mutate(&mut self, seed: &[u8], other: &[u8]) -> Vec<u8> {
        let mut input = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(input.len() + 1);
            match self.below(6) {
                0 if at < input.len() => input[at] ^= 1 << self.below(8),
                1 if at < input.len() => input[at] = self.byte(),
                2 => {
                    let byte = self.byte();
                    input.insert(at, byte);
                }
                3 if at < input.len() => {
                    let end = at + 1 + self.below((input.len() - at).min(16));
                    let tail = input.split_off(end);
                    input.truncate(at);
                    input.extend(tail);
                }
                4 if at < input.len() => {
                    let end = at + 1 + self.below((input.len() - at).min(64));
                    let run = input[at..end].to_vec();
                    let tail = input.split_off(self.below(input.len() + 1));
                    input.extend(run);
                    input.extend(tail);
                }
                5 if !other.is_empty() => {
                    let from = self.below(other.len());
                    input.truncate(at);
                    input.extend_from_slice(&other[from..]);
                }
                _ => input.push(self.byte()),
            }
        }
        input
    }
}
