import { expect, type APIRequestContext, type Locator, type Page } from "@playwright/test";
import * as net from "node:net";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export interface Summary {
  id: string;
  title: string;
  cwd: string;
  status: "idle" | "running";
  message_count: number;
}

const tempDirs: string[] = [];
process.once("exit", () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory for a conversation to run its commands in (removed at exit). */
export function tempCwd(): string {
  const dir = mkdtempSync(join(tmpdir(), "tether-e2e-cwd-"));
  tempDirs.push(dir);
  return dir;
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

export interface Proxy {
  url: string;
  port: number;
  /** Where connections go, e.g. `http://127.0.0.1:4000`. */
  target: string;
  /** Drops every open connection and refuses new ones (a network outage). */
  cut(): void;
  /** Lets connections through again. */
  restore(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of a server, to cut the browser off while the server goes on
 * (Chromium's offline emulation leaves an open EventSource streaming).
 */
export async function startProxy(target = ""): Promise<Proxy> {
  const open = new Set<net.Socket>();
  let down = false;
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const { port: targetPort, hostname } = new URL(proxy.target);
    const upstream = net.connect(Number(targetPort), hostname);
    open.add(client);
    open.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as net.AddressInfo;
  const proxy: Proxy = {
    url: `http://127.0.0.1:${port}`,
    port,
    target,
    cut() {
      down = true;
      for (const s of open) s.destroy();
      open.clear();
    },
    restore() {
      down = false;
    },
    close: () =>
      new Promise<void>((ok) => {
        for (const s of open) s.destroy();
        server.close(() => ok());
      }),
  };
  return proxy;
}

/**
 * Every line of an expanded (virtualised) card, read by scrolling its viewport from
 * top to bottom; each row's index comes from the rows' offset (18 px a line).
 */
export async function allExpandedLines(card: Locator): Promise<string[]> {
  const output = card.getByTestId("output");
  await expect(output).toHaveClass(/expanded/);
  return output.evaluate(async (el) => {
    const frame = () => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
    const byIndex = new Map<number, string>();
    for (let top = 0; ; top += 200) {
      el.scrollTop = top;
      el.dispatchEvent(new Event("scroll"));
      await frame();
      const rows = el.querySelector(".rows") as HTMLElement | null;
      if (rows) {
        const first = Math.round(new DOMMatrix(getComputedStyle(rows).transform).m42 / 18);
        rows.querySelectorAll(".ln").forEach((ln, i) => byIndex.set(first + i, ln.textContent ?? ""));
      }
      if (el.scrollTop + el.clientHeight >= el.scrollHeight - 1) break;
    }
    const n = Math.max(-1, ...byIndex.keys()) + 1;
    return Array.from({ length: n }, (_, i) => byIndex.get(i) ?? `<missing row ${i}>`);
  });
}
