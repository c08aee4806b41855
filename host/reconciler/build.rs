//! Records the target triple this host is built for: the reconciler loads
//! the native artifact built for it (and its tests pack for it).
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=CLOACINA_HOST_TARGET={target}");
    println!("cargo:rustc-env=CLOACINA_TEST_TARGET={target}");
}
