import { expect, test, type Page } from "@playwright/test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { cards, chat, createConversation, sendChat, tempCwd, waitConnected, waitIdle } from "./helpers";
import { startServer, type Server } from "./server";

/**
 * Attention: notifications, the title count and favicon badge, the inbox, the key
 * bar, the manifest, wrapping, and all of it at 375 px. Each test has its own
 * server, so other tests' conversations cannot land in the inbox.
 */
const fakeAgent = resolve(__dirname, "../../target/debug/fake-acp-agent");

let server: Server;

test.beforeAll(async () => {
  server = await startServer({ args: existsSync(fakeAgent) ? ["--agent", `fake=${fakeAgent}`] : [] });
});

test.afterAll(async () => {
  await server?.stop();
});

/**
 * Records notifications instead of showing them, and lets the test hide the page:
 * `window.__notes`, `window.__asked` (permission prompts) and `window.__hide(bool)`.
 * The permission starts as "default" (never asked), like a fresh browser.
 */
async function fakeNotifications(page: Page) {
  await page.context().grantPermissions(["notifications"]);
  await page.addInitScript(() => {
    const w = window as any;
    w.__notes = [];
    w.__asked = 0;
    w.__hidden = false;
    class FakeNotification {
      title: string;
      onclick: null | (() => void) = null;
      constructor(title: string, options?: NotificationOptions) {
        this.title = title;
        w.__notes.push({ title, body: options?.body, tag: options?.tag });
        w.__last = this;
      }
      close() {}
      static get permission() {
        return localStorage.getItem("__granted") ? "granted" : "default";
      }
      static requestPermission() {
        w.__asked++;
        localStorage.setItem("__granted", "1");
        return Promise.resolve("granted");
      }
    }
    w.Notification = FakeNotification;
    Object.defineProperty(document, "visibilityState", { get: () => (w.__hidden ? "hidden" : "visible"), configurable: true });
    Object.defineProperty(document, "hidden", { get: () => w.__hidden, configurable: true });
    w.__hide = (hidden: boolean) => {
      w.__hidden = hidden;
      document.dispatchEvent(new Event("visibilitychange"));
    };
  });
}

/** Takes the keyboard focus off any field, so keys go to the page. */
const blur = (page: Page) => page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());

const notes = (page: Page) => page.evaluate(() => (window as any).__notes as { title: string; body: string; tag: string }[]);

test.describe("attention", () => {
  test("notifications: opt-in, not for the conversation on screen, yes when hidden or elsewhere", async ({ page, request }) => {
    await fakeNotifications(page);
    const a = await createConversation(request, { base: server.url, title: "notify-a" });
    const b = await createConversation(request, { base: server.url, title: "notify-b" });
    await page.goto(`${server.url}/c/${a.id}`);
    await waitConnected(page);
    const bell = page.getByTestId("notify-toggle");
    await expect(bell).toHaveAttribute("aria-pressed", "false");
    // Nothing asked on load; one click asks once.
    expect(await page.evaluate(() => (window as any).__asked)).toBe(0);
    await bell.click();
    await expect(bell).toHaveAttribute("aria-pressed", "true");
    expect(await page.evaluate(() => (window as any).__asked)).toBe(1);

    // Visible and on this conversation: its turn ending needs no notification.
    await sendChat(page, "sleep 0.5; echo one");
    await expect(cards(page).first()).toHaveAttribute("data-status", "completed");
    await waitIdle(request, a.id, server.url);
    await page.waitForTimeout(1_500);
    expect(await notes(page)).toEqual([]);

    // Hidden: the next turn's end is announced, tagged with the conversation.
    await page.evaluate(() => (window as any).__hide(true));
    await chat(request, a.id, "sleep 0.5; echo two", server.url);
    await expect.poll(() => notes(page)).toEqual([{ title: "notify-a", body: "Finished", tag: a.id }]);
    await page.evaluate(() => (window as any).__hide(false));

    // The choice is remembered; a failure in another conversation is announced on
    // the list page, once.
    await page.goto(`${server.url}/`);
    await waitConnected(page);
    await expect(page.getByTestId("notify-toggle")).toHaveAttribute("aria-pressed", "true");
    await chat(request, b.id, "sleep 0.5; false", server.url);
    await expect.poll(() => notes(page)).toEqual([{ title: "notify-b", body: "A command failed", tag: b.id }]);
    await page.waitForTimeout(1_000);
    expect(await notes(page)).toHaveLength(1);

    // Clicking it opens that conversation.
    await page.evaluate(() => (window as any).__last.onclick());
    await expect(page).toHaveURL(`${server.url}/c/${b.id}`);
  });

  test("the inbox: needs you, running, the rest; unread markers, title count, badge, filter and keys", async ({ page, request }) => {
    // The first visit starts the clock: what happens from now on can be unread.
    await page.goto(`${server.url}/`);
    await waitConnected(page);
    const a = await createConversation(request, { base: server.url, title: "inbox-alpha" });
    const b = await createConversation(request, { base: server.url, title: "inbox-beta" });
    await chat(request, a.id, "echo alpha", server.url);
    await waitIdle(request, a.id, server.url);
    await chat(request, b.id, "sleep 600", server.url);

    const row = (id: string) => page.locator(`[data-testid=conversation-row][data-id="${id}"]`);
    const group = (name: string) => page.locator(`[data-testid=inbox-group][data-group=${name}]`);
    await expect(group("needs-you").locator(row(a.id))).toBeVisible();
    await expect(group("running").locator(row(b.id))).toBeVisible();
    await expect(row(a.id).getByTestId("unread")).toBeVisible();
    await expect(row(b.id).getByTestId("unread")).toHaveCount(0);
    const order = await page.getByTestId("inbox-group").evaluateAll((els) => els.map((e) => e.getAttribute("data-group")));
    // (The rest holds the other tests' conversations, from before this visit.)
    expect(order.slice(0, 2)).toEqual(["needs-you", "running"]);
    await expect(page).toHaveTitle("(1) Tether");
    await expect(page.locator("link[rel=icon]")).toHaveAttribute("data-count", "1");
    await expect(page.locator("link[rel=icon]")).toHaveAttribute("href", /^data:image\/svg\+xml,/);
    await expect(row(a.id).locator("time")).toHaveText(/just now|s ago/);

    // Opening it clears the marker.
    await row(a.id).getByRole("link").click();
    await expect(page).toHaveURL(`${server.url}/c/${a.id}`);
    await expect(page).toHaveTitle("inbox-alpha");
    await page.getByRole("link", { name: "All conversations" }).click();
    await waitConnected(page);
    await expect(group("rest").locator(row(a.id))).toBeVisible();
    await expect(row(a.id).getByTestId("unread")).toHaveCount(0);
    await expect(page).toHaveTitle("Tether");
    await expect(page.locator("link[rel=icon]")).toHaveAttribute("href", "/favicon.svg");

    // The running one finishes: it needs you now, at the top.
    const state = await (await request.get(`${server.url}/api/conversations/${b.id}/state`)).json();
    await request.post(`${server.url}/api/conversations/${b.id}/cancel`, { data: {} });
    expect(state.status).toBe("running");
    await expect(group("needs-you").locator(row(b.id))).toBeVisible();
    await expect(row(b.id).getByTestId("unread")).toBeVisible();
    await expect(page).toHaveTitle("(1) Tether");

    // `/` focuses the filter; it filters by title.
    await blur(page);
    await page.keyboard.press("/");
    await expect(page.getByTestId("filter")).toBeFocused();
    await page.keyboard.type("beta");
    await expect(page.getByTestId("conversation-row")).toHaveCount(1);
    await page.keyboard.press("Escape");
    await page.getByTestId("filter").fill("");
    await blur(page);

    // j/k move a visible selection; Enter opens it.
    await page.keyboard.press("j");
    await expect(row(b.id)).toHaveAttribute("aria-selected", "true");
    await page.keyboard.press("j");
    await expect(row(a.id)).toHaveAttribute("aria-selected", "true");
    await expect(row(b.id)).toHaveAttribute("aria-selected", "false");
    await page.keyboard.press("k");
    await expect(row(b.id)).toHaveAttribute("aria-selected", "true");
    await page.keyboard.press("Enter");
    await expect(page).toHaveURL(`${server.url}/c/${b.id}`);
  });

  test("the key bar sends Ctrl-C to a running command", async ({ page, request }) => {
    const c = await createConversation(request, { base: server.url });
    await page.goto(`${server.url}/c/${c.id}`);
    await waitConnected(page);
    await sendChat(page, "cat");
    const card = cards(page).first();
    await expect(card).toHaveAttribute("data-status", "running");
    const bar = card.getByTestId("key-bar");
    await expect(bar.locator("button[data-key]")).toHaveCount(9);
    await card.getByTestId("tool-input").fill("echoed-back");
    await card.getByTestId("tool-input").press("Enter");
    await expect(card.getByTestId("output")).toContainText("echoed-back");
    await bar.locator("[data-key=ctrl-c]").click();
    await expect(card).not.toHaveAttribute("data-status", "running");
    await expect(card.getByTestId("key-bar")).toHaveCount(0);
    // Shown once: the card is the message; no "Command completed." after it.
    await expect(page.locator(".msg.user")).toHaveCount(0);
    await expect(page.getByTestId("user-message")).toHaveText("cat");
  });

  test("the manifest is served and parses; the page links it", async ({ page, request }) => {
    const res = await request.get(`${server.url}/manifest.webmanifest`);
    expect(res.status()).toBe(200);
    const manifest = JSON.parse(await res.text());
    expect(manifest).toMatchObject({ name: "Tether", short_name: "Tether", start_url: "/", display: "standalone" });
    expect(manifest.theme_color).toMatch(/^#/);
    expect(manifest.background_color).toMatch(/^#/);
    const sizes = manifest.icons.map((i: { sizes: string }) => i.sizes);
    expect(sizes).toEqual(expect.arrayContaining(["192x192", "512x512"]));
    for (const icon of manifest.icons) {
      const png = await request.get(`${server.url}${icon.src}`);
      expect(png.status()).toBe(200);
      expect((await png.body()).subarray(1, 4).toString()).toBe("PNG");
    }
    await page.goto(`${server.url}/`);
    await expect(page.locator("link[rel=manifest]")).toHaveAttribute("href", "/manifest.webmanifest");
    await expect(page.locator("meta[name=theme-color]")).toHaveAttribute("content", /^#/);
    const touch = await page.locator("link[rel=apple-touch-icon]").getAttribute("href");
    expect((await request.get(`${server.url}${touch}`)).status()).toBe(200);
  });

  test("long lines wrap on request, and the choice is remembered", async ({ page, request }) => {
    const c = await createConversation(request, { base: server.url });
    await chat(request, c.id, "printf 'w%.0s' $(seq 1 600); echo; seq 1 20", server.url);
    await waitIdle(request, c.id, server.url);
    await page.goto(`${server.url}/c/${c.id}`);
    await waitConnected(page);
    const card = cards(page).first();
    await card.getByTestId("expand").click();
    const output = card.getByTestId("output");
    const longLine = output.locator(".ln").filter({ hasText: /^w+$/ });
    const fits = () => output.evaluate((el) => el.scrollWidth <= el.clientWidth + 1);
    expect(await fits()).toBe(false);
    const toggle = card.getByTestId("wrap-toggle");
    await expect(toggle).toHaveAttribute("aria-pressed", "false");
    await toggle.click();
    await expect(toggle).toHaveAttribute("aria-pressed", "true");
    await expect(output).toHaveClass(/wrap/);
    expect(await fits()).toBe(true);
    expect((await longLine.boundingBox())!.height).toBeGreaterThan(36);

    await page.reload();
    await waitConnected(page);
    await cards(page).first().getByTestId("expand").click();
    await expect(cards(page).first().getByTestId("wrap-toggle")).toHaveAttribute("aria-pressed", "true");
    await expect(cards(page).first().getByTestId("output")).toHaveClass(/wrap/);
  });

  test("at 375 px: the key bar, the inbox and the approval buttons fit and are big enough", async ({ page, request }) => {
    await page.setViewportSize({ width: 375, height: 740 });
    const within = async (loc: ReturnType<Page["locator"]>, minHeight = 0) => {
      const n = await loc.count();
      expect(n).toBeGreaterThan(0);
      for (let i = 0; i < n; i++) {
        await loc.nth(i).scrollIntoViewIfNeeded();
        const box = (await loc.nth(i).boundingBox())!;
        expect(box.x).toBeGreaterThanOrEqual(0);
        expect(box.x + box.width).toBeLessThanOrEqual(375);
        expect(box.height).toBeGreaterThanOrEqual(minHeight);
      }
    };
    const c = await createConversation(request, { base: server.url, title: "narrow" });
    await page.goto(`${server.url}/c/${c.id}`);
    await waitConnected(page);
    await sendChat(page, "cat");
    const card = cards(page).first();
    await expect(card).toHaveAttribute("data-status", "running");
    await within(card.getByTestId("key-bar").locator("button"), 44);
    await within(card.getByTestId("cancel-tool"), 44);
    await within(page.getByTestId("stop"), 44);
    await within(page.getByTestId("notify-toggle"), 44);
    await card.getByTestId("key-bar").locator("[data-key=ctrl-d]").click();
    await expect(card).toHaveAttribute("data-status", "completed");

    await page.goto(`${server.url}/`);
    await waitConnected(page);
    await within(page.getByTestId("filter"), 44);
    await within(page.getByTestId("inbox-group"));
    await within(page.getByTestId("conversation-row"));
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);

    test.skip(!existsSync(fakeAgent), "the fake agent is not built");
    await page.getByTestId("agent-picker").selectOption("fake");
    await page.getByTestId("new-cwd").fill(tempCwd());
    await page.getByTestId("create").click();
    await expect(page).toHaveURL(/\/c\/[0-9a-f]{32}$/);
    await waitConnected(page);
    await sendChat(page, "ask-run echo narrow");
    const approval = page.getByTestId("approval").last();
    await expect(approval).toBeVisible();
    await within(approval.getByTestId("approval-option"), 44);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    // Waiting for approval puts it at the top of the inbox.
    await page.getByRole("link", { name: "All conversations" }).click();
    await waitConnected(page);
    await expect(page.locator("[data-testid=inbox-group][data-group=needs-you] [data-testid=row-approvals]")).toBeVisible();
    await within(page.getByTestId("conversation-row"));
  });
});
