// Profiles the browser flood scenario of browser.mjs with a Chromium performance trace
// (CDP Tracing, with V8 CPU samples) and explains each frame over 50 ms:
//   node bench/profile-flood.mjs http://127.0.0.1:PORT [flood-bytes] [trace.json]
// For every main-thread task overlapping a long frame it prints wall time, the
// thread's CPU time (much less than wall: the thread was descheduled) and the trace
// events inside; then the functions with the most CPU samples in the frame.
// The trace file, if named, loads in Chrome DevTools' Performance panel.
// Environment: NO_CPU=1 skips CPU sampling (less overhead); EXTRA_CATS=a,b adds trace
// categories (e.g. v8.wasm shows lazy compilation and memory growth).
//
// Function names need a bundle that keeps them: the release bundle's name section is
// stripped by wasm-opt. After `cargo leptos build --release`:
//   cp -a target/site /tmp/site-named
//   wasm-bindgen --target web --no-typescript --out-name tether --out-dir /tmp/wb \
//     target/front/wasm32-unknown-unknown/wasm-release/frontend.wasm
//   cp /tmp/wb/tether.js /tmp/site-named/pkg/ && cp /tmp/wb/tether_bg.wasm /tmp/site-named/pkg/tether.wasm
//   LEPTOS_SITE_ROOT=/tmp/site-named target/release/tether --addr 127.0.0.1:3900 --data-dir /tmp/pd
import { tmpdir } from "node:os";
import { writeFileSync } from "node:fs";

import { apiClient, launch } from "./chromium.mjs";

const base = process.argv[2];
const floodBytes = Number(process.argv[3] ?? 30_000_000);
const traceOut = process.argv[4];

const api = apiClient(base);

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const cdp = await page.context().newCDPSession(page);
  const c = await api("POST", "/api/conversations", { cwd: tmpdir() });
  await page.goto(`${base}/c/${c.id}`);
  await page.waitForSelector('[data-testid="connection"][data-state="connected"]', { timeout: 30_000 });

  const events = [];
  cdp.on("Tracing.dataCollected", (e) => events.push(...e.value));
  const done = new Promise((resolve) => cdp.once("Tracing.tracingComplete", resolve));
  await cdp.send("Tracing.start", {
    transferMode: "ReportEvents",
    traceConfig: {
      includedCategories: [
        "devtools.timeline", "disabled-by-default-devtools.timeline", "v8", "v8.execute",
        "blink.user_timing", "toplevel", "disabled-by-default-v8.gc",
        ...(process.env.NO_CPU ? [] : ["disabled-by-default-v8.cpu_profiler"]),
        ...(process.env.EXTRA_CATS ? process.env.EXTRA_CATS.split(",") : []),
      ],
    },
  });
  // Started after the tracing (whose start is a long task itself); a user-timing mark
  // per frame puts the frames on the trace's clock.
  await page.evaluate(() => {
    const tick = () => {
      performance.mark("frame");
      if (!window.__stop) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  const input = page.getByTestId("chat-input");
  await input.fill(`head -c ${floodBytes} /dev/urandom | base64`);
  await input.press("Enter");
  await page.waitForFunction(
    () => document.querySelector('[data-testid="tool-card"]')?.dataset.status === "completed",
    null,
    { polling: 250, timeout: 300_000 },
  );
  await page.evaluate(() => { window.__stop = true; });
  await cdp.send("Tracing.end");
  await done;
  if (traceOut) writeFileSync(traceOut, JSON.stringify({ traceEvents: events }));
  summarise(events);
} finally {
  await browser.close();
}

function summarise(events) {
  const main = mainThread(events);
  const onMain = (e) => e.pid === main.pid && e.tid === main.tid;
  const marks = events.filter((e) => e.name === "frame" && e.cat.includes("user_timing"))
    .map((e) => e.ts).sort((a, b) => a - b);
  const t0 = marks[0];
  const ms = (us) => (us / 1000).toFixed(1);
  const frames = marks.slice(1).map((t, i) => [marks[i], t]);
  const long = frames.filter(([a, b]) => b - a > 50_000);
  console.log(`frames ${frames.length}, over 50 ms: ${long.length}`);
  const slices = events.filter((e) => onMain(e) && e.ph === "X" && e.dur).sort((a, b) => a.ts - b.ts);
  const tasks = slices.filter((e) => e.name === "ThreadControllerImpl::RunTask");
  const samples = cpuSamples(events, main);
  for (const [from, to] of long) {
    console.log(`\nframe of ${ms(to - from)} ms at +${ms(from - t0)} ms`);
    for (const task of tasks) {
      const end = task.ts + task.dur;
      if (end < from || task.ts > to || task.dur < 1000) continue;
      const inside = new Map();
      for (const e of slices) {
        if (e.ts < task.ts || e.ts + e.dur > end || e === task || e.dur < 500) continue;
        inside.set(e.name, (inside.get(e.name) ?? 0) + e.dur);
      }
      const top = [...inside].sort((a, b) => b[1] - a[1]).slice(0, 8)
        .map(([n, d]) => `${n} ${ms(d)}`).join(", ");
      console.log(`  task +${ms(task.ts - from)}: wall ${ms(task.dur)}, cpu ${ms(task.tdur ?? NaN)}: ${top}`);
    }
    const self = new Map();
    for (const s of samples) {
      if (s.ts >= from && s.ts <= to) self.set(s.name, (self.get(s.name) ?? 0) + s.dt);
    }
    for (const [n, d] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 10)) {
      console.log(`    ${ms(d).padStart(6)} ms  ${n.slice(0, 150)}`);
    }
  }
}

function mainThread(events) {
  const names = events.filter((e) => e.ph === "M" && e.name === "thread_name" &&
    e.args?.name === "CrRendererMain");
  // The renderer with the most events is the page's.
  const count = (n) => events.filter((e) => e.pid === n.pid && e.tid === n.tid).length;
  const best = names.map((n) => [n, count(n)]).sort((a, b) => b[1] - a[1])[0][0];
  return { pid: best.pid, tid: best.tid };
}

// Flattens the sampled CPU profile (ProfileChunk events) into {ts, dt, name}.
function cpuSamples(events, main) {
  const nodes = new Map();
  const out = [];
  const profile = events.find((e) => e.name === "Profile" && e.pid === main.pid);
  if (!profile) return out;
  let ts = profile.args.data.startTime;
  for (const e of events) {
    if (e.name !== "ProfileChunk" || e.pid !== main.pid) continue;
    const data = e.args.data;
    for (const n of data.cpuProfile?.nodes ?? []) nodes.set(n.id, n);
    const ids = data.cpuProfile?.samples ?? [];
    const deltas = data.timeDeltas ?? [];
    for (let i = 0; i < ids.length; i++) {
      ts += deltas[i];
      const f = nodes.get(ids[i])?.callFrame;
      const name = f ? f.functionName || `(${(f.url ?? "").split("/").pop() || "anonymous"})` : "?";
      out.push({ ts, dt: Math.max(deltas[i + 1] ?? 0, 0), name });
    }
  }
  return out;
}
