import { expect, test } from "@playwright/test";
import { chat, createConversation, screenshot, tempCwd, unique, waitConnected } from "./helpers";
import { startServer } from "./server";

test.describe("foundation", () => {
  test("the server renders the list page and the browser hydrates it", async ({ page, request }) => {
    const conversation = await createConversation(request, { title: unique("ssr-") });

    // Raw HTML, no JavaScript: server-rendered markup, indicator still "connecting".
    const res = await request.get("/");
    expect(res.status()).toBe(200);
    expect(res.headers()["content-type"]).toContain("text/html");
    const html = await res.text();
    expect(html).toContain('data-testid="new-conversation"');
    expect(html).toContain('data-testid="conversation-list"');
    expect(html).toContain(conversation.title);
    expect(html).toMatch(/data-testid="connection"[^>]*data-state="connecting"|data-state="connecting"[^>]*data-testid="connection"/);

    // Only hydration plus an open EventSource turn the indicator to "connected".
    await page.goto("/");
    await waitConnected(page);
    await expect(page.getByTestId("conversation-row").filter({ hasText: conversation.title })).toBeVisible();
    await screenshot(page, "list-page");
  });

  test("the new-conversation form creates a conversation and navigates to it", async ({ page }) => {
    const cwd = tempCwd();
    const title = unique("form-");
    await page.goto("/");
    await waitConnected(page);
    await page.getByTestId("new-cwd").fill(cwd);
    await page.getByTestId("new-title").fill(title);
    await page.getByTestId("create").click();
    await expect(page).toHaveURL(/\/c\/[0-9a-f]{32}$/);
    await expect(page.getByTestId("title")).toHaveText(title);
    await expect(page.getByTestId("cwd")).toContainText(cwd);
    await waitConnected(page);
  });

  test("the list follows a conversation live over SSE: running, then idle", async ({ page, request }) => {
    const conversation = await createConversation(request, { title: unique("live-") });
    await page.goto("/");
    await waitConnected(page);
    const row = page.locator(`[data-testid="conversation-row"][data-id="${conversation.id}"]`);
    await expect(row).toHaveAttribute("data-status", "idle");

    // Started through the API: the page only learns about it from /api/events.
    await chat(request, conversation.id, "sleep 1.5; echo done");
    await expect(row).toHaveAttribute("data-status", "running");
    await expect(row).toHaveAttribute("data-status", "idle", { timeout: 15_000 });
    await expect(row.locator(".count")).toHaveText("5 messages");
    // No reload happened: the indicator never left "connected" and never reconnected.
    await expect(page.getByTestId("connection")).toHaveAttribute("data-reconnects", "0");
  });

  test("the list shows a conversation created elsewhere without a reload", async ({ page, request }) => {
    await page.goto("/");
    await waitConnected(page);
    const title = unique("elsewhere-");
    const created = await createConversation(request, { title });
    const row = page.locator(`[data-testid="conversation-row"][data-id="${created.id}"]`);
    await expect(row).toContainText(title);
    await chat(request, created.id, "sleep 1");
    await expect(row).toHaveAttribute("data-status", "running");
    await expect(row).toHaveAttribute("data-status", "idle", { timeout: 15_000 });
  });

  test("with --token: the page logs in once via ?token= and then streams live", async ({ page, playwright }) => {
    const token = unique("secret-");
    const server = await startServer({ args: ["--token", token] });
    try {
      const anonymous = await playwright.request.newContext({ baseURL: server.url });
      expect((await anonymous.get("/api/conversations")).status()).toBe(401);
      const authed = await playwright.request.newContext({
        baseURL: server.url,
        extraHTTPHeaders: { Authorization: `Bearer ${token}` },
      });
      const created = await createConversation(authed, { title: unique("tok-") });

      await page.goto(`${server.url}/?token=${token}`);
      await expect(page).toHaveURL(`${server.url}/`);
      await waitConnected(page);
      const row = page.locator(`[data-testid="conversation-row"][data-id="${created.id}"]`);
      await row.getByRole("link").click();
      await expect(page).toHaveURL(`${server.url}/c/${created.id}`);
      await waitConnected(page);
      const input = page.getByTestId("chat-input");
      await input.fill("echo with-token");
      await input.press("Enter");
      await expect(page.getByTestId("tool-card").first().getByTestId("output")).toHaveText("with-token");
      await anonymous.dispose();
      await authed.dispose();
    } finally {
      await server.stop();
    }
  });
});
