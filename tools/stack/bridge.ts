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
import {
  httpStatus,
  isAlive,
  isRecordedProcess,
  logTail,
  readPidFile,
  removeFile,
  spawnDetached,
  StackError,
  stopProcess,
  tcpOpen,
  waitUntil,
  writePidFile,
} from "./process.ts";

type Log = (line: string) => void;

/** What identifies a bridge process in its command line. */
export const BRIDGE_MARKER = "tools/redis_bridge/main.ts";
const HEALTH_TIMEOUT_MS = 15_000;

export const bridgePidPath = (profile: Profile) => `${PIDS_DIR}/bridge-${profile}.pid`;
export const bridgeLogPath = (profile: Profile) => `${LOGS_DIR}/bridge-${profile}.log`;

/** The pid of the profile's running bridge, if the stack started one that is still alive. */
export function runningBridge(profile: Profile): number | undefined {
  const pid = readPidFile(bridgePidPath(profile));
  return pid !== undefined && isRecordedProcess(pid, BRIDGE_MARKER) ? pid : undefined;
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
  const pidPath = bridgePidPath(profile);
  const logPath = bridgeLogPath(profile);

  const previous = runningBridge(profile);
  if (previous !== undefined) {
    if ((await bridgeHealthy(port)) && (await bridgeAcceptsToken(port, token))) {
      log(`bridge: reusing pid ${previous} on http://127.0.0.1:${port}`);
      return;
    }
    log(`bridge: restarting pid ${previous} (unhealthy or settings changed)`);
    await stopProcess(previous, ["SIGTERM", "SIGKILL"], 5_000);
  }
  removeFile(pidPath);

  if (await tcpOpen("127.0.0.1", port)) {
    throw new StackError(
      `port ${port} is already in use by another process (set BRIDGE_PORT to move the bridge)`,
    );
  }
  const main = `${ROOT}/${BRIDGE_MARKER}`;
  try {
    Deno.statSync(main);
  } catch {
    throw new StackError(`${BRIDGE_MARKER} is missing`);
  }
  const env: Record<string, string> = {
    BRIDGE_PORT: String(port),
    BRIDGE_HOSTNAME: "127.0.0.1",
    BRIDGE_TOKEN: token,
    REDIS_URL: Deno.env.get("REDIS_URL") || `redis://${REDIS_HOST}:${REDIS_PORT}`,
  };
  const pid = spawnDetached(
    Deno.execPath(),
    ["run", "--allow-net", "--allow-env", "--allow-read", BRIDGE_MARKER],
    { cwd: ROOT, env, logPath },
  );
  writePidFile(pidPath, pid);

  const healthy = await waitUntil(
    async () => !isAlive(pid) || (await bridgeHealthy(port)),
    HEALTH_TIMEOUT_MS,
    100,
  );
  if (!healthy || !isAlive(pid)) {
    const reason = isAlive(pid)
      ? `did not answer GET /health within ${HEALTH_TIMEOUT_MS / 1000} s`
      : "exited";
    await stopProcess(pid, ["SIGTERM", "SIGKILL"], 3_000);
    removeFile(pidPath);
    console.error(`bridge log (${logPath}):\n${logTail(logPath)}`);
    throw new StackError(`the Redis bridge ${reason} (log: ${logPath})`);
  }
  log(`bridge: started pid ${pid} on http://127.0.0.1:${port} (log ${logPath})`);
}

/** Stops the profile's bridge if the stack started it; removes its pid file. */
export async function stopBridge(profile: Profile, log: Log): Promise<void> {
  const pidPath = bridgePidPath(profile);
  const pid = readPidFile(pidPath);
  if (pid === undefined) {
    log("bridge: not running (no pid file)");
    return;
  }
  if (!isRecordedProcess(pid, BRIDGE_MARKER)) {
    log(`bridge: pid ${pid} is gone or no longer the bridge; nothing to stop`);
    removeFile(pidPath);
    return;
  }
  const by = await stopProcess(pid, ["SIGTERM", "SIGKILL"], 5_000);
  if (by === undefined) throw new StackError(`the Redis bridge (pid ${pid}) did not stop`);
  removeFile(pidPath);
  log(`bridge: stopped pid ${pid} (${by})`);
}
