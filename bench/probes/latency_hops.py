#!/usr/bin/env python3
r"""Where a marker line's milliseconds go, hop by hop, from a probed build's log.

A measuring build only (never merged; see BENCHMARKS.md, "Issue 15 §2: where a line
waits"):

    git worktree add /tmp/probe HEAD && cd /tmp/probe
    git apply bench/probes/latency-hops.patch
    cargo build --release -p server --bin tether
    # tether-bench clears TETHER_* from the server's environment, so wrap it:
    printf '#!/bin/sh\nexport TETHER_HOPS=/tmp/hops/$$.txt\nexec %s "$@"\n' \
        "$PWD/target/release/tether" > /tmp/probed && chmod +x /tmp/probed
    mkdir -p /tmp/hops
    tether-bench --tether /tmp/probed --runs 1 --only latency
    python3 bench/probes/latency_hops.py /tmp/hops/*.txt   # one file per server

For each stage: when the marker got there (since the tick command wrote it) and how
long the hop into that stage took, p50 / p99 / max in ms, and which hops the slowest
2 % of lines spent their time in.
"""
import collections
import sys

STAGES = {
    0: "PTY read",        # the PTY's reader thread has the bytes
    1: "batcher sends",   # the batcher (a runtime task) hands the piece on
    2: "tool task",       # the call's task has it
    3: "append task",     # the log's append task has it (before the log's lock)
    4: "writer starts",   # the store's writer thread begins its transaction
    5: "committed",       # ... and has committed it
    6: "published",       # the log has told its readers
    7: "stream sends",    # the SSE stream yields its frame
}


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] / 1e6


def report(path):
    seen = collections.defaultdict(dict)
    with open(path) as f:
        for line in f:
            stage, sent, waited = map(int, line.split())
            seen[sent].setdefault(stage, waited)
    print(f"{path}: {len(seen)} markers")
    stages = sorted({s for marks in seen.values() for s in marks})
    prev = None
    for s in stages:
        total = [m[s] for m in seen.values() if s in m]
        hop = [m[s] - m[prev] for m in seen.values() if s in m and prev in m] if prev is not None else total
        print(
            f"  {STAGES.get(s, s):14} at p50 {quantile(total, .5):6.2f} p99 {quantile(total, .99):6.2f} "
            f"max {quantile(total, 1):6.2f} | hop p50 {quantile(hop, .5):6.2f} "
            f"p99 {quantile(hop, .99):6.2f} max {quantile(hop, 1):6.2f}"
        )
        prev = s
    last = stages[-1]
    slowest = sorted(seen.values(), key=lambda m: m.get(last, 0))[-max(1, len(seen) // 50):]
    spent = collections.Counter()
    for marks in slowest:
        for a, b in zip(stages, stages[1:]):
            if a in marks and b in marks:
                spent[STAGES.get(b, b)] += (marks[b] - marks[a]) / 1e6
    print("  slowest 2 %, ms in each hop:", {k: round(v, 1) for k, v in spent.most_common()})


for p in sys.argv[1:]:
    report(p)
