import { expect, test } from "@playwright/test";
import * as http from "node:http";
import { allExpandedLines, cards, createConversation, sendChat, waitConnected } from "./helpers";
import { startServer, type Server } from "./server";

/**
 * An HTTP proxy that knows how many conversation streams are open through it right
 * now: the server's side of "is the EventSource still there?".
 */
async function startStreamCounter() {
  const counter = { target: "", open: 0, opened: 0, url: "", port: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    const upstream = new URL(counter.target);
    const up = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
    if (/^\/api\/conversations\/[^/]+\/stream/.test(req.url ?? "")) {
      counter.open += 1;
      counter.opened += 1;
      // The browser hanging up is the EventSource closing.
      res.on("close", () => {
        counter.open -= 1;
        up.destroy();
      });
    }
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as import("node:net").AddressInfo;
  counter.port = port;
  counter.url = `http://127.0.0.1:${port}`;
  counter.close = () =>
    new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    });
  return counter;
}

test.describe("stream worker", () => {
  let server: Server | undefined;
  test.afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  test("a flood streams through the worker, every line once and in order; leaving closes its stream", async ({
    page,
    request,
  }) => {
    const proxied = await startStreamCounter();
    // The server must accept the proxy's Host (a loopback server checks it).
    server = await startServer({ args: ["--allow-host", `127.0.0.1:${proxied.port}`] });
    proxied.target = server.url;
    try {
      // Every EventSource the page itself makes; the conversation's must not be one.
      await page.addInitScript(() => {
        const Real = window.EventSource;
        const opened: string[] = [];
        (window as unknown as { pageStreams: string[] }).pageStreams = opened;
        window.EventSource = class extends Real {
          constructor(url: string | URL, init?: EventSourceInit) {
            super(url, init);
            opened.push(String(url));
          }
        };
      });
      const conversation = await createConversation(request, { base: server.url });
      const worker = page.waitForEvent("worker", (w) => w.url().endsWith("/stream-worker.js"));
      await page.goto(`${proxied.url}/c/${conversation.id}`);
      await waitConnected(page);
      const streamWorker = await worker;
      await expect.poll(() => proxied.open).toBe(1);
      const pageStreams = await page.evaluate(() =>
        (window as unknown as { pageStreams: string[] }).pageStreams.filter((u) => u.includes("/stream")),
      );
      expect(pageStreams).toEqual([]);

      // Long lines, so the flood spans many events and the worker's batches.
      const n = 3000;
      const pad = "x".repeat(120);
      await sendChat(page, `seq 1 ${n} | sed 's/^/flood-/; s/$/ ${pad}/'`);
      const card = cards(page).first();
      await expect(card).toHaveAttribute("data-status", "completed", { timeout: 30_000 });
      await expect(card.locator(".card-foot")).toContainText(`${n} lines`);
      await card.getByTestId("expand").click();
      expect(await allExpandedLines(card)).toEqual(Array.from({ length: n }, (_, i) => `flood-${i + 1} ${pad}`));
      await expect(page.getByTestId("user-message")).toHaveCount(1);
      const dom = await page
        .getByTestId("timeline")
        .evaluate((el) => Array.from(el.querySelectorAll(".item[data-idx]"), (i) => Number(i.getAttribute("data-idx"))));
      expect(new Set(dom).size).toBe(dom.length);
      expect(proxied.opened).toBe(1);

      // Leaving the page in the app: the worker ends and its stream with it.
      const workerClosed = streamWorker.waitForEvent("close");
      await page.locator("a.back").click();
      await expect(page).toHaveURL(`${proxied.url}/`);
      await workerClosed;
      await expect.poll(() => proxied.open).toBe(0);
    } finally {
      await proxied.close();
    }
  });
});
