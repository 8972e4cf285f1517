import { expect, test, type Page } from "@playwright/test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { openConversation, screenshot, sendChat, tempCwd, waitConnected } from "./helpers";
import { startServer, type Server } from "./server";

/**
 * ACP agents in the browser, driven by the scriptable fake agent (`fake-agent/`):
 * its prompt is the script it runs, so each test says exactly what the agent does.
 * scripts/test.sh builds it before these tests run.
 */
const fakeAgent = resolve(__dirname, "../../target/debug/fake-acp-agent");

let server: Server;

test.beforeAll(async () => {
  expect(existsSync(fakeAgent), `build the fake agent first: ${fakeAgent}`).toBeTruthy();
  server = await startServer({ args: ["--agent", `fake=${fakeAgent}`] });
});

test.afterAll(async () => {
  await server?.stop();
});

/** Creates a conversation with the fake agent from the form on `/`. */
async function createWithFake(page: Page): Promise<string> {
  await page.goto(`${server.url}/`);
  await waitConnected(page);
  const picker = page.getByTestId("agent-picker");
  await expect(picker.locator("option[value=fake]")).toHaveCount(1);
  await picker.selectOption("fake");
  await page.getByTestId("new-cwd").fill(tempCwd());
  await page.getByTestId("create").click();
  await expect(page).toHaveURL(/\/c\/[0-9a-f]{32}$/);
  await waitConnected(page);
  await expect(page.getByTestId("agent-name")).toContainText("fake");
  return page.url().split("/c/")[1];
}

test.describe("ACP agents", () => {
  test("a streamed reply renders as markdown, never as HTML", async ({ page }) => {
    await createWithFake(page);
    await sendChat(page, "think weighing it\nsay **bold** and `code` <img src=x onerror=alert(1)>\nplan read; write\nplan-done 1");
    const reply = page.getByTestId("agent-reply").last();
    await expect(reply.locator("strong")).toHaveText("bold");
    await expect(reply.locator("code")).toHaveText("code");
    await expect(reply).toContainText("<img src=x onerror=alert(1)>");
    await expect(reply.locator("img")).toHaveCount(0);
    await expect(page.getByTestId("thought")).toHaveCount(1);
    const steps = page.getByTestId("plan").last().getByTestId("plan-step");
    await expect(steps).toHaveCount(2);
    await expect(steps.first()).toHaveAttribute("data-status", "completed");
    await expect(page.getByTestId("plan")).toHaveCount(1);
    await screenshot(page, "agent-reply", { fullPage: true });
  });

  test("approving from the card runs the command; rejecting tells the agent", async ({ page }) => {
    await createWithFake(page);
    await sendChat(page, "ask-run echo approved-$((6*7))");
    const approval = page.getByTestId("approval").last();
    await expect(approval).toBeVisible();
    await screenshot(page, "agent-approval", { fullPage: true });
    const allow = approval.locator('[data-testid=approval-option][data-kind=allow_once]');
    const box = await allow.boundingBox();
    expect(box?.height ?? 0).toBeGreaterThanOrEqual(44);
    await allow.click();
    const card = page.locator("[data-testid=tool-card][data-kind=execute]").last();
    await expect(card.getByTestId("output")).toContainText("approved-42");
    await expect(page.getByTestId("agent-reply").last()).toContainText("exit 0: approved-42");

    await sendChat(page, "ask-run touch never-made");
    const second = page.getByTestId("approval").last();
    await second.locator('[data-testid=approval-option][data-kind=reject_once]').click();
    await expect(page.getByTestId("agent-reply").last()).toContainText("rejected touch never-made");
    await expect(second.getByTestId("approval-outcome")).toBeVisible();
  });

  test("a reload in the middle of a pending approval still answers it", async ({ page }) => {
    const id = await createWithFake(page);
    await sendChat(page, "ask-run echo after-reload");
    await expect(page.getByTestId("approval").last()).toBeVisible();
    await page.reload();
    await openConversation(page, id, server.url);
    const approval = page.getByTestId("approval").last();
    await approval.locator('[data-testid=approval-option][data-kind=allow_once]').click();
    await expect(page.getByTestId("agent-reply").last()).toContainText("exit 0: after-reload");
  });

  test("cancel on one agent terminal stops it and the turn goes on", async ({ page }) => {
    await createWithFake(page);
    await sendChat(page, "run echo started; sleep 60\nsay still here");
    const card = page.locator("[data-testid=tool-card][data-kind=execute]").last();
    await expect(card.getByTestId("output")).toContainText("started");
    await card.getByTestId("cancel-tool").click();
    await expect(page.getByTestId("agent-reply").last()).toContainText("still here");
    await expect(card).not.toHaveAttribute("data-status", "running");
  });

  test("a file the agent writes shows as a diff", async ({ page }) => {
    await createWithFake(page);
    await sendChat(page, "write notes.txt one\\ntwo\\nthree");
    const diff = page.getByTestId("diff").last();
    await expect(diff).toContainText("notes.txt");
    await expect(diff.getByTestId("diff-counts")).toContainText("+3");
    await expect(page.getByTestId("agent-reply").last()).toContainText("wrote notes.txt");
    await screenshot(page, "agent-diff", { fullPage: true });
  });

  test("Stop ends a turn the agent is still working on", async ({ page }) => {
    await createWithFake(page);
    await sendChat(page, "open thinking hard\nsleep 60");
    const card = page.locator("[data-testid=tool-card]").last();
    await expect(card).toBeVisible();
    await card.getByTestId("stop-turn").click();
    await expect(page.getByTestId("agent-message").last()).toContainText("Turn stopped");
    await expect(card).toHaveAttribute("data-status", "cancelled");
  });
});
