//! Per-call overhead of a task, printed as figures.
//!
//! `cargo bench -p cloacina-loader --bench call`
//!
//! A near-no-op task (`fan-out`'s `split`: read one key, return one key)
//! with a small JSON context, called back to back; the figure includes JSON
//! parsing of the context in the plugin and the output check in the host,
//! which every real call pays. Aims: native in-process under 2 us,
//! an isolated native worker under 100 us (and the worker pool's calls/s
//! from one caller and from one caller per worker), WebAssembly with a fresh pooled
//! instance per call under 15 us, and a
//! component loaded from the compiled cache (a restart) under 5 ms.

use std::hint::black_box;
use std::time::Instant;

use cloacina_bench_record::record;
use cloacina_loader::native::NativePlugin;
use cloacina_loader::wasm::{WasmRuntime, WasmSettings};
use cloacina_loader::{CallControl, Plugin};

/// This bench's name in `docs/performance/records.jsonl`.
const BENCH: &str = "call";

const CONTEXT: &str = r#"{"base":3,"run":"bench","note":"a small context of about ninety bytes"}"#;

/// Median nanoseconds per call over 21 batches of `calls`.
fn per_call(plugin: &dyn Plugin, calls: u32) -> (f64, f64, f64) {
    let control = CallControl::new();
    for _ in 0..calls / 2 {
        black_box(plugin.call("split", CONTEXT, &control).expect("split"));
    }
    let mut samples = Vec::new();
    for _ in 0..21 {
        let started = Instant::now();
        for _ in 0..calls {
            black_box(
                plugin
                    .call("split", black_box(CONTEXT), &control)
                    .expect("split"),
            );
        }
        samples.push(started.elapsed().as_secs_f64() * 1e9 / f64::from(calls));
    }
    samples.sort_by(f64::total_cmp);
    (samples[10], samples[0], samples[20])
}

/// Calls per second through `plugin` from one caller, then from as many
/// callers at once as it has workers (`calls` each).
fn pool_rates(plugin: &cloacina_loader::isolated::IsolatedPlugin, calls: u32) -> (f64, f64) {
    let control = CallControl::new();
    let run = |callers: u32| {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..callers {
                scope.spawn(|| {
                    for _ in 0..calls {
                        black_box(plugin.call("split", CONTEXT, &control).expect("split"));
                    }
                });
            }
        });
        f64::from(callers * calls) / started.elapsed().as_secs_f64()
    };
    let callers = u32::try_from(plugin.workers()).unwrap_or(1);
    run(callers); // every worker started and warm
    (run(1), run(callers))
}

fn main() {
    let library = cloacina_tests::sample_library("fan-out");

    let started = Instant::now();
    let plugin = NativePlugin::load(library).expect("fan-out loads");
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    record(BENCH, "native.load_ms", load_ms, "ms");
    println!("native load (dlopen + layout check + declaration): {load_ms:.2} ms");

    let (median, min, max) = per_call(&plugin, 20_000);
    record(BENCH, "native.call_ns", median, "ns");
    println!(
        "native in-process call, {}-byte context: median {median:.0} ns/call (min {min:.0}, max {max:.0}; aim: under 2000 ns)",
        CONTEXT.len()
    );

    // The worker binary is built next to this bench by `cargo bench`.
    let worker = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("cloacina-plugin-worker")))
        .filter(|path| path.is_file());
    match worker {
        Some(worker) => {
            let isolated = cloacina_loader::isolated::IsolatedPlugin::load(&worker, library)
                .expect("worker starts");
            let (median, min, max) = per_call(&isolated, 2_000);
            record(BENCH, "isolated.call_ns", median, "ns");
            println!(
                "isolated native call (worker process, pipe): median {median:.0} ns/call (min {min:.0}, max {max:.0}; aim: under 100000 ns)"
            );
            drop(isolated);
            let pool = cloacina_loader::isolated::IsolatedPlugin::load(&worker, library)
                .expect("workers start");
            let (one, many) = pool_rates(&pool, 2_000);
            record(BENCH, "isolated.one_caller_calls_per_s", one, "calls/s");
            record(BENCH, "isolated.pool_calls_per_s", many, "calls/s");
            println!(
                "isolated native worker pool ({} workers, one per core): {one:.0} calls/s from one caller, {many:.0} calls/s from {} callers at once",
                pool.workers(),
                pool.workers()
            );
        }
        None => println!(
            "isolated native call: skipped (build cloacina-plugin-worker in release first)"
        ),
    }

    let component = cloacina_tests::sample_component("fan-out");
    let cache = tempfile::tempdir().expect("temp dir");
    let settings = WasmSettings {
        cache_dir: Some(cache.path().to_owned()),
        ..WasmSettings::default()
    };
    let runtime = WasmRuntime::new(settings.clone()).expect("runtime");
    let started = Instant::now();
    let wasm = runtime.load(&component, Some("bench")).expect("compiles");
    let first_load_ms = started.elapsed().as_secs_f64() * 1e3;
    record(BENCH, "wasm.first_load_ms", first_load_ms, "ms");
    println!(
        "wasm first load (cranelift compile + cache write + declaration): {first_load_ms:.1} ms"
    );
    drop(wasm);
    drop(runtime);
    let restarted = WasmRuntime::new(settings).expect("runtime");
    let mut loads = Vec::new();
    for _ in 0..21 {
        let started = Instant::now();
        black_box(restarted.load(&component, Some("bench")).expect("cached"));
        loads.push(started.elapsed().as_secs_f64() * 1e3);
    }
    loads.sort_by(f64::total_cmp);
    record(BENCH, "wasm.cached_load_ms", loads[10], "ms");
    println!(
        "wasm load from the compiled cache (restart): median {:.2} ms (aim: under 5 ms)",
        loads[10]
    );
    let wasm = restarted.load(&component, Some("bench")).expect("cached");
    let mut probes = Vec::new();
    for _ in 0..21 {
        let started = Instant::now();
        for _ in 0..2_000 {
            black_box(wasm.probe().expect("probe"));
        }
        probes.push(started.elapsed().as_secs_f64() * 1e9 / 2_000.0);
    }
    probes.sort_by(f64::total_cmp);
    record(BENCH, "wasm.instance_floor_ns", probes[10], "ns");
    println!(
        "wasm fresh instance + trivial export (the floor of every call): median {:.0} ns",
        probes[10]
    );
    let (median, min, max) = per_call(&wasm, 2_000);
    record(BENCH, "wasm.call_ns", median, "ns");
    println!(
        "wasm call, fresh pooled instance per call: median {median:.0} ns/call (min {min:.0}, max {max:.0}; aim: under 15000 ns)"
    );
}
