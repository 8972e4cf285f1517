import { expect, test } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { screenshot, sendChat, tempCwd, waitConnected } from "./helpers";
import { startServer, type Server } from "./server";

/**
 * A real ACP agent from npm — Zed's Claude Code adapter, pinned in
 * agents/package-lock.json — in the browser, offline: the only fake is the model API
 * (fake-model/, speaking Anthropic's Messages dialect on 127.0.0.1).
 */
const root = resolve(__dirname, "../..");
const adapter = join(root, "agents/node_modules/@zed-industries/claude-code-acp/dist/index.js");
const fakeModel = join(root, "target/debug/fake-model");

let model: ChildProcess;
let server: Server;
let home: string;

test.beforeAll(async () => {
  expect(existsSync(adapter), "run `npm ci` in agents/ (scripts/test.sh does)").toBeTruthy();
  expect(existsSync(fakeModel), "build the fake model first (scripts/test.sh does)").toBeTruthy();
  model = spawn(fakeModel, ["--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
  const modelUrl = await new Promise<string>((ok, fail) => {
    let seen = "";
    model.stdout!.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /listening on (\S+)/.exec(seen);
      if (match) ok(`http://${match[1]}`);
    });
    model.once("exit", (code) => fail(new Error(`fake-model exited with ${code}: ${seen}`)));
  });
  home = mkdtempSync(join(tmpdir(), "tether-e2e-home-"));
  server = await startServer({
    args: ["--agent", `claude=node ${adapter}`],
    env: {
      HOME: home,
      ANTHROPIC_BASE_URL: modelUrl,
      ANTHROPIC_API_KEY: "sk-ant-fake",
      DISABLE_TELEMETRY: "1",
      DISABLE_ERROR_REPORTING: "1",
      DISABLE_AUTOUPDATER: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    },
  });
});

test.afterAll(async () => {
  await server?.stop();
  model?.kill("SIGKILL");
  if (home) rmSync(home, { recursive: true, force: true });
});

test("Claude Code asks, runs the command live in Tether, answers, and stops", async ({ page }) => {
  test.setTimeout(90_000);
  await page.goto(`${server.url}/`);
  await waitConnected(page);
  await page.getByTestId("agent-picker").selectOption("claude");
  await page.getByTestId("new-cwd").fill(tempCwd());
  await page.getByTestId("create").click();
  await expect(page).toHaveURL(/\/c\/[0-9a-f]{32}$/);
  await waitConnected(page);

  await sendChat(page, "Please RUN_TOOL[for i in 1 2 3; do echo tick-$i; sleep 0.5; done]");
  const approval = page.getByTestId("approval").last();
  await expect(approval).toBeVisible({ timeout: 30_000 });
  await expect(page.getByTestId("agent-reply").first()).toContainText("I will run it.");
  await approval.locator("[data-testid=approval-option][data-kind=allow_once]").click();
  const card = page.locator("[data-testid=tool-card][data-kind=execute]").last();
  await expect(card.getByTestId("output")).toContainText("tick-1");
  await expect(card.getByTestId("output")).toContainText("tick-3");
  await expect(page.getByTestId("agent-reply").last()).toContainText("tick-3", { timeout: 30_000 });
  await expect(card).toHaveAttribute("data-status", "completed");
  await screenshot(page, "real-agent", { fullPage: true });

  await sendChat(page, "Please SLOW");
  await expect(page.getByTestId("agent-reply").last()).toContainText("tick 1", { timeout: 30_000 });
  await page.getByTestId("stop").click();
  await expect(page.getByTestId("agent-message").last()).toContainText("Turn stopped");
});
