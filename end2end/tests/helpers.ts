import { expect, type APIRequestContext, type Locator, type Page } from "@playwright/test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export interface Summary {
  id: string;
  title: string;
  cwd: string;
  status: "idle" | "running";
  message_count: number;
}

/** A fresh directory for a conversation to run its commands in. */
export function tempCwd(): string {
  return mkdtempSync(join(tmpdir(), "tether-e2e-cwd-"));
}

/** A token no other test (or earlier run) uses, for commands and /proc checks. */
export function unique(prefix = "u"): string {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

export async function createConversation(
  request: APIRequestContext,
  opts: { cwd?: string; title?: string; base?: string } = {},
): Promise<Summary> {
  const res = await request.post(`${opts.base ?? ""}/api/conversations`, {
    data: { cwd: opts.cwd ?? tempCwd(), ...(opts.title ? { title: opts.title } : {}) },
  });
  expect(res.status()).toBe(201);
  return res.json();
}

export async function chat(
  request: APIRequestContext,
  id: string,
  message: string,
  base = "",
): Promise<{ idx: number; queued: boolean }> {
  const res = await request.post(`${base}/api/conversations/${id}/chat`, { data: { message } });
  expect(res.status()).toBe(202);
  return res.json();
}

export async function state(request: APIRequestContext, id: string, base = "") {
  const res = await request.get(`${base}/api/conversations/${id}/state`);
  expect(res.ok()).toBeTruthy();
  return res.json();
}

/** Waits (without reloading anything) until the conversation is idle on the server. */
export async function waitIdle(request: APIRequestContext, id: string, base = "", timeout = 20_000) {
  await expect
    .poll(async () => (await state(request, id, base)).status, { timeout, intervals: [100, 200] })
    .toBe("idle");
}

/** Waits for the page to be hydrated and its stream open. */
export async function waitConnected(page: Page, timeout = 15_000) {
  await expect(page.getByTestId("connection")).toHaveAttribute("data-state", "connected", { timeout });
}

/** Opens a conversation page and waits for its live stream. */
export async function openConversation(page: Page, id: string, base = "") {
  await page.goto(`${base}/c/${id}`);
  await waitConnected(page);
}

/** Types a message into the chat box and sends it with Enter. */
export async function sendChat(page: Page, text: string) {
  const input = page.getByTestId("chat-input");
  await input.fill(text);
  await input.press("Enter");
  await expect(input).toHaveValue("");
}

export function cards(page: Page): Locator {
  return page.getByTestId("tool-card");
}

/** The visible output lines of a card, as text. */
export async function outputLines(card: Locator): Promise<string[]> {
  return card.getByTestId("output").locator(".ln").allInnerTexts();
}

const shotDir = resolve(__dirname, "../test-results/screenshots");

export async function screenshot(page: Page, name: string, opts: { fullPage?: boolean } = {}) {
  mkdirSync(shotDir, { recursive: true });
  await page.screenshot({ path: join(shotDir, `${name}.png`), fullPage: opts.fullPage ?? false });
}

/** PIDs of processes whose command line contains `marker` (read from /proc). */
export function processesMatching(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmdline.includes(marker)) found.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}
