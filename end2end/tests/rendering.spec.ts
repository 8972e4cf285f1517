import { expect, test } from "@playwright/test";
import { cards, chat, createConversation, openConversation, screenshot, sendChat, waitConnected, waitIdle } from "./helpers";

/** `rgb(r, g, b)` → [r, g, b]. */
function rgb(css: string): number[] {
  return (css.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map(Number);
}

test.describe("rendering", () => {
  test("ANSI colours and bold render as styled text", async ({ page, request }) => {
    const conversation = await createConversation(request);
    await openConversation(page, conversation.id);
    await sendChat(page, String.raw`printf '\033[31mred\033[0m \033[1mbold\033[0m plain\n'`);
    const card = cards(page).first();
    await expect(card).toHaveAttribute("data-status", "completed");
    const output = card.getByTestId("output");
    await expect(output).toHaveText("red bold plain");
    // No escape sequence leaks through as text.
    expect(await output.innerText()).not.toContain("[31m");

    const red = output.locator("span", { hasText: /^red$/ });
    const plain = output.locator("span", { hasText: /^ plain$/ });
    const [r, g, b] = rgb(await red.evaluate((el) => getComputedStyle(el).color));
    const defaultColor = await plain.evaluate((el) => getComputedStyle(el).color);
    expect(await red.evaluate((el) => getComputedStyle(el).color)).not.toBe(defaultColor);
    expect(r).toBeGreaterThan(150);
    expect(r).toBeGreaterThan(g + 80);
    expect(r).toBeGreaterThan(b + 80);

    const bold = output.locator("span", { hasText: /^bold$/ });
    expect(Number(await bold.evaluate((el) => getComputedStyle(el).fontWeight))).toBeGreaterThanOrEqual(600);
    expect(Number(await plain.evaluate((el) => getComputedStyle(el).fontWeight))).toBeLessThan(600);
    await screenshot(page, "coloured-card");

    await page.emulateMedia({ colorScheme: "dark" });
    await expect
      .poll(() => page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor))
      .toBe("rgb(16, 18, 22)");
    await screenshot(page, "dark-mode");
  });

  test("HTML in output and messages is shown as text, never run", async ({ page, request }) => {
    const dialogs: string[] = [];
    page.on("dialog", async (dialog) => {
      dialogs.push(dialog.message());
      await dialog.dismiss();
    });
    const conversation = await createConversation(request, { title: "<b>title</b><img src=x onerror=alert(2)>" });
    await openConversation(page, conversation.id);
    const payload = "<img src=x onerror=alert(1)>";
    await sendChat(page, `echo '${payload}'; echo '<script>alert(3)</script>'`);
    const card = cards(page).first();
    await expect(card).toHaveAttribute("data-status", "completed");
    await expect(card.getByTestId("output")).toHaveText(`${payload}<script>alert(3)</script>`);
    await expect(card.getByTestId("output").locator(".ln").first()).toHaveText(payload);
    await expect(page.getByTestId("user-message")).toContainText(payload);
    await expect(page.getByTestId("title")).toHaveText("<b>title</b><img src=x onerror=alert(2)>");
    await expect(page.locator("main img")).toHaveCount(0);
    await expect(page.locator("main script")).toHaveCount(0);
    await expect(page.locator("main b")).toHaveCount(0);

    // Also after a fresh server render of the same page, and on the list.
    await page.reload();
    await waitConnected(page);
    await expect(cards(page).first().getByTestId("output").locator(".ln").first()).toHaveText(payload);
    await expect(page.locator("main img")).toHaveCount(0);
    await page.goto("/");
    await waitConnected(page);
    await expect(page.locator(`[data-id="${conversation.id}"]`)).toContainText("<img src=x");
    await expect(page.locator("main img")).toHaveCount(0);
    expect(dialogs).toEqual([]);
  });

  test("100,000 lines: the tail when collapsed, a bounded virtual scroller when expanded", async ({
    page,
    request,
  }) => {
    const conversation = await createConversation(request);
    await chat(request, conversation.id, "seq 1 100000");
    await waitIdle(request, conversation.id, "", 30_000);
    await openConversation(page, conversation.id);
    const card = cards(page).first();
    await expect(card).toHaveAttribute("data-status", "completed", { timeout: 20_000 });
    const output = card.getByTestId("output");
    await expect(output.locator(".ln").last()).toHaveText("100000");
    await expect(output.locator(".ln").nth(-2)).toHaveText("99999");

    const expand = card.getByTestId("expand");
    await expect(expand).toHaveText("Show all 100000 lines");
    await expand.click();
    await expect(expand).toHaveText("Collapse");
    const rows = output.locator(".ln");
    // Opens at the end, with only a window of rows in the DOM.
    await expect(rows.last()).toHaveText("100000");
    expect(await rows.count()).toBeLessThan(500);

    // Scroll to the very top: line 1, still a bounded number of rows.
    await output.evaluate((el) => {
      el.scrollTop = 0;
    });
    await expect(rows.first()).toHaveText("1");
    await expect(output.getByText("1", { exact: true })).toBeInViewport();
    await screenshot(page, "expanded-100k-top");
    expect(await rows.count()).toBeLessThan(500);

    // The middle.
    await output.evaluate((el) => {
      el.scrollTop = el.scrollHeight / 2;
    });
    await expect.poll(async () => Number(await rows.first().innerText())).toBeGreaterThan(40_000);
    expect(await rows.count()).toBeLessThan(500);
    const shown = (await rows.allInnerTexts()).map(Number);
    for (let i = 1; i < shown.length; i++) expect(shown[i]).toBe(shown[i - 1] + 1);

    // Mouse-wheel scrolling works too and keeps the page responsive.
    await output.hover();
    await page.mouse.wheel(0, 2000);
    await expect.poll(async () => Number(await rows.first().innerText())).toBeGreaterThan(shown[0]);

    // The tab still responds: another control works promptly.
    const started = Date.now();
    await page.getByTestId("find-toggle").click();
    await expect(page.getByTestId("find-input")).toBeVisible();
    await page.getByTestId("find-toggle").click();
    await expect(page.getByTestId("find-input")).toHaveCount(0);
    expect(Date.now() - started).toBeLessThan(3_000);
    await expand.click();
    await expect(rows).toHaveCount(12);
  });

  test("usable at 375 px: chat box visible, no horizontal page scroll", async ({ page, request }) => {
    await page.setViewportSize({ width: 375, height: 740 });
    const conversation = await createConversation(request, {
      title: "A fairly long conversation title that must wrap on a phone screen",
    });
    await chat(request, conversation.id, "printf 'x%.0s' $(seq 1 300); echo; echo short");
    await waitIdle(request, conversation.id);
    await openConversation(page, conversation.id);
    await expect(cards(page).first()).toHaveAttribute("data-status", "completed");
    const noHorizontalScroll = () =>
      page.evaluate(() => document.scrollingElement!.scrollWidth);
    await expect(page.getByTestId("chat-input")).toBeInViewport();
    await expect(page.getByTestId("send")).toBeInViewport();
    expect(await noHorizontalScroll()).toBeLessThanOrEqual(376);
    await screenshot(page, "narrow-375-conversation");

    // It still works there.
    await sendChat(page, "echo from-a-phone");
    await expect(cards(page).nth(1)).toHaveAttribute("data-status", "completed");
    await expect(page.getByTestId("send")).toBeInViewport();
    expect(await noHorizontalScroll()).toBeLessThanOrEqual(376);

    await page.goto("/");
    await waitConnected(page);
    await expect(page.getByTestId("create")).toBeInViewport();
    expect(await noHorizontalScroll()).toBeLessThanOrEqual(376);
    await screenshot(page, "narrow-375-list");
    await page.emulateMedia({ colorScheme: "dark" });
    await page.setViewportSize({ width: 1280, height: 720 });
    await screenshot(page, "dark-mode-list");
  });
});
