import { expect, test } from "@playwright/test";

test("server renders, the browser hydrates, and SSE events arrive", async ({ page }) => {
  // Without JavaScript the server's HTML is all there is: the page is there, not hydrated.
  const html = await (await page.request.get("/")).text();
  expect(html).toContain("not hydrated yet");

  await page.goto("/");
  await expect(page.getByTestId("rendered-by")).toContainText("hydrated in the browser");

  // The counter only works once hydration has attached its handler.
  const counter = page.getByTestId("counter");
  await counter.click();
  await counter.click();
  await expect(counter).toHaveText("Clicked 2 times");

  // Events pushed by axum, read through the browser's EventSource.
  await expect(page.getByTestId("stream-status")).toHaveText("Stream: open");
  await expect(page.getByTestId("ticks").locator("li")).toHaveCount(5);
  await expect(page.getByTestId("ticks").locator("li").first()).toHaveText("tick 1 of 5");
});
