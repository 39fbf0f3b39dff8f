/**
 * The Upstash-REST-to-Redis bridge of a profile (tools/redis_bridge/main.ts), run detached in
 * the background: pid in `.local/pids/bridge-<profile>.pid`, output in
 * `.local/logs/bridge-<profile>.log`.
 *
 * @module
 */

import {
  LOGS_DIR,
  PIDS_DIR,
  portOf,
  type Profile,
  REDIS_HOST,
  REDIS_PORT,
  ROOT,
  type Settings,
} from "./config.ts";
import { type Daemon, ensureDaemon, httpStatus, type Log, stopDaemon } from "./process.ts";

export const BRIDGE_MARKER = "tools/redis_bridge/main.ts";

export const bridgePidPath = (profile: Profile) => `${PIDS_DIR}/bridge-${profile}.pid`;

/** The bridge of a profile, as the stack records it. */
export const bridgeDaemon = (profile: Profile): Daemon => ({
  name: "bridge",
  pidFile: bridgePidPath(profile),
  marker: BRIDGE_MARKER,
});

/** How a bridge on `port` accepting `token` is run (the benchmark runs one of its own too). */
export function bridgeCommand(
  port: number,
  token: string,
  redisUrl = Deno.env.get("REDIS_URL") || `redis://${REDIS_HOST}:${REDIS_PORT}`,
) {
  return {
    cmd: Deno.execPath(),
    args: ["run", "--allow-net", "--allow-env", "--allow-read", BRIDGE_MARKER],
    cwd: ROOT,
    env: {
      BRIDGE_PORT: String(port),
      BRIDGE_HOSTNAME: "127.0.0.1",
      BRIDGE_TOKEN: token,
      REDIS_URL: redisUrl,
    },
  };
}

/** Whether the bridge on `port` answers `GET /health` with 200. */
export async function bridgeHealthy(port: number): Promise<boolean> {
  return (await httpStatus(`http://127.0.0.1:${port}/health`, {}, 2_000)) === 200;
}

/** Whether the bridge on `port` accepts `token` (an authenticated PING). */
async function bridgeAcceptsToken(port: number, token: string): Promise<boolean> {
  const status = await httpStatus(`http://127.0.0.1:${port}/`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: '["PING"]',
  });
  return status === 200;
}

/** Starts the profile's bridge, or reuses the one an earlier `up` started if it still fits. */
export async function ensureBridge(profile: Profile, settings: Settings, log: Log): Promise<void> {
  const port = portOf(settings, "BRIDGE_PORT");
  const token = settings.values.get("UPSTASH_REDIS_REST_TOKEN") ?? "";
  await ensureDaemon({
    ...bridgeDaemon(profile),
    ...bridgeCommand(port, token),
    logPath: `${LOGS_DIR}/bridge-${profile}.log`,
    port,
    portSetting: "BRIDGE_PORT",
    where: `http://127.0.0.1:${port}`,
    ready: () => bridgeHealthy(port),
    fits: async () => await bridgeHealthy(port) && await bridgeAcceptsToken(port, token),
    timeoutMs: 15_000,
  }, log);
}

export async function stopBridge(profile: Profile, log: Log): Promise<void> {
  await stopDaemon(bridgeDaemon(profile), log);
}
