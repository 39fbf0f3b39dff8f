/**
 * Redis of the local stack: make sure 127.0.0.1:6379 answers PING, starting `redis-server`
 * (installing it as root, if needed) and recording its pid when the stack started it.
 *
 * @module
 */

import { LOCAL, LOGS_DIR, PIDS_DIR } from "./config.ts";
import { aptInstall } from "./packages.ts";
import {
  isRecordedProcess,
  isRoot,
  logTail,
  readPidFile,
  removeFile,
  run,
  StackError,
  stopProcess,
  tcpOpen,
  waitUntil,
  which,
  writePidFile,
} from "./process.ts";

/** Marker: exists only if the stack started redis-server; holds its pid. */
export const REDIS_MARKER = `${PIDS_DIR}/redis.pid`;

type Log = (line: string) => void;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Sends one command and returns the reply as text (a simple string, an error as "-ERR ...",
 * an integer or a bulk string); throws if nothing (complete) answered within `timeoutMs`.
 */
export async function redisCommand(
  host: string,
  port: number,
  parts: string[],
  timeoutMs = 2_000,
): Promise<string> {
  const signal = AbortSignal.timeout(timeoutMs);
  const conn = await Deno.connect({ hostname: host, port, signal });
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const request = `*${parts.length}\r\n` +
      parts.map((p) => `$${encoder.encode(p).length}\r\n${p}\r\n`).join("");
    await conn.write(encoder.encode(request));
    let buffer = new Uint8Array(0);
    const chunk = new Uint8Array(16_384);
    while (true) {
      const reply = complete(buffer);
      if (reply !== undefined) return reply;
      const n = await conn.read(chunk);
      if (n === null) throw new Error("connection closed");
      const next = new Uint8Array(buffer.length + n);
      next.set(buffer);
      next.set(chunk.subarray(0, n), buffer.length);
      buffer = next;
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // already closed by the timer
    }
  }
}

/** The reply in `buffer` if it is complete (only the reply types PING and INFO produce). */
function complete(buffer: Uint8Array): string | undefined {
  const lineEnd = buffer.indexOf(0x0a);
  if (lineEnd < 0) return undefined;
  const line = decoder.decode(buffer.subarray(0, lineEnd)).replace(/\r$/, "");
  if (line.startsWith("$")) {
    const length = Number(line.slice(1));
    if (length < 0) return "";
    if (buffer.length < lineEnd + 1 + length) return undefined;
    return decoder.decode(buffer.subarray(lineEnd + 1, lineEnd + 1 + length));
  }
  return line.startsWith("+") || line.startsWith(":") ? line.slice(1) : line;
}

/** Whether Redis answers PING with PONG. */
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
  try {
    if (!Deno.statSync(path).isDirectory) return false;
    const probe = `${path}/.torvus-stack-probe`;
    Deno.writeTextFileSync(probe, "");
    Deno.removeSync(probe);
    return true;
  } catch {
    return false;
  }
}

/** Makes sure Redis answers on host:port, starting redis-server if needed. */
export async function ensureRedis(host: string, port: number, log: Log): Promise<void> {
  if (await redisPing(host, port)) {
    const pid = readPidFile(REDIS_MARKER);
    const ours = pid !== undefined && isRecordedProcess(pid, "redis-server");
    log(`redis: running on ${host}:${port}${ours ? ` (started by the stack, pid ${pid})` : ""}`);
    return;
  }
  if (await tcpOpen(host, port)) {
    throw new StackError(`something listens on ${host}:${port} but does not answer Redis PING`);
  }
  if (which("redis-server") === undefined) {
    if (!isRoot()) {
      throw new StackError(
        "Redis is not installed: run as root or `sudo apt-get install redis-server`",
      );
    }
    await aptInstall(["redis-server"], log);
  }
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
  if (!start.success) {
    throw new StackError(
      `redis-server did not start: ${(start.stderr || start.stdout).trim().split("\n")[0]}`,
    );
  }
  if (!(await waitUntil(() => redisPing(host, port), 15_000, 100))) {
    throw new StackError(
      `Redis did not answer PING on ${host}:${port} within 15 s (log ${logFile}):\n${
        logTail(logFile, 10)
      }`,
    );
  }
  const pid = await redisServerPid(host, port);
  if (pid === undefined) {
    log("redis: started (pid unknown, `stack down` leaves it running)");
    return;
  }
  writePidFile(REDIS_MARKER, pid);
  log(`redis: started pid ${pid} (\`stack down\` stops it; log ${logFile})`);
}

/** Stops redis-server if (and only if) the stack started it. */
export async function stopRedis(log: Log): Promise<void> {
  const pid = readPidFile(REDIS_MARKER);
  if (pid === undefined) {
    log("redis: not started by the stack, left running");
    return;
  }
  if (!isRecordedProcess(pid, "redis-server")) {
    log(`redis: pid ${pid} is gone or no longer redis-server; nothing to stop`);
    removeFile(REDIS_MARKER);
    return;
  }
  const by = await stopProcess(pid, ["SIGTERM", "SIGKILL"], 10_000);
  if (by === undefined) throw new StackError(`redis-server (pid ${pid}) did not stop`);
  removeFile(REDIS_MARKER);
  log(`redis: stopped pid ${pid} (${by})`);
}
