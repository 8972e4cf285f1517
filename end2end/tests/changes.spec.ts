import { expect, test, type Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chat, createConversation, screenshot, tempCwd, unique, waitConnected, waitIdle } from "./helpers";
import { startServer } from "./server";

/**
 * Issue 14, "See what changed": the line a turn that changed files leaves in the
 * timeline, the review panel's diff, a review sent as a chat message, and reverting
 * a turn (and the refusal once a file changed again). The default `shell` agent runs
 * each message as a command in a git work tree made here.
 */

/** A git work tree with `files` committed, for a conversation to run in. */
function gitRepo(files: Record<string, string>): string {
  const dir = tempCwd();
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const git = (...args: string[]) =>
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main", ...args], {
      cwd: dir,
      stdio: "pipe",
    });
  git("init", "-q");
  git("add", "-A");
  git("commit", "-q", "-m", "start");
  return dir;
}

const read = (dir: string, name: string) => readFileSync(join(dir, name), "utf8");

async function openReview(page: Page, line = 0) {
  await page.getByTestId("changes-line").nth(line).getByTestId("open-review").click();
  const panel = page.getByTestId("review-panel");
  await expect(panel).toBeVisible();
  await expect(panel.getByTestId("review-loading")).toHaveCount(0);
  return panel;
}

test.describe("see what changed", () => {
  test("the changes line, the diff, a review, a revert and a refused revert", async ({ page, request }) => {
    const dir = gitRepo({ "a.txt": "one\ntwo\nthree\n", "b.txt": "keep me\n" });
    const conv = await createConversation(request, { cwd: dir, title: unique("changes-") });
    await page.goto(`/c/${conv.id}`);
    await waitConnected(page);

    await chat(request, conv.id, "sed -i 's/two/TWO/' a.txt && rm b.txt && printf 'fresh\\n' > new.txt");
    const line = page.getByTestId("changes-line");
    await expect(line).toHaveCount(1, { timeout: 20_000 });
    await expect(line.getByTestId("changes-summary")).toHaveText("3 files changed, +2 −2");
    await waitIdle(request, conv.id);

    // The panel: the files with their status, and the diff with both line numbers.
    const panel = await openReview(page);
    const files = panel.getByTestId("review-file");
    await expect(files).toHaveCount(3);
    await expect(files.nth(0)).toHaveAttribute("data-path", "a.txt");
    await expect(panel.locator('[data-testid=review-file][data-path="b.txt"]')).toHaveAttribute("data-status", "deleted");
    await expect(panel.locator('[data-testid=review-file][data-path="new.txt"]')).toHaveAttribute("data-status", "added");
    const added = panel.locator('[data-testid=diff-line].add[data-new="2"]', { hasText: "TWO" });
    await expect(added).toBeVisible();
    await expect(panel.locator('[data-testid=diff-line].del[data-old="2"]', { hasText: "two" })).toBeVisible();
    await expect(panel.locator('[data-testid=diff-line].del[data-old="1"]', { hasText: "keep me" })).toBeVisible();
    await expect(panel.locator('[data-testid=diff-line].add[data-new="1"]', { hasText: "fresh" })).toBeVisible();
    await expect(panel.getByTestId("diff-hunk").first()).toContainText("@@ -1,3 +1,3 @@");

    // Keys move between files (the first one is current on opening).
    await expect(files.nth(0)).toHaveAttribute("aria-current", "true");
    await panel.getByTestId("review-diff").focus();
    await page.keyboard.press("j");
    await expect(files.nth(1)).toHaveAttribute("aria-current", "true");
    await page.keyboard.press("n");
    await expect(files.nth(2)).toHaveAttribute("aria-current", "true");
    await page.keyboard.press("k");
    await expect(files.nth(1)).toHaveAttribute("aria-current", "true");
    await files.nth(1).focus();
    await page.keyboard.press("ArrowUp");
    await expect(files.nth(0)).toHaveAttribute("aria-current", "true");
    await expect(files.nth(0)).toBeFocused();
    await screenshot(page, "review-panel");

    // A comment on the changed line, sent as the review.
    await added.click();
    await expect(panel.getByTestId("comment-place")).toHaveText("a.txt:2");
    const comment = unique("lowercase-please-");
    await panel.getByTestId("comment-input").fill(comment);
    await panel.getByTestId("comment-add").click();
    await expect(panel.getByTestId("draft-count")).toHaveText("1 comment");
    await expect(panel.getByTestId("draft-comment")).toContainText(`a.txt:2${comment}`);
    await panel.getByTestId("send-review").click();
    await expect(panel.getByTestId("review-sent")).toBeVisible();
    await expect(panel.getByTestId("draft-count")).toHaveText("0 comments");
    await page.keyboard.press("Escape");
    await expect(panel).toHaveCount(0);
    await expect(page.getByTestId("timeline")).toContainText(`a.txt:2: ${comment}`);
    await expect(page.getByTestId("timeline")).toContainText("Review of your changes:");
    await waitIdle(request, conv.id);

    // Revert, after a confirmation: the files are back and the revert is in the timeline.
    const again = await openReview(page);
    await again.getByTestId("revert-turn").click();
    await expect(again.getByTestId("revert-confirm")).toBeVisible();
    await again.getByTestId("revert-confirm-yes").click();
    await expect(again.getByTestId("revert-done")).toBeVisible();
    expect(read(dir, "a.txt")).toBe("one\ntwo\nthree\n");
    expect(read(dir, "b.txt")).toBe("keep me\n");
    expect(existsSync(join(dir, "new.txt"))).toBe(false);
    await page.keyboard.press("Escape");
    await expect(line).toHaveCount(2);
    await expect(line.nth(1).getByTestId("changes-summary")).toHaveText(/^Reverted #\d+: 3 files, \+2 −2$/);
    await expect(line.nth(0).getByTestId("changes-reverted")).toBeVisible();

    // The file changes again; reverting the first turn now is refused, and says why.
    await chat(request, conv.id, "printf 'changed again\\n' >> a.txt");
    await expect(line).toHaveCount(3, { timeout: 20_000 });
    await waitIdle(request, conv.id);
    const refused = await openReview(page);
    await refused.getByTestId("revert-turn").click();
    await refused.getByTestId("revert-confirm-yes").click();
    await expect(refused.getByTestId("revert-error")).toBeVisible();
    await expect(refused.getByTestId("revert-error")).toContainText("a.txt");
    expect(read(dir, "a.txt")).toBe("one\ntwo\nthree\nchanged again\n");

    // Net since the first turn: only the appended line is left.
    await refused.getByTestId("mode-net").click();
    await expect(refused.getByTestId("review-title")).toContainText("Net changes");
    await expect(refused.getByTestId("review-file")).toHaveCount(1);
    await expect(refused.locator("[data-testid=diff-line].add", { hasText: "changed again" })).toBeVisible();
    await screenshot(page, "review-panel-refused-revert");
  });

  test("a 100,000-line diff renders only the rows on screen and scrolls to its end", async ({ page, request }) => {
    const dir = gitRepo({ "keep.txt": "x\n" });
    const conv = await createConversation(request, { cwd: dir, title: unique("long-diff-") });
    await page.goto(`/c/${conv.id}`);
    await waitConnected(page);
    await chat(request, conv.id, "seq 1 100000 > long.txt");
    await expect(page.getByTestId("changes-line")).toHaveCount(1, { timeout: 30_000 });
    await expect(page.getByTestId("changes-summary")).toHaveText("1 file changed, +100000 −0");
    const panel = await openReview(page);
    const diff = panel.getByTestId("review-diff");
    await expect(panel.locator('[data-testid=diff-line][data-new="1"]')).toBeVisible({ timeout: 20_000 });
    expect(await diff.locator(".rv-row").count()).toBeLessThan(200);
    // Scroll through it in big steps, a frame each: at every step the rows on screen
    // are rendered and the rest are not. (How long a frame takes is the bench's
    // business, not a test's.)
    const rendered = await diff.evaluate(async (el) => {
      const frame = () => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
      const counts: number[] = [];
      for (let i = 1; i <= 40; i++) {
        el.scrollTop = (el.scrollHeight * i) / 40;
        el.dispatchEvent(new Event("scroll"));
        await frame();
        counts.push(el.querySelectorAll(".rv-row").length);
      }
      return counts;
    });
    for (const count of rendered) {
      expect(count).toBeGreaterThan(0);
      expect(count).toBeLessThan(200);
    }
    await expect(panel.locator('[data-testid=diff-line][data-new="100000"]')).toBeVisible();
    expect(await diff.locator(".rv-row").count()).toBeLessThan(200);
  });

  test("at 375 px: the panel fits, its buttons are big enough, a line can be commented", async ({ page, request }) => {
    await page.setViewportSize({ width: 375, height: 740 });
    const dir = gitRepo({ "wide.txt": "short\n" });
    const conv = await createConversation(request, { cwd: dir, title: unique("narrow-") });
    await page.goto(`/c/${conv.id}`);
    await waitConnected(page);
    await chat(request, conv.id, `printf '%s\\n' ${"very-long-line-".repeat(20)} >> wide.txt`);
    await expect(page.getByTestId("changes-line")).toHaveCount(1, { timeout: 20_000 });
    const open = page.getByTestId("open-review");
    expect((await open.boundingBox())!.height).toBeGreaterThanOrEqual(44);
    const panel = await openReview(page);
    const box = (await panel.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(375);
    for (const id of ["review-close", "mode-turn", "mode-net", "revert-turn", "review-file"]) {
      const b = (await panel.getByTestId(id).first().boundingBox())!;
      expect(b.height, id).toBeGreaterThanOrEqual(44);
      expect(b.x + b.width, id).toBeLessThanOrEqual(375);
    }
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await panel.locator("[data-testid=diff-line].add").first().click();
    await expect(panel.getByTestId("comment-box")).toBeVisible();
    await expect(panel.getByTestId("comment-add")).toBeInViewport();
    await screenshot(page, "review-panel-375");
    await page.keyboard.press("Escape");
    await expect(panel.getByTestId("comment-box")).toHaveCount(0);
    await page.keyboard.press("Escape");
    await expect(panel).toHaveCount(0);
  });

  test("through a share link: the diff is shown, revert and review are not", async ({ browser, playwright }) => {
    const token = unique("secret-changes-");
    const server = await startServer({ args: ["--token", token] });
    const owner = await playwright.request.newContext({
      baseURL: server.url,
      extraHTTPHeaders: { Authorization: `Bearer ${token}` },
    });
    const viewer = await browser.newContext();
    try {
      const dir = gitRepo({ "a.txt": "one\n" });
      const conv = await createConversation(owner, { cwd: dir, title: unique("shared-changes-") });
      await chat(owner, conv.id, "printf 'two\\n' >> a.txt");
      await waitIdle(owner, conv.id);
      const res = await owner.post(`/api/conversations/${conv.id}/shares`, { data: {} });
      expect(res.ok()).toBeTruthy();
      const { url } = await res.json();
      const page = await viewer.newPage();
      await page.goto(`${server.url}${url}`);
      await waitConnected(page);
      await expect(page.getByTestId("changes-line")).toHaveCount(1);
      const panel = await openReview(page);
      const added = panel.locator("[data-testid=diff-line].add", { hasText: "two" });
      await expect(added).toBeVisible();
      for (const hidden of ["revert-turn", "send-review", "review-draft"]) {
        await expect(panel.getByTestId(hidden)).toHaveCount(0);
      }
      await added.click();
      await expect(panel.getByTestId("comment-box")).toHaveCount(0);
      await page.keyboard.press("Escape");
      await expect(panel).toHaveCount(0);
    } finally {
      await viewer.close();
      await owner.dispose();
      await server.stop();
    }
  });
});
