//! Per-call overhead of a task, printed as figures.
//!
//! `cargo bench -p cloacina-loader --bench call`
//!
//! A near-no-op task (`fan-out`'s `split`: read one key, return one key)
//! with a small JSON context, called back to back; the figure includes JSON
//! parsing of the context in the plugin and the output check in the host,
//! which every real call pays. Aim: native in-process under 2 us.

use std::hint::black_box;
use std::time::Instant;

use cloacina_loader::native::NativePlugin;
use cloacina_loader::{CallControl, Plugin};

fn main() {
    let library = cloacina_tests::sample_library("fan-out");

    let started = Instant::now();
    let plugin = NativePlugin::load(library).expect("fan-out loads");
    println!(
        "native load (dlopen + layout check + declaration): {:.2} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    let context = r#"{"base":3,"run":"bench","note":"a small context of about ninety bytes"}"#;
    let control = CallControl::new();
    for _ in 0..10_000 {
        black_box(plugin.call("split", context, &control).expect("split"));
    }
    let mut per_call = Vec::new();
    for _ in 0..21 {
        let calls = 20_000;
        let started = Instant::now();
        for _ in 0..calls {
            black_box(
                plugin
                    .call("split", black_box(context), &control)
                    .expect("split"),
            );
        }
        per_call.push(started.elapsed().as_secs_f64() * 1e9 / f64::from(calls));
    }
    per_call.sort_by(f64::total_cmp);
    println!(
        "native in-process call, {}-byte context: median {:.0} ns/call (min {:.0}, max {:.0}; aim: under 2000 ns)",
        context.len(),
        per_call[per_call.len() / 2],
        per_call[0],
        per_call[per_call.len() - 1]
    );
}
