/**
 * Redis of the local stack: make sure 127.0.0.1:6379 answers PING, starting `redis-server`
 * (installing it as root, if needed) and recording its pid when the stack started it.
 *
 * @module
 */

import { LOCAL, LOGS_DIR, PIDS_DIR } from "./config.ts";
import { ensureCommands } from "./packages.ts";
import {
  answering,
  type Daemon,
  firstLine,
  type Log,
  logTail,
  recordStarted,
  run,
  StackError,
  stopDaemon,
  tcpOpen,
  waitUntil,
} from "./process.ts";
import { RedisPool } from "../redis_bridge/pool.ts";
import { RespError, RespStatus } from "../redis_bridge/resp.ts";

/** redis-server as the stack records it: the pid file exists only if the stack started it. */
export const REDIS_DAEMON: Daemon = {
  name: "redis",
  pidFile: `${PIDS_DIR}/redis.pid`,
  marker: "redis-server",
};

/**
 * Sends one command and returns the reply as text (a status, an error as its message, an
 * integer or a bulk string); throws if nothing answered within `timeoutMs`.
 */
export async function redisCommand(
  host: string,
  port: number,
  parts: string[],
  timeoutMs = 2_000,
): Promise<string> {
  const pool = new RedisPool({
    url: `redis://${host}:${port}`,
    size: 1,
    commandTimeoutMs: timeoutMs,
  });
  try {
    const reply = await pool.command(parts);
    if (reply instanceof RespStatus) return reply.value;
    if (reply instanceof RespError) return reply.message;
    return reply instanceof Uint8Array ? new TextDecoder().decode(reply) : String(reply ?? "");
  } finally {
    await pool.close();
  }
}

export async function redisPing(host: string, port: number): Promise<boolean> {
  try {
    return (await redisCommand(host, port, ["PING"], 1_000)) === "PONG";
  } catch {
    return false;
  }
}

/** The server's pid (INFO server's process_id), or undefined. */
export async function redisServerPid(host: string, port: number): Promise<number | undefined> {
  try {
    const info = await redisCommand(host, port, ["INFO", "server"]);
    const match = /^process_id:(\d+)/m.exec(info);
    return match?.[1] === undefined ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

function writableDir(path: string): boolean {
  const probe = `${path}/.torvus-stack-probe`;
  try {
    Deno.writeTextFileSync(probe, "");
    Deno.removeSync(probe);
    return true;
  } catch {
    return false;
  }
}

/** Makes sure Redis answers on host:port, starting redis-server if needed. */
export async function ensureRedis(host: string, port: number, log: Log): Promise<void> {
  if (answering(REDIS_DAEMON, `${host}:${port}`, await redisPing(host, port), log)) return;
  if (await tcpOpen(host, port)) {
    throw new StackError(`something listens on ${host}:${port} but does not answer Redis PING`);
  }
  await ensureCommands([{ command: "redis-server", pkg: "redis-server", usedBy: "Redis" }], log);
  const systemDirs = writableDir("/var/lib/redis") && writableDir("/var/log/redis");
  const dir = systemDirs ? "/var/lib/redis" : `${LOCAL}/redis`;
  const logFile = systemDirs ? "/var/log/redis/ci.log" : `${LOGS_DIR}/redis.log`;
  if (!systemDirs) {
    Deno.mkdirSync(dir, { recursive: true });
    Deno.mkdirSync(LOGS_DIR, { recursive: true });
  }
  log(`redis: starting redis-server on ${host}:${port}`);
  const bind = host === "127.0.0.1" ? ["127.0.0.1", "-::1"] : [host];
  const args = ["--daemonize", "yes", "--bind", ...bind, "--port", String(port), "--save", ""];
  args.push("--appendonly", "no", "--dir", dir, "--logfile", logFile);
  const start = await run("redis-server", args, { timeoutMs: 15_000 });
  if (!start.success) throw new StackError(`redis-server did not start: ${firstLine(start)}`);
  if (!(await waitUntil(() => redisPing(host, port), 15_000, 100))) {
    throw new StackError(
      `Redis did not answer PING on ${host}:${port} within 15 s (log ${logFile}):\n${
        logTail(logFile, 10)
      }`,
    );
  }
  const pid = await redisServerPid(host, port);
  recordStarted(REDIS_DAEMON, pid, `on ${host}:${port}, log ${logFile}`, log);
}

/** Stops redis-server if (and only if) the stack started it. */
export async function stopRedis(log: Log): Promise<void> {
  await stopDaemon(REDIS_DAEMON, log, ["SIGTERM", "SIGKILL"], 10_000);
}
