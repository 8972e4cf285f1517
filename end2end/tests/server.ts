import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** The release binary cargo-leptos builds; override with TETHER_BIN. */
export const tetherBin =
  process.env.TETHER_BIN ?? resolve(__dirname, "../../target/release/tether");
const repoRoot = resolve(__dirname, "../..");

export interface Server {
  url: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  /** SIGTERM and wait for exit; the data directory is removed unless `keepData`. */
  stop(opts?: { keepData?: boolean }): Promise<void>;
  /** SIGKILL: the crash case. */
  kill(): Promise<void>;
}

export interface StartOptions {
  port?: number;
  dataDir?: string;
  args?: string[];
  env?: Record<string, string>;
}

/** Starts `tether` and resolves once it prints the address it serves. */
export async function startServer(opts: StartOptions = {}): Promise<Server> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "tether-e2e-"));
  const addr = `127.0.0.1:${opts.port ?? 0}`;
  const proc = spawn(tetherBin, ["--addr", addr, "--data-dir", dataDir, ...(opts.args ?? [])], {
    cwd: repoRoot,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn", ...opts.env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((done) => proc.once("exit", () => done()));
  let seen = "";
  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`tether did not start: ${seen}`)), 30_000);
    proc.stdout!.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const served = /Tether is serving (http:\/\/[^\s/]+)/.exec(seen);
      if (served) {
        clearTimeout(timer);
        ok(served[1]);
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`tether exited with ${code} before listening: ${seen}`));
    });
  });
  const port = Number(new URL(url).port);
  const finish = async (signal: NodeJS.Signals, keepData: boolean) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    // Tether's shutdown is bounded (turns, then connections): a server still running
    // after this is a bug to report, not a test timeout to puzzle over.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((done) => {
      timer = setTimeout(() => done(true), 20_000);
    });
    const stuck = await Promise.race([exited.then(() => false), late]);
    clearTimeout(timer);
    if (stuck) {
      const threads = threadsOf(proc.pid!);
      proc.kill("SIGKILL");
      await exited;
      throw new Error(`tether did not exit within 20 s of ${signal}; its threads:\n${threads}`);
    }
    if (!keepData && !opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  return {
    url,
    port,
    dataDir,
    proc,
    stop: (o) => finish("SIGTERM", o?.keepData ?? false),
    kill: () => finish("SIGKILL", true),
  };
}

/** Stops the servers one by one, all of them even when one fails to stop, then
 *  reports the first failure. */
export async function stopAll(servers: Server[]): Promise<void> {
  let first: unknown;
  for (const s of servers) {
    try {
      await s.stop();
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== undefined) throw first;
}

/** Each thread of `pid` with its state and where the kernel has it waiting, for the
 *  report on a server that did not stop. */
function threadsOf(pid: number): string {
  const read = (path: string) => {
    try {
      return readFileSync(path, "utf8").trim();
    } catch {
      return "?";
    }
  };
  try {
    return readdirSync(`/proc/${pid}/task`)
      .map((tid) => {
        const state = /^State:\s*(.*)$/m.exec(read(`/proc/${pid}/task/${tid}/status`))?.[1] ?? "?";
        return `  ${tid} ${read(`/proc/${pid}/task/${tid}/comm`)}: ${state}, in ${read(`/proc/${pid}/task/${tid}/wchan`)}`;
      })
      .join("\n");
  } catch {
    return "  (gone)";
  }
}
