import { expect, test, type APIRequestContext } from "@playwright/test";
import {
  allExpandedLines,
  cards,
  createConversation,
  processesMatching,
  sendChat,
  startProxy,
  unique,
  waitConnected,
} from "./helpers";
import { startNats, type Nats } from "./nats";
import { startServer, stopAll, type Server } from "./server";

/** The conversation's stored messages on `base`, and its command output's lines. */
async function storedLines(request: APIRequestContext, base: string, id: string) {
  const stored = await (await request.get(`${base}/api/conversations/${id}/messages`)).json();
  const lines: string[] = stored
    .filter((m: { type: string }) => m.type === "tool_output")
    .map((m: { content: string }) => m.content)
    .join("")
    .split("\r\n")
    .filter((l: string) => l !== "");
  return { stored, lines };
}

// Replicas on one NATS: each conversation is run by the replica that owns it; every
// replica serves the same pages and streams and forwards changes to the owner.
test.describe("replicas on NATS", () => {
  let nats: Nats | undefined;
  let replicas: Server[] = [];
  test.afterEach(async () => {
    const stopping = replicas;
    replicas = [];
    try {
      await stopAll(stopping);
    } finally {
      await nats?.stop();
    }
  });

  test("a page on one replica watches and steers a command that runs on another", async ({
    page,
    request,
  }) => {
    nats = await startNats();
    const args = ["--nats", nats.url, "--nats-prefix", unique("e2e")];
    const a = await startServer({ args });
    replicas.push(a);
    const b = await startServer({ args });
    replicas.push(b);

    // Created through A, which owns it; everything else goes through B, and the
    // command runs on A.
    const conversation = await createConversation(request, { base: a.url });
    await page.goto(`${b.url}/c/${conversation.id}`);
    await waitConnected(page);
    const marker = `654.${Math.floor(Math.random() * 1e9)}`;
    await sendChat(page, `for i in $(seq 1 30); do echo n-$i; done; sleep ${marker}`);
    const card = cards(page).first();
    await expect(card.getByTestId("output")).toContainText("n-30");
    await expect.poll(() => processesMatching(`sleep ${marker}`).length).toBeGreaterThan(0);

    await card.getByTestId("cancel-tool").click();
    await expect(card).toHaveAttribute("data-status", "cancelled");
    await expect.poll(() => processesMatching(`sleep ${marker}`)).toEqual([]);
    await expect(page.getByTestId("agent-message").last()).toHaveText("Command cancelled.");

    // The page on B shows exactly what A stored, once and in order. B can show the
    // turn's end a moment before A's own reads do (A shows its append once JetStream's
    // ack is back), so first wait until A serves as much as the page shows.
    const dom = await page.getByTestId("timeline").evaluate((el) =>
      Array.from(el.querySelectorAll(".item[data-idx]"), (i) => Number(i.getAttribute("data-idx"))),
    );
    expect(new Set(dom).size).toBe(dom.length);
    await expect
      .poll(async () => (await storedLines(request, a.url, conversation.id)).stored.length)
      .toBe(Math.max(...dom) + 1);
    const { lines } = await storedLines(request, a.url, conversation.id);
    expect(lines).toEqual(Array.from({ length: 30 }, (_, i) => `n-${i + 1}`));
    await card.getByTestId("expand").click();
    expect(await allExpandedLines(card)).toEqual(lines);
  });

  test("the page rides through its owner's death onto another replica", async ({ page, request }) => {
    nats = await startNats();
    const proxy = await startProxy();
    const args = [
      "--nats", nats.url,
      "--nats-prefix", unique("e2e"),
      "--nats-lease-secs", "3",
      "--allow-host", `127.0.0.1:${proxy.port}`,
    ];
    const a = await startServer({ args });
    replicas.push(a);
    const b = await startServer({ args });
    replicas.push(b);
    proxy.target = a.url;

    const conversation = await createConversation(request, { base: a.url });
    await page.goto(`${proxy.url}/c/${conversation.id}`);
    await waitConnected(page);
    const indicator = page.getByTestId("connection");
    await sendChat(page, "for i in $(seq 1 400); do echo n-$i; sleep 0.05; done");
    const card = cards(page).first();
    await expect(card.getByTestId("output")).toContainText("n-20");

    await a.kill();
    await expect(indicator).toHaveAttribute("data-state", "reconnecting");
    // A health-checking balancer sends the page to B at once; the page streams
    // from it while it takes the conversation over.
    proxy.target = b.url;
    await waitConnected(page, 30_000);
    await expect(card).toHaveAttribute("data-status", "interrupted", { timeout: 30_000 });
    await waitConnected(page, 30_000);

    // What the dead replica stored is shown once, in order.
    const { lines } = await storedLines(request, b.url, conversation.id);
    expect(lines.length).toBeGreaterThanOrEqual(20);
    lines.forEach((line: string, i: number) => expect(line).toBe(`n-${i + 1}`));
    await card.getByTestId("expand").click();
    expect(await allExpandedLines(card)).toEqual(lines);

    // The next turn runs on the new owner.
    await sendChat(page, "echo after-failover");
    const next = cards(page).nth(1);
    await expect(next).toHaveAttribute("data-status", "completed", { timeout: 15_000 });
    await expect(next.getByTestId("output")).toContainText("after-failover");
    await expect(page.getByTestId("user-message")).toHaveCount(2);
    const dom = await page.getByTestId("timeline").evaluate((el) =>
      Array.from(el.querySelectorAll(".item[data-idx]"), (i) => Number(i.getAttribute("data-idx"))),
    );
    expect(new Set(dom).size).toBe(dom.length);
    await proxy.close();
  });
});
