//! Records the target triple the tests run on: the packages they build
//! carry native artifacts for it.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=CLOACINA_TESTS_TARGET={target}");
}
