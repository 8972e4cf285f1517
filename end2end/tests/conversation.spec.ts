import { expect, test } from "@playwright/test";
import {
  cards,
  chat,
  createConversation,
  openConversation,
  outputLines,
  processesMatching,
  screenshot,
  sendChat,
  tempCwd,
  unique,
  waitConnected,
  waitIdle,
} from "./helpers";

test.describe("conversation", () => {
  test("a chat message runs and its output streams in line by line", async ({ page }) => {
    // Start from the list, create the conversation in a temp dir with the form.
    await page.goto("/");
    await waitConnected(page);
    await page.getByTestId("new-cwd").fill(tempCwd());
    await page.getByTestId("create").click();
    await expect(page).toHaveURL(/\/c\/[0-9a-f]{32}$/);
    await waitConnected(page);

    await sendChat(page, "for i in 1 2 3 4 5; do echo line-$i; sleep 0.4; done");
    await expect(page.getByTestId("user-message")).toContainText("for i in 1 2 3 4 5");
    const card = cards(page).first();

    // One consistent snapshot per poll: which lines are there, and the card's status.
    const snapshot = () =>
      card.evaluate((el) => ({
        lines: Array.from(el.querySelectorAll('[data-testid="output"] .ln'), (l) => l.textContent ?? ""),
        status: el.getAttribute("data-status"),
      }));
    const partial = new Set<number>();
    const poll = async () => {
      const s = await snapshot();
      const n = s.lines.filter((l) => /^line-\d$/.test(l)).length;
      if (s.status === "running" && n > 0 && n < 5) partial.add(n);
      return s;
    };
    await expect
      .poll(
        async () => {
          const s = await poll();
          return s.status === "running" && s.lines.includes("line-1") && !s.lines.includes("line-5");
        },
        { intervals: [50], timeout: 10_000 },
      )
      .toBe(true);
    await screenshot(page, "running-card");
    await expect.poll(async () => (await poll()).status, { intervals: [50], timeout: 15_000 }).toBe("completed");
    // Several partial outputs were on screen while it ran: lines arrived one by one.
    expect(partial.size, `partial line counts seen: ${[...partial]}`).toBeGreaterThanOrEqual(3);

    await expect(card.getByTestId("status")).toHaveText("completed");
    await expect(card.getByTestId("exit-code")).toHaveText("exit 0");
    expect(await outputLines(card)).toEqual(["line-1", "line-2", "line-3", "line-4", "line-5"]);
    // Less noise: the card says it completed; no closing line repeats it, and the
    // command shows once (the card is the user's message).
    await expect(page.getByTestId("agent-message")).toHaveCount(0);
    await expect(page.getByTestId("user-message")).toHaveCount(1);
    await expect(page.locator(".msg.user")).toHaveCount(0);
  });

  test("cancel from the card stops the command and its processes", async ({ page, request }) => {
    const conversation = await createConversation(request);
    await openConversation(page, conversation.id);
    const marker = `987.${Math.floor(Math.random() * 1e9)}`;
    // Ignores SIGINT, so the stop takes until the SIGTERM step (2 s later): the
    // "stopping…" state is really on screen for a while.
    await sendChat(page, `trap '' INT; echo started; sleep ${marker}`);
    const card = cards(page).first();
    await expect(card.getByTestId("output")).toContainText("started");
    await expect.poll(() => processesMatching(`sleep ${marker}`).length).toBeGreaterThan(0);

    const button = card.getByTestId("cancel-tool");
    await expect(button).toHaveText("Cancel");
    await button.click();
    // Feedback at once, before the server confirms.
    await expect(button).toHaveText("Stopping…", { timeout: 1_000 });
    await expect(button).toBeDisabled();
    await expect(card.getByTestId("status")).toHaveText("stopping…");
    await expect(card).toHaveAttribute("data-status", "running");
    await screenshot(page, "stopping-card");
    await expect(card).toHaveAttribute("data-status", "cancelled");
    await expect(card.getByTestId("status")).toHaveText("cancelled");
    await expect(card.getByTestId("cancel-tool")).toHaveCount(0);
    await expect(page.getByTestId("agent-message").last()).toHaveText("Command cancelled.");
    await expect.poll(() => processesMatching(`sleep ${marker}`)).toEqual([]);
    await screenshot(page, "cancelled-card");
  });

  test("Stop ends the turn and drops the queued message", async ({ page, request }) => {
    const conversation = await createConversation(request);
    await openConversation(page, conversation.id);
    const marker = `876.${Math.floor(Math.random() * 1e9)}`;
    await sendChat(page, `sleep ${marker}`);
    await expect(cards(page).first()).toHaveAttribute("data-status", "running");
    await sendChat(page, "echo should-not-run");
    await expect(page.getByTestId("queued")).toHaveText("1 queued");

    await page.getByTestId("stop").click();
    const card = cards(page).first();
    await expect(card).toHaveAttribute("data-status", "cancelled");
    await expect(page.getByTestId("agent-message").last()).toContainText("Turn stopped: stopped by the user.");
    await expect(page.getByTestId("agent-message").last()).toContainText("1 queued message(s) were not run.");
    await expect(page.getByTestId("queued")).toHaveCount(0);
    await expect(page.getByTestId("stop")).toHaveCount(0);
    await expect(page.getByTestId("run-state")).toHaveText("idle");
    await expect(cards(page)).toHaveCount(1);
    await expect.poll(() => processesMatching(`sleep ${marker}`)).toEqual([]);
  });

  test("find highlights matches and steps through them", async ({ page, request }) => {
    const conversation = await createConversation(request);
    const word = unique("zebra");
    await chat(request, conversation.id, `echo one; echo ${word}-a; echo two`);
    await waitIdle(request, conversation.id);
    await chat(request, conversation.id, `echo ${word}-b`);
    await waitIdle(request, conversation.id);
    await openConversation(page, conversation.id);
    await expect(cards(page)).toHaveCount(2);

    await page.getByTestId("find-toggle").click();
    await expect(page.getByTestId("find-input")).toBeFocused();
    await page.getByTestId("find-input").fill(word);
    // Two cards (each one is also its user message, shown once).
    await expect(page.getByTestId("find-count")).toHaveText("1 of 2");
    await expect(page.locator(".item.hit")).toHaveCount(2);
    await expect(page.locator(".item.hit").filter({ has: page.getByTestId("tool-card") })).toHaveCount(2);
    // The matching output lines are marked too.
    await expect(page.locator(".term .ln.hit")).toHaveText([`${word}-a`, `${word}-b`]);
    // The current match is marked and scrolled to: the first one right away.
    const current = page.locator(".item.hit[data-current]");
    await expect(current).toHaveCount(1);
    await expect(current).toHaveAttribute("data-idx", await page.locator(".item.hit").first().getAttribute("data-idx") ?? "");
    await page.getByTestId("find-next").click();
    await expect(page.getByTestId("find-count")).toHaveText("2 of 2");
    await expect(current).toHaveCount(1);
    await expect(current).toHaveAttribute("data-idx", await page.locator(".item.hit").nth(1).getAttribute("data-idx") ?? "");
    await expect(current).toBeInViewport();
    await page.getByTestId("find-next").click();
    await expect(page.getByTestId("find-count")).toHaveText("1 of 2");
    await screenshot(page, "find");
    await page.getByTestId("find-prev").click();
    await expect(page.getByTestId("find-count")).toHaveText("2 of 2");
    await page.getByTestId("find-input").press("Enter");
    await expect(page.getByTestId("find-count")).toHaveText("1 of 2");

    await page.getByTestId("find-input").fill("no-such-text-anywhere");
    await expect(page.getByTestId("find-count")).toHaveText("no matches");
    await expect(page.locator(".item.hit")).toHaveCount(0);
  });

  test("restart dialog prefills the first prompt and reruns it; downloads are attachments", async ({
    page,
    request,
  }) => {
    const conversation = await createConversation(request);
    const word = unique("first-");
    await openConversation(page, conversation.id);
    await sendChat(page, `echo ${word}`);
    await expect(cards(page).first()).toHaveAttribute("data-status", "completed");
    await sendChat(page, "echo second");
    await expect(cards(page).nth(1)).toHaveAttribute("data-status", "completed");

    await page.getByTestId("restart-open").click();
    await expect(page.getByTestId("restart-prompt")).toHaveValue(`echo ${word}`);
    await screenshot(page, "restart-dialog");
    await page.getByTestId("restart-submit").click();
    await expect(page.getByTestId("restart-dialog")).toHaveCount(0);
    await expect(page.getByTestId("restart-marker")).toHaveText("Conversation restarted.");
    await expect(cards(page)).toHaveCount(3);
    await expect(cards(page).nth(2)).toHaveAttribute("data-status", "completed");
    await expect(cards(page).nth(2).getByTestId("output")).toHaveText(word);
    // The rerun comes after the marker.
    const order = await page
      .locator('[data-testid="restart-marker"], [data-testid="tool-card"]')
      .evaluateAll((els) => els.map((e) => e.getAttribute("data-testid")));
    expect(order).toEqual(["tool-card", "tool-card", "restart-marker", "tool-card"]);

    for (const [testid, ext, type] of [
      ["download-json", "json", "application/json"],
      ["download-text", "txt", "text/plain"],
    ] as const) {
      const link = page.getByTestId(testid);
      await expect(link).toHaveAttribute("download", "");
      const href = await link.getAttribute("href");
      const res = await page.request.get(href!);
      expect(res.status()).toBe(200);
      expect(res.headers()["content-type"]).toContain(type);
      expect(res.headers()["content-disposition"]).toBe(
        `attachment; filename="tether-${conversation.id}.${ext}"`,
      );
      expect(await res.text()).toContain(word);
    }
  });

  test("jump to latest appears when scrolled up during output and goes to the bottom", async ({
    page,
    request,
  }) => {
    await page.setViewportSize({ width: 1000, height: 600 });
    const conversation = await createConversation(request);
    // Enough history to scroll.
    for (let i = 0; i < 4; i++) {
      await chat(request, conversation.id, `seq 1 15`);
    }
    await waitIdle(request, conversation.id);
    await openConversation(page, conversation.id);
    const timeline = page.getByTestId("timeline");
    const metrics = () =>
      timeline.evaluate((el) => ({ top: el.scrollTop, max: el.scrollHeight - el.clientHeight }));
    await expect.poll(async () => (await metrics()).max).toBeGreaterThan(200);
    await expect.poll(async () => { const m = await metrics(); return m.max - m.top; }).toBeLessThan(50);

    await chat(request, conversation.id, "for i in $(seq 1 50); do echo tick-$i; sleep 0.1; done");
    await expect(cards(page)).toHaveCount(5);
    await timeline.hover();
    await page.mouse.wheel(0, -5000);
    await expect.poll(async () => (await metrics()).top).toBeLessThan(10);
    const jump = page.getByTestId("jump-latest");
    await expect(jump).toBeVisible();
    await expect(jump).toHaveText(/^↓ \d+ new$/);
    // It keeps counting while we stay up there.
    const first = Number((await jump.innerText()).match(/\d+/)![0]);
    await expect.poll(async () => Number((await jump.innerText()).match(/\d+/)![0])).toBeGreaterThan(first);
    expect((await metrics()).top).toBeLessThan(10);

    await jump.click();
    await expect(jump).toHaveCount(0);
    await expect.poll(async () => { const m = await metrics(); return m.max - m.top; }).toBeLessThan(50);
    // And it follows the output again afterwards.
    await expect(cards(page).last()).toHaveAttribute("data-status", "completed", { timeout: 15_000 });
    await expect.poll(async () => { const m = await metrics(); return m.max - m.top; }).toBeLessThan(50);
  });
});
