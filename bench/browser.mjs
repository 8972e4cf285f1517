// Browser figures for tether-bench, printed as one line of JSON:
//   node bench/browser.mjs http://127.0.0.1:PORT [flood-bytes]
// - render_live_ms: from pressing Enter on `seq 1 100000` until the tool card is
//   `completed` and its output shows the line 100000;
// - render_load_ms: opening that finished conversation until the same holds;
// - frames: requestAnimationFrame deltas while `head -c N /dev/urandom | base64` streams;
// - page_mb_before / page_mb_after: the page's memory just before that flood and once
//   it is all shown; page_mb_after_4x: once a flood four times as large is shown in
//   another conversation (each card keeps its last 200,000 lines, so it should not
//   grow with the flood).
import { tmpdir } from "node:os";

import { apiClient, launch, pageMemoryMb, startFrames, stopFrames } from "./chromium.mjs";

const base = process.argv[2];
const floodBytes = Number(process.argv[3] ?? 30_000_000);
const lines = Number(process.argv[4] ?? 100_000);

const api = apiClient(base);

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const open = async (id) => {
    await page.goto(`${base}/c/${id}`);
    await page.waitForSelector('[data-testid="connection"][data-state="connected"]', { timeout: 30_000 });
  };
  const send = async (text) => {
    const input = page.getByTestId("chat-input");
    await input.fill(text);
    const t0 = performance.now();
    await input.press("Enter");
    return t0;
  };
  const lastLineIs = (want) =>
    page.waitForFunction(
      (want) => {
        const card = document.querySelector('[data-testid="tool-card"]');
        if (!card || card.dataset.status !== "completed") return false;
        const rows = card.querySelectorAll('[data-testid="output"] .ln');
        return rows.length > 0 && rows[rows.length - 1].textContent === want;
      },
      String(want),
      { polling: "raf", timeout: 180_000 },
    );

  const completed = () =>
    page.waitForFunction(
      () => document.querySelector('[data-testid="tool-card"]')?.dataset.status === "completed",
      null,
      { polling: 250, timeout: 300_000 },
    );

  const c1 = await api("POST", "/api/conversations", { cwd: tmpdir() });
  await open(c1.id);
  const t0 = await send(`seq 1 ${lines}`);
  await lastLineIs(lines);
  const render_live_ms = performance.now() - t0;

  const t1 = performance.now();
  await open(c1.id);
  await lastLineIs(lines);
  const render_load_ms = performance.now() - t1;

  const c2 = await api("POST", "/api/conversations", { cwd: tmpdir() });
  await open(c2.id);
  const page_mb_before = await pageMemoryMb(browser, page);
  await startFrames(page);
  const t2 = await send(`head -c ${floodBytes} /dev/urandom | base64`);
  await completed();
  const flood_ms = performance.now() - t2;
  const frames = await stopFrames(page);
  const page_mb_after = await pageMemoryMb(browser, page);

  const c3 = await api("POST", "/api/conversations", { cwd: tmpdir() });
  await open(c3.id);
  await send(`head -c ${4 * floodBytes} /dev/urandom | base64`);
  await completed();
  const page_mb_after_4x = await pageMemoryMb(browser, page);
  console.log(
    JSON.stringify({
      render_live_ms, render_load_ms, flood_ms, ...frames, page_mb_before, page_mb_after, page_mb_after_4x,
    }),
  );
} finally {
  await browser.close();
}
