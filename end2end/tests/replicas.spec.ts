import { expect, test } from "@playwright/test";
import {
  allExpandedLines,
  cards,
  createConversation,
  sendChat,
  startProxy,
  unique,
  waitConnected,
} from "./helpers";
import { startNats, type Nats } from "./nats";
import { startReplica, type Replica } from "./server";

// Two replicas on one NATS behind a balancer (a TCP proxy the test points at the
// replica that serves, as a health-checking balancer would).
test.describe("replicas on NATS", () => {
  let nats: Nats | undefined;
  let replicas: Replica[] = [];
  test.afterEach(async () => {
    for (const r of replicas) await r.stop();
    replicas = [];
    await nats?.stop();
  });

  test("the page rides through the active replica's death onto the standby", async ({ page, request }) => {
    nats = await startNats();
    const proxy = await startProxy();
    const args = [
      "--nats", nats.url,
      "--nats-prefix", unique("e2e"),
      "--nats-lease-secs", "3",
      "--allow-host", `127.0.0.1:${proxy.port}`,
    ];
    const a = await startReplica({ args });
    replicas.push(a);
    expect(a.standby).toBe(false);
    const b = await startReplica({ args });
    replicas.push(b);
    expect(b.standby).toBe(true);
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
    await b.serving;
    proxy.target = b.url;
    await waitConnected(page, 30_000);
    await expect(card).toHaveAttribute("data-status", "interrupted");

    // What the dead replica stored is shown once, in order.
    const stored = await (await request.get(`${b.url}/api/conversations/${conversation.id}/messages`)).json();
    const lines = stored
      .filter((m: { type: string }) => m.type === "tool_output")
      .map((m: { content: string }) => m.content)
      .join("")
      .split("\r\n")
      .filter((l: string) => l !== "");
    expect(lines.length).toBeGreaterThanOrEqual(20);
    lines.forEach((line: string, i: number) => expect(line).toBe(`n-${i + 1}`));
    await card.getByTestId("expand").click();
    expect(await allExpandedLines(card)).toEqual(lines);

    // The next turn runs on the new active replica.
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
