import { expect, test } from "@playwright/test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  allExpandedLines,
  cards,
  chat,
  createConversation,
  outputLines,
  screenshot,
  sendChat,
  startProxy,
  waitConnected,
  waitIdle,
} from "./helpers";
import { startServer, stopAll, type Server } from "./server";

test.describe("resilience", () => {
  let servers: Server[] = [];
  test.afterEach(async () => {
    const stopping = servers;
    servers = [];
    await stopAll(stopping);
  });

  test("a killed and restarted server: reconnecting, connected, no duplicated or missing lines", async ({
    page,
    request,
  }) => {
    const dataDir = mkdtempSync(join(tmpdir(), "tether-e2e-crash-"));
    try {
      const first = await startServer({ dataDir });
      const base = first.url;
      const conversation = await createConversation(request, { base });
      await page.goto(`${base}/c/${conversation.id}`);
      await waitConnected(page);
      const indicator = page.getByTestId("connection");
      await expect(indicator).toHaveAttribute("data-reconnects", "0");

      await sendChat(page, "for i in $(seq 1 400); do echo n-$i; sleep 0.05; done");
      const card = cards(page).first();
      await expect(card.getByTestId("output")).toContainText("n-20");
      await expect(card).toHaveAttribute("data-status", "running");

      // Crash mid-stream.
      await first.kill();
      await expect(indicator).toHaveAttribute("data-state", "reconnecting");
      await expect(page.getByTestId("chat-offline")).toBeVisible();
      await expect(page.getByTestId("send")).toBeDisabled();
      await screenshot(page, "reconnecting-indicator");
      // A message typed while disconnected is refused but kept in the box.
      const input = page.getByTestId("chat-input");
      await input.fill("for i in $(seq 1 30); do echo m-$i; sleep 0.02; done");
      await input.press("Enter");
      await expect(page.getByTestId("chat-error")).toContainText("Not connected");
      await expect(input).toHaveValue(/seq 1 30/);

      // Same port, same data: crash recovery closes the open call as interrupted.
      const second = await startServer({ dataDir, port: first.port });
      servers.push(second);
      await waitConnected(page, 20_000);
      expect(Number(await indicator.getAttribute("data-reconnects"))).toBeGreaterThanOrEqual(1);
      await expect(card).toHaveAttribute("data-status", "interrupted");
      await expect(page.getByTestId("agent-message").last()).toContainText(
        "Turn interrupted: the server stopped before it finished.",
      );

      // Everything the first server stored before dying, shown once, in order.
      const expand = card.getByTestId("expand");
      const stored = await (await request.get(`${base}/api/conversations/${conversation.id}/messages`)).json();
      const storedText = stored
        .filter((m: { type: string }) => m.type === "tool_output")
        .map((m: { content: string }) => m.content)
        .join("");
      const storedLines = storedText.split("\r\n").filter((l: string) => l !== "");
      expect(storedLines.length).toBeGreaterThanOrEqual(20);
      storedLines.forEach((line: string, i: number) => expect(line).toBe(`n-${i + 1}`));
      await expect(card.locator(".card-foot")).toContainText(`${storedLines.length} lines`);
      await expand.click();
      expect(await allExpandedLines(card)).toEqual(storedLines);

      // The stream works after the restart: the kept message goes out now, and its
      // output streams in with every line exactly once.
      await input.press("Enter");
      await expect(input).toHaveValue("");
      await expect(page.getByTestId("chat-error")).toHaveCount(0);
      const next = cards(page).nth(1);
      await expect(next).toHaveAttribute("data-status", "completed", { timeout: 15_000 });
      await expect(next.locator(".card-foot")).toContainText("30 lines");
      await next.getByTestId("expand").click();
      expect(await allExpandedLines(next)).toEqual(Array.from({ length: 30 }, (_, i) => `m-${i + 1}`));
      await expect(cards(page)).toHaveCount(2);
      // Nothing replayed twice into the timeline: one user row per chat.
      await expect(page.getByTestId("user-message")).toHaveCount(2);
      const dom = await page.getByTestId("timeline").evaluate((el) =>
        Array.from(el.querySelectorAll(".item[data-idx]"), (i) => Number(i.getAttribute("data-idx"))),
      );
      expect(new Set(dom).size).toBe(dom.length);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("a network outage while output streams: reconnecting, back, every line exactly once", async ({
    page,
    request,
  }) => {
    // The server must accept the proxy's Host (a loopback server checks it).
    const proxy = await startProxy();
    const server = await startServer({ args: ["--allow-host", `127.0.0.1:${proxy.port}`] });
    servers.push(server);
    proxy.target = server.url;
    try {
      const conversation = await createConversation(request, { base: server.url });
      await page.goto(`${proxy.url}/c/${conversation.id}`);
      await waitConnected(page);
      const indicator = page.getByTestId("connection");
      await sendChat(page, "for i in $(seq 1 60); do echo o-$i; sleep 0.05; done");
      const card = cards(page).first();
      await expect(card.getByTestId("output")).toContainText("o-5");

      // The browser is cut off; the command goes on and finishes on the server.
      proxy.cut();
      await expect(indicator).toHaveAttribute("data-state", "reconnecting");
      await expect(page.getByTestId("chat-offline")).toBeVisible();
      await waitIdle(request, conversation.id, server.url);
      const seenDuringOutage = (await outputLines(card)).length;
      expect(seenDuringOutage).toBeLessThan(60);
      await expect(card).toHaveAttribute("data-status", "running");

      proxy.restore();
      await waitConnected(page, 15_000);
      expect(Number(await indicator.getAttribute("data-reconnects"))).toBeGreaterThanOrEqual(1);
      await expect(card).toHaveAttribute("data-status", "completed");
      await expect(card.locator(".card-foot")).toContainText("60 lines");
      await card.getByTestId("expand").click();
      expect(await allExpandedLines(card)).toEqual(Array.from({ length: 60 }, (_, i) => `o-${i + 1}`));
      // The card says it completed; no closing line repeats it.
      await expect(page.getByTestId("agent-message")).toHaveCount(0);
      await expect(page.getByTestId("user-message")).toHaveCount(1);
    } finally {
      await proxy.close();
    }
  });

  test("a conversation that no longer exists after a data reset shows 'gone'", async ({ page, request }) => {
    const first = await startServer();
    const conversation = await createConversation(request, { base: first.url });
    await page.goto(`${first.url}/c/${conversation.id}`);
    await waitConnected(page);
    await first.stop();
    // Same port, empty data directory: the conversation is unknown there.
    const second = await startServer({ port: first.port });
    servers.push(second);
    const indicator = page.getByTestId("connection");
    await expect(indicator).toHaveAttribute("data-state", "gone", { timeout: 15_000 });
    await expect(indicator).toHaveText("This conversation no longer exists");
    await expect(page.getByTestId("send")).toBeDisabled();
  });

  test("a silent stream is detected by the watchdog and reconnected", async ({ page, request }) => {
    const server = await startServer({ args: ["--heartbeat-secs", "60", "--client-timeout-secs", "2"] });
    servers.push(server);
    const conversation = await createConversation(request, { base: server.url });
    await page.goto(`${server.url}/c/${conversation.id}`);
    await waitConnected(page);
    const indicator = page.getByTestId("connection");
    await expect(indicator).toHaveAttribute("data-reconnects", "0");
    // Idle conversation, heartbeats every 60 s: after 2 s of silence the page gives up on
    // the stream, shows it, and reconnects by itself.
    await expect(indicator).toHaveAttribute("data-state", "reconnecting", { timeout: 8_000 });
    await expect(indicator).toHaveText(/Reconnecting in \d+ s \(attempt 1\)/);
    await waitConnected(page, 8_000);
    expect(Number(await indicator.getAttribute("data-reconnects"))).toBeGreaterThanOrEqual(1);
    // And the reconnected stream is live: a command sent now shows up.
    await chat(request, conversation.id, "echo after-watchdog", server.url);
    await expect(cards(page).first().getByTestId("output")).toHaveText("after-watchdog");
  });

  test("a conversation stream closed by a graceful restart resumes without loss", async ({ page, request }) => {
    const dataDir = mkdtempSync(join(tmpdir(), "tether-e2e-term-"));
    try {
      const first = await startServer({ dataDir });
      const conversation = await createConversation(request, { base: first.url });
      await chat(request, conversation.id, "seq 1 5", first.url);
      await page.goto(`${first.url}/c/${conversation.id}`);
      await waitConnected(page);
      await expect(cards(page).first()).toHaveAttribute("data-status", "completed");
      await first.stop({ keepData: true });
      await expect(page.getByTestId("connection")).toHaveAttribute("data-state", "reconnecting");
      const second = await startServer({ dataDir, port: first.port });
      servers.push(second);
      await waitConnected(page, 20_000);
      await chat(request, conversation.id, "seq 6 8", second.url);
      await expect(cards(page)).toHaveCount(2);
      await expect(cards(page).nth(1)).toHaveAttribute("data-status", "completed");
      expect(await outputLines(cards(page).first())).toEqual(["1", "2", "3", "4", "5"]);
      expect(await outputLines(cards(page).nth(1))).toEqual(["6", "7", "8"]);
      await expect(page.getByTestId("user-message")).toHaveCount(2);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
