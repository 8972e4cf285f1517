import { expect, test } from "@playwright/test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chat, createConversation, screenshot, tempCwd, unique, waitConnected } from "./helpers";
import { startServer } from "./server";

test.describe("share links", () => {
  test("a read-only link: watch live without the token, no chat, revocation ends it", async ({
    page,
    browser,
    playwright,
  }) => {
    const token = unique("secret-share-");
    const server = await startServer({ args: ["--token", token] });
    const owner = await playwright.request.newContext({
      baseURL: server.url,
      extraHTTPHeaders: { Authorization: `Bearer ${token}` },
    });
    const viewer = await browser.newContext();
    try {
      const cwd = tempCwd();
      const created = await createConversation(owner, { cwd, title: unique("shared-") });

      // The owner logs in and creates a link from the dialog.
      await page.goto(`${server.url}/?token=${token}`);
      await page.goto(`${server.url}/c/${created.id}`);
      await waitConnected(page);
      await page.getByTestId("share-open").click();
      const dialog = page.getByTestId("share-dialog");
      await expect(dialog).toBeVisible();
      await dialog.getByTestId("share-expiry").selectOption({ label: "1 hour" });
      await dialog.getByTestId("share-create").click();
      const linkBox = dialog.getByTestId("share-link");
      await expect(linkBox).toHaveValue(new RegExp(`^${server.url}/s/[0-9a-f]{64}$`));
      const link = await linkBox.inputValue();
      await expect(dialog.getByTestId("share-copy")).toBeVisible();
      await expect(dialog.getByTestId("share-row")).toHaveCount(1);
      await expect(dialog.getByTestId("share-row")).toContainText("expires");
      await screenshot(page, "share-dialog");

      // Someone without the token opens it in a browser of their own.
      const watcher = await viewer.newPage();
      // The stream worker's script is public, so a share's page streams through it too.
      const script = watcher.waitForResponse((r) => r.url().endsWith("/stream-worker.js"));
      await watcher.goto(link);
      await expect(watcher).toHaveURL(`${server.url}/c/${created.id}`);
      expect((await script).status()).toBe(200);
      await waitConnected(watcher);
      await expect(watcher.getByTestId("read-only")).toBeVisible();
      for (const hidden of ["chat-input", "share-open", "restart-open", "send", "stop"]) {
        await expect(watcher.getByTestId(hidden)).toHaveCount(0);
      }

      // Live output of a command the owner runs arrives while it runs.
      await chat(
        owner,
        created.id,
        "echo first-part; while [ ! -e gate ]; do sleep 0.05; done; echo second-part",
      );
      const output = watcher.getByTestId("tool-card").first().getByTestId("output");
      await expect(output).toContainText("first-part");
      await expect(output).not.toContainText("second-part");
      writeFileSync(join(cwd, "gate"), "");
      await expect(output).toContainText("second-part");
      await screenshot(watcher, "share-read-only-view");

      // Its browser cannot post, even from the page's own origin.
      const status = await watcher.evaluate(async (id) => {
        const res = await fetch(`/api/conversations/${id}/chat`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ message: "touch pwned" }),
        });
        return res.status;
      }, created.id);
      expect(status).toBe(403);
      expect(existsSync(join(cwd, "pwned"))).toBe(false);
      expect((await viewer.request.get(`${server.url}/api/conversations`)).status()).toBe(403);

      // Revoked by the owner: the viewer's stream stops and a reload shows why.
      await dialog.getByTestId("share-revoke").click();
      await expect(dialog.getByTestId("share-row")).toHaveCount(0);
      await expect(watcher.getByTestId("connection")).not.toHaveAttribute("data-state", "connected");
      const reloaded = await watcher.reload();
      expect(reloaded?.status()).toBe(403);
      await expect(watcher.locator("body")).toContainText("revoked");
    } finally {
      await viewer.close();
      await owner.dispose();
      await server.stop();
    }
  });

  test("the share dialog is usable 375 px wide", async ({ page, playwright }) => {
    const token = unique("secret-narrow-");
    const server = await startServer({ args: ["--token", token] });
    const owner = await playwright.request.newContext({
      baseURL: server.url,
      extraHTTPHeaders: { Authorization: `Bearer ${token}` },
    });
    try {
      const created = await createConversation(owner, { title: unique("narrow-") });
      await page.setViewportSize({ width: 375, height: 740 });
      await page.goto(`${server.url}/?token=${token}`);
      await page.goto(`${server.url}/c/${created.id}`);
      await waitConnected(page);
      await page.getByTestId("share-open").click();
      const dialog = page.getByTestId("share-dialog");
      await dialog.getByTestId("share-create").click();
      await expect(dialog.getByTestId("share-link")).toHaveValue(/\/s\/[0-9a-f]{64}$/);
      for (const id of ["share-dialog", "share-link", "share-copy", "share-create", "share-revoke"]) {
        const box = await page.getByTestId(id).first().boundingBox();
        expect(box, id).not.toBeNull();
        expect(box!.x, id).toBeGreaterThanOrEqual(0);
        expect(box!.x + box!.width, id).toBeLessThanOrEqual(375);
      }
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await screenshot(page, "share-dialog-375");
      await dialog.getByTestId("share-revoke").click();
      await expect(dialog.getByTestId("share-row")).toHaveCount(0);
    } finally {
      await owner.dispose();
      await server.stop();
    }
  });
});
