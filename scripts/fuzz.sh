#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time each (default 60 s):
#   scripts/fuzz.sh [seconds-per-target] [target...]
# Not part of scripts/test.sh or CI: it needs cargo-fuzz (`cargo install cargo-fuzz
# --locked`) and nightly compiler features, which this stable toolchain unlocks with
# RUSTC_BOOTSTRAP=1 (set below; a nightly toolchain works without it). A crash stops
# the run with a non-zero exit and leaves the input in fuzz/artifacts/<target>/;
# replay it with `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>`.
# Set FUZZ_JOBS (default 1) to run that many workers per target (`-fork=N`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(chunker ansi api_bodies)
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is not installed; run: cargo install cargo-fuzz --locked" >&2
    exit 2
fi
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
jobs="${FUZZ_JOBS:-1}"

cargo fuzz build
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    echo "== fuzz.sh: $target for ${seconds}s"
    extra=()
    if [ "$jobs" -gt 1 ]; then
        extra+=("-fork=$jobs")
    fi
    cargo fuzz run "$target" -- -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}"
done
echo "== fuzz.sh: no crash in ${#targets[@]} target(s), ${seconds}s each"
