import type { FullConfig } from "@playwright/test";
import { startServer } from "./tests/server";

// One server for the whole run, on a free port with a fresh data directory. Tests
// that need to kill or restart a server start their own with `startServer`.
export default async function globalSetup(_config: FullConfig) {
  const server = await startServer();
  process.env.TETHER_BASE_URL = server.url;
  return async () => {
    await server.stop();
  };
}
