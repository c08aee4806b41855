# Shared by scripts/test and scripts/demo: make sure the tools exist.

require_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found. Install Rust with rustup (https://rustup.rs), then run this again." >&2
        exit 1
    fi
}

# WebAssembly plugins are built for wasm32-unknown-unknown. rustup's target
# works where it can be installed; otherwise Debian's rustc-web builds std
# from source (see pack-tool/build/src/wasm.rs for how the pack tool picks).
ensure_wasm_toolchain() {
    if [ -n "${CLOACINA_WASM_RUSTC:-}" ]; then
        return
    fi
    if [ -d "$(rustc --print sysroot 2>/dev/null)/lib/rustlib/wasm32-unknown-unknown/lib" ]; then
        return
    fi
    if [ -x /usr/bin/rustc ] && [ -d "$(/usr/bin/rustc --print sysroot 2>/dev/null)/lib/rustlib/src/rust/library" ]; then
        return
    fi
    if command -v rustup >/dev/null 2>&1 && rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
        echo "installed rustup's wasm32-unknown-unknown target"
        return
    fi
    if command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's WebAssembly toolchain (rustc-web cargo-web rust-web-src lld-22)"
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq rustc-web cargo-web rust-web-src lld-22 >/dev/null
        return
    fi
    echo "error: no way to build WebAssembly plugins here: run 'rustup target add wasm32-unknown-unknown'," >&2
    echo "       or install Debian's rustc-web, cargo-web, rust-web-src and lld-22, or set CLOACINA_WASM_RUSTC." >&2
    exit 1
}
