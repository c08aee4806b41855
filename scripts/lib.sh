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

# PostgreSQL for the runtime's tests and benchmarks: CLOACINA_TEST_POSTGRES_URL,
# or the local server, started if it is installed but down. Under CI=true a
# missing PostgreSQL is an error; elsewhere the PostgreSQL halves of the
# tests are skipped, and this says so.
postgres_ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -d "$CLOACINA_TEST_POSTGRES_URL" >/dev/null 2>&1
    else
        (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
    fi
}

ensure_postgres() {
    export CLOACINA_TEST_POSTGRES_URL="${CLOACINA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
    if ! postgres_ready && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        echo "starting the local PostgreSQL"
        for version in $(ls /etc/postgresql); do
            pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
        done
        for _ in $(seq 1 30); do
            postgres_ready && break
            sleep 0.5
        done
    fi
    if postgres_ready; then
        echo "PostgreSQL: ${CLOACINA_TEST_POSTGRES_URL}"
        return
    fi
    if [ "${CI:-}" = "true" ]; then
        echo "error: no PostgreSQL at ${CLOACINA_TEST_POSTGRES_URL}, and CI=true requires one" >&2
        exit 1
    fi
    echo "WARNING: no PostgreSQL at ${CLOACINA_TEST_POSTGRES_URL}: the PostgreSQL halves of the runtime"
    echo "         tests will be SKIPPED (each prints SKIPPED). Set CLOACINA_TEST_POSTGRES_URL to run them."
    export CLOACINA_POSTGRES_SKIPPED=1
}

# A virtualenv at $1 (made with python3 -m venv, installing Debian's
# python3-venv first where it is missing).
ensure_venv() {
    local venv="$1"
    if [ ! -x "$venv/bin/python" ]; then
        if ! python3 -m venv "$venv" 2>/dev/null; then
            # Debian ships venv separately.
            if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
                echo "installing python3-venv (apt-get)"
                rm -rf "$venv"
                apt-get install -y -q python3-venv >/dev/null
                python3 -m venv "$venv"
            else
                echo "error: python3 -m venv failed; install your distribution's python3-venv" >&2
                return 1
            fi
        fi
    fi
}

# A virtualenv at $1 with the published Python SDK (cloacina-client 0.8.0).
ensure_sdk_venv() {
    ensure_venv "$1"
    "$1/bin/python" -m pip install --quiet --disable-pip-version-check "cloacina-client==0.8.0"
}

# A virtualenv at $1 with cloaca built from python/ (maturin, debug
# profile: it shares the workspace's compiled dependencies) and pytest.
ensure_cloaca_venv() {
    local venv="$1" repo
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    ensure_venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "maturin>=1.7,<2" "pytest>=8,<9"
    (cd "$repo/python" && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop --quiet --locked)
}
