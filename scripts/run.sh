#!/usr/bin/env bash
# Sets up what is missing, builds Tether in release mode and starts it on
# http://127.0.0.1:3000 (extra arguments go to `tether`, e.g. --addr, --data-dir).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
ensure_build_tools
step "building (cargo leptos build --release)"
cargo leptos build --release
step "starting Tether"
exec "$ROOT/target/release/tether" "$@"
