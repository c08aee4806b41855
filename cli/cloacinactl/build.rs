//! Records the target triple this binary is built for: `run` loads the
//! native artifact built for it.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=CLOACINA_HOST_TARGET={target}");
}
