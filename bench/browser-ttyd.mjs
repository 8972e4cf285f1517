// The flood's frame times on ttyd's own page (xterm.js), for tether-bench to set beside
// Tether's, printed as one line of JSON:
//   node bench/browser-ttyd.mjs http://127.0.0.1:PORT
// ttyd was started with `-o bash -c '<flood>; echo TETHER-BENCH-DONE; sleep 600'`: the
// command runs when the page connects, and the flood counts as shown once xterm.js's
// buffer holds the marker line (ttyd exposes its terminal as `window.term`).
import { launch, pageMemoryMb, startFrames, stopFrames } from "./chromium.mjs";

const base = process.argv[2];
// xterm.js in headless Chromium without a GPU renders the flood far more slowly than
// it arrives (ttyd's flow control then slows the command): frames are recorded for at
// most this long, and `shown` says whether the whole flood was on screen by then.
const LIMIT_MS = 60_000;

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const t0 = performance.now();
  await page.goto(base, { waitUntil: "domcontentloaded" });
  const page_mb_before = await pageMemoryMb(browser, page);
  await startFrames(page);
  const shown = await page.waitForFunction(
    () => {
      const buffer = window.term?.buffer?.active;
      if (!buffer) return false;
      for (let i = buffer.length - 1; i >= Math.max(0, buffer.length - 40); i--) {
        if (buffer.getLine(i)?.translateToString(true).includes("TETHER-BENCH-DONE")) return true;
      }
      return false;
    },
    null,
    { polling: 250, timeout: LIMIT_MS },
  ).then(() => true, (e) => {
    if (e.name !== "TimeoutError") throw e;
    return false;
  });
  const flood_ms = performance.now() - t0;
  const frames = await stopFrames(page);
  const page_mb_after = await pageMemoryMb(browser, page);
  console.log(JSON.stringify({ shown, flood_ms, ...frames, page_mb_before, page_mb_after }));
} finally {
  await browser.close();
}
