// What bench/browser.mjs and bench/profile-flood.mjs share: Debian's Chromium,
// headless, through playwright-core from end2end/, and a small client for Tether's API.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(new URL("../end2end/package.json", import.meta.url));
const { chromium } = require("playwright-core");

export function launch() {
  return chromium.launch({
    executablePath: process.env.TETHER_CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

// `api(method, path, body)` against the server at `base`; throws on any non-2xx answer.
export function apiClient(base) {
  return async function api(method, path, body) {
    const res = await fetch(base + path, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
}

// Starts recording `requestAnimationFrame` deltas in `page`.
export async function startFrames(page) {
  await page.evaluate(() => {
    window.__frames = [];
    let last = performance.now();
    const tick = (t) => {
      window.__frames.push(t - last);
      last = t;
      if (!window.__stop) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}

// Stops recording and summarises the frame times: count, p50, p99, max and how many
// took over 50 and over 100 ms.
export async function stopFrames(page) {
  const frames = await page.evaluate(() => {
    window.__stop = true;
    return window.__frames.slice(1);
  });
  frames.sort((a, b) => a - b);
  const q = (p) => frames[Math.min(frames.length - 1, Math.max(0, Math.ceil(p * frames.length) - 1))];
  return {
    frames: frames.length,
    frame_p50_ms: q(0.5),
    frame_p99_ms: q(0.99),
    frame_max_ms: frames[frames.length - 1],
    frames_over_50ms: frames.filter((f) => f > 50).length,
    frames_over_100ms: frames.filter((f) => f > 100).length,
  };
}

// The page's memory in MB: the resident size of the largest renderer process, which
// holds everything the page keeps (JS heap, WASM memory, DOM, its workers), after a
// garbage collection of the page's JS heap so that what is measured is what it keeps,
// not what V8 has yet to collect. Chromium's other renderers are spares of a few tens
// of MB. Linux only (/proc).
export async function pageMemoryMb(browser, page) {
  const session = await page.context().newCDPSession(page);
  try {
    await session.send("HeapProfiler.collectGarbage");
  } finally {
    await session.detach();
  }
  const cdp = await browser.newBrowserCDPSession();
  try {
    const { processInfo } = await cdp.send("SystemInfo.getProcessInfo");
    let kb = 0;
    for (const p of processInfo.filter((p) => p.type === "renderer")) {
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p.id}/status`, "utf8"));
      if (rss) kb = Math.max(kb, Number(rss[1]));
    }
    return kb / 1024;
  } finally {
    await cdp.detach();
  }
}
