/**
 * The process helpers of the tools (the stack, the benchmark, the tests' private servers):
 * running commands, daemons the stack starts and records in pid files (and stops only if they
 * are still what it recorded), bounded waits, TCP and HTTP probes.
 *
 * @module
 */
import { delay } from "../../supabase/functions/_shared/deadline.ts";

/** A failure with a one-line reason for the user; the CLI prints it and exits 1. */
export class StackError extends Error {
  override name = "StackError";
}

export type Log = (line: string) => void;

/** The result of {@link run}: exit code and the captured output. */
export interface RunResult {
  code: number;
  success: boolean;
  stdout: string;
  stderr: string;
}

const decoder = new TextDecoder();

/**
 * Runs a command to completion with captured output, killing it (SIGTERM) after `timeoutMs`
 * (default 120 s); a missing executable is a StackError.
 */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  const { timeoutMs = 120_000, ...rest } = options;
  const signal = AbortSignal.timeout(timeoutMs);
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(cmd, { args, stdin: "null", signal, ...rest }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new StackError(`${cmd} is not installed`);
    throw error;
  }
  const stopped = output.signal === "SIGTERM" && !output.success;
  return {
    code: output.code,
    success: output.success,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr) +
      (stopped ? `\n(${cmd} was stopped after ${timeoutMs / 1000} s)` : ""),
  };
}

/** The absolute path of an executable on PATH (or at a path given), or undefined. */
export function which(cmd: string): string | undefined {
  // Debian puts daemons (pgbouncer) in sbin, which a non-login PATH may lack.
  const dirs = (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  const paths = cmd.includes("/") ? [cmd] : dirs.filter((d) => d !== "").map((d) => `${d}/${cmd}`);
  return paths.find((path) => {
    try {
      const info = Deno.statSync(path);
      return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
    } catch {
      return false;
    }
  });
}

/** Whether this process runs as root (so it may install packages and start system services). */
export const isRoot = () => Deno.uid() === 0;

/** Removes `://user:password@` credentials from text before it is printed. */
export const redact = (text: string) => text.replace(/(\/\/[^\s/:@]+):[^\s/@]*@/g, "$1:***@");

/** The last `lines` lines of a text, indented, for error reports. */
export function tail(text: string, lines = 20): string {
  return redact(text).trimEnd().split("\n").slice(-lines).map((line) => `    ${line}`).join("\n");
}

/** A file's text, or undefined if it cannot be read. */
export function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** The last lines of a log file, or a note that it cannot be read. */
export function logTail(path: string, lines = 20): string {
  const text = readText(path);
  return text === undefined ? `    (no log at ${path})` : tail(text, lines);
}

/** The first line of a failed command's output, for a one-line error. */
export const firstLine = (result: RunResult) =>
  (result.stderr || result.stdout).trim().split("\n")[0] ?? "";

// ---------------------------------------------------------------------------------------------
// Processes

/** Whether a process with this pid exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  if (Deno.build.os === "linux") {
    // "pid (comm) S ...": the state letter follows the last ")". A zombie (its parent has not
    // reaped it, common under a container's init) has ended.
    const stat = readText(`/proc/${pid}/stat`) ?? ") X";
    return !"ZX".includes(stat.charAt(stat.lastIndexOf(")") + 2));
  }
  try {
    Deno.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is alive and still the process the stack recorded: its command line contains
 * `marker`. This guards against pid reuse, so the stack never signals a stranger.
 */
export function isRecordedProcess(pid: number, marker: string): boolean {
  if (!isAlive(pid)) return false;
  if (Deno.build.os === "linux") {
    return readText(`/proc/${pid}/cmdline`)?.split("\0").join(" ").includes(marker) ?? false;
  }
  const ps = new Deno.Command("ps", { args: ["-o", "args=", "-p", String(pid)], stderr: "null" });
  return decoder.decode(ps.outputSync().stdout).includes(marker);
}

/**
 * Sends each signal in turn, waiting up to `graceMs` after each for the process to end.
 * Returns the signal that ended it, or undefined if it survived all of them.
 */
export async function stopProcess(
  pid: number,
  signals: Deno.Signal[] = ["SIGTERM", "SIGKILL"],
  graceMs = 5_000,
): Promise<Deno.Signal | undefined> {
  for (const signal of signals) {
    if (!isAlive(pid)) return signal;
    try {
      Deno.kill(pid, signal);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return signal;
      throw error;
    }
    if (await waitUntil(() => !isAlive(pid), graceMs, 50)) return signal;
  }
  return undefined;
}

/** A command to run in the background, its output going to `logPath`. */
export interface Detached {
  cmd: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  logPath: string;
  /** Only `env` as its environment. */
  clearEnv?: boolean;
}

/**
 * Starts a command in its own session (so Ctrl-C in the calling terminal and the end of the
 * calling shell do not reach it), stdin from /dev/null, stdout and stderr to `logPath`
 * (truncated). Returns its pid; the caller may exit while it runs.
 */
export function spawnDetached(start: Detached): number {
  Deno.mkdirSync(start.logPath.slice(0, start.logPath.lastIndexOf("/")), { recursive: true });
  // sh replaces itself with the command (exec), so the child's pid is the command's pid.
  const script = 'log=$1; shift; exec "$@" >"$log" 2>&1 </dev/null';
  const child = new Deno.Command("sh", {
    args: ["-c", script, "sh", start.logPath, start.cmd, ...start.args],
    cwd: start.cwd,
    env: start.env,
    clearEnv: start.clearEnv ?? false,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  child.unref();
  return child.pid;
}

/** What to wait for after starting a command detached. */
export interface Readiness {
  ready: () => Promise<boolean>;
  timeoutMs: number;
}

/**
 * Starts a command detached and waits for it to be ready; if it exits or is not ready in time,
 * it is stopped and the error quotes its log. `spawned` learns the pid at once (so that an
 * interrupted caller can stop it too).
 */
export async function startDetached(
  name: string,
  start: Detached & Readiness & { spawned?: (pid: number) => void },
): Promise<number> {
  const pid = spawnDetached(start);
  start.spawned?.(pid);
  const ready = await waitUntil(
    async () => !isAlive(pid) || await start.ready(),
    start.timeoutMs,
    50,
  );
  if (ready && isAlive(pid)) return pid;
  const reason = isAlive(pid) ? `was not ready within ${start.timeoutMs / 1000} s` : "exited";
  await stopProcess(pid, ["SIGTERM", "SIGKILL"], 3_000);
  throw new StackError(`${name} ${reason} (log ${start.logPath}):\n${logTail(start.logPath, 10)}`);
}

// ---------------------------------------------------------------------------------------------
// Daemons the stack records in pid files

/** A daemon as the stack records it: the pid file exists only if the stack started it. */
export interface Daemon {
  /** Its name in log lines. */
  name: string;
  pidFile: string;
  /** Part of its command line, checked before it is signalled. */
  marker: string;
}

/** The pid recorded in a pid file, or undefined if there is none (or it is garbage). */
export function readPidFile(path: string): number | undefined {
  const pid = Number(readText(path)?.trim().split(/\s+/)[0]);
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

function recordPid(daemon: Daemon, pid: number): void {
  Deno.mkdirSync(daemon.pidFile.slice(0, daemon.pidFile.lastIndexOf("/")), { recursive: true });
  Deno.writeTextFileSync(daemon.pidFile, `${pid}\n`);
}

/** Records a daemon the stack started its own way, so that `stack down` stops it. */
export function recordStarted(daemon: Daemon, pid: number | undefined, where: string, log: Log) {
  if (pid === undefined) {
    log(`${daemon.name}: started ${where} (pid unknown, \`stack down\` leaves it running)`);
    return;
  }
  recordPid(daemon, pid);
  log(`${daemon.name}: started ${where} (pid ${pid}; \`stack down\` stops it)`);
}

export function removeFile(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** The recorded pid of a daemon, if that process is still running and still the daemon. */
export function runningPid(daemon: Daemon): number | undefined {
  const pid = readPidFile(daemon.pidFile);
  return pid !== undefined && isRecordedProcess(pid, daemon.marker) ? pid : undefined;
}

/** `, started by the stack (pid N)` for a running daemon the stack started; else "". */
export function startedNote(daemon: Daemon): string {
  const pid = runningPid(daemon);
  return pid === undefined ? "" : `, started by the stack (pid ${pid})`;
}

/** Whether a server already answers; if so, says so (and whether the stack started it). */
export function answering(daemon: Daemon, where: string, ready: boolean, log: Log): boolean {
  if (ready) log(`${daemon.name}: running on ${where}${startedNote(daemon)}`);
  return ready;
}

/**
 * Makes sure a daemon of the stack runs: the recorded one is kept if it `fits` (it answers, its
 * settings did not change), else stopped; a new one is started detached and recorded, unless
 * something else listens on its `port` (`portSetting` moves it).
 */
export async function ensureDaemon(
  daemon: Daemon & Detached & Readiness & {
    port: number;
    portSetting: string;
    /** Where it answers, for the log lines. */
    where: string;
    fits: () => Promise<boolean>;
  },
  log: Log,
): Promise<number> {
  const { name, port, where } = daemon;
  const previous = runningPid(daemon);
  if (previous !== undefined) {
    if (await daemon.fits()) {
      log(`${name}: reusing pid ${previous} on ${where}`);
      return previous;
    }
    log(`${name}: restarting pid ${previous} (not answering, or settings changed)`);
    await stopProcess(previous);
  }
  removeFile(daemon.pidFile);
  if (await tcpOpen("127.0.0.1", port)) {
    throw new StackError(
      `port ${port} is in use by another process (set ${daemon.portSetting} to move the ${name})`,
    );
  }
  let pid: number | undefined;
  try {
    pid = await startDetached(name, { ...daemon, spawned: (p) => recordPid(daemon, p) });
  } finally {
    if (pid === undefined) removeFile(daemon.pidFile);
  }
  log(`${name}: started pid ${pid} on ${where} (log ${daemon.logPath})`);
  return pid;
}

/**
 * Stops a daemon if (and only if) the stack started it and it is still what was recorded, by
 * these signals in turn; removes its pid file.
 */
export async function stopDaemon(
  daemon: Daemon,
  log: Log,
  signals: Deno.Signal[] = ["SIGTERM", "SIGKILL"],
  graceMs = 5_000,
): Promise<void> {
  const pid = readPidFile(daemon.pidFile);
  if (pid === undefined) return log(`${daemon.name}: not started by the stack, left as it is`);
  if (isRecordedProcess(pid, daemon.marker)) {
    const by = await stopProcess(pid, signals, graceMs);
    if (by === undefined) throw new StackError(`${daemon.name} (pid ${pid}) did not stop`);
    log(`${daemon.name}: stopped pid ${pid} (${by})`);
  } else {
    log(`${daemon.name}: pid ${pid} is gone or no longer ${daemon.marker}; nothing to stop`);
  }
  removeFile(daemon.pidFile);
}

// ---------------------------------------------------------------------------------------------
// Waiting and probing

/** Polls `check` until it is true or `timeoutMs` passed; returns whether it became true. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() >= deadline) return false;
    const ms = Math.min(intervalMs, Math.max(0, deadline - Date.now()));
    await delay(ms);
  }
  return true;
}

/** Whether something accepts TCP connections on host:port (within `timeoutMs`). */
export async function tcpOpen(hostname: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  try {
    (await Deno.connect({ hostname, port, signal: AbortSignal.timeout(timeoutMs) })).close();
    return true;
  } catch {
    return false;
  }
}

/** The HTTP status of a request, or undefined if nothing answered within `timeoutMs`. */
export async function httpStatus(
  url: string,
  init: RequestInit = {},
  timeoutMs = 2_000,
): Promise<number | undefined> {
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.status;
  } catch {
    return undefined;
  }
}
