/**
 * CLI entry for the Upstash-REST-to-Redis bridge (see bridge.ts for the protocol).
 *
 * Environment:
 * - `BRIDGE_TOKEN` (required, >= 16 chars): bearer token clients must send.
 * - `BRIDGE_PORT` (default 8079), `BRIDGE_HOSTNAME` (default 127.0.0.1).
 * - `REDIS_URL` (default redis://127.0.0.1:6379).
 * - `BRIDGE_COMMAND_TIMEOUT_MS` (default 2000), `BRIDGE_POOL_SIZE` (default 4).
 *
 * Usage: `deno run --allow-net --allow-env tools/redis_bridge/main.ts`
 *
 * @module
 */

import { createBridge, MIN_TOKEN_LENGTH } from "./bridge.ts";

function fail(message: string): never {
  console.error(`redis bridge: ${message}`);
  Deno.exit(1);
}

function intEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    fail(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return n;
}

const token = Deno.env.get("BRIDGE_TOKEN");
if (!token || token.length < MIN_TOKEN_LENGTH) {
  // Never echo the token itself, not even a wrong one.
  fail(`BRIDGE_TOKEN must be set to a secret of at least ${MIN_TOKEN_LENGTH} characters`);
}
const port = intEnv("BRIDGE_PORT", 8079, 0, 65535);
const hostname = Deno.env.get("BRIDGE_HOSTNAME") || "127.0.0.1";
const redisUrl = Deno.env.get("REDIS_URL") || "redis://127.0.0.1:6379";
const commandTimeoutMs = intEnv("BRIDGE_COMMAND_TIMEOUT_MS", 2000, 1, 600_000);
const poolSize = intEnv("BRIDGE_POOL_SIZE", 4, 1, 64);

let bridge;
try {
  bridge = createBridge({ token, redisUrl, commandTimeoutMs, poolSize });
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}

const server = Deno.serve({
  port,
  hostname,
  onListen: (addr) => {
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    console.log(`redis bridge listening on http://${host}:${addr.port}`);
  },
}, bridge.handler);

const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  for (const s of signals) Deno.removeSignalListener(s, shutdown);
  // Stop accepting, let in-flight requests finish, then release the Redis connections.
  await server.shutdown();
  await bridge.close();
  console.log("redis bridge stopped");
};
for (const s of signals) Deno.addSignalListener(s, shutdown);
