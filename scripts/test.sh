#!/usr/bin/env bash
# Sets up what is missing and runs every check: formatting, clippy, the Rust tests,
# and the Playwright tests in headless Chromium against a freshly built server.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
ensure_build_tools
ensure_test_tools

step "cargo fmt --check"
cargo fmt --all -- --check
step "clippy (server, shared app code, browser bundle)"
cargo clippy -p server --all-targets --locked -- -D warnings
cargo clippy -p app --all-targets --locked -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown --locked -- -D warnings
cargo clippy -p tether-bench --all-targets --locked -- -D warnings
cargo clippy -p tether-testkit --all-targets --locked -- -D warnings
cargo clippy -p tether-fake-agent --all-targets --locked -- -D warnings
cargo clippy -p tether-fake-model --all-targets --locked -- -D warnings
step "Rust tests"
cargo test -p app --locked
# The ACP tests (Rust and Playwright) drive the scriptable fake agent and the fake
# model server as programs.
cargo build -p tether-fake-agent -p tether-fake-model --locked
cargo test -p server --locked
step "the server's tests again, every conversation kept in NATS JetStream"
start_test_nats
cargo test -p server --locked
stop_test_nats
cargo test -p tether-bench --locked
cargo test -p tether-testkit --locked
cargo test -p tether-fake-agent --locked
cargo test -p tether-fake-model --locked
step "release build for the browser tests"
cargo leptos build --release
step "benchmark harness smoke run (correctness only, no timing)"
cargo run --release -p tether-bench --locked -- --smoke
step "Playwright (headless Chromium)"
(cd end2end && npx playwright test)
step "all tests passed"
