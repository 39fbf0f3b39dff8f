/**
 * The process helpers of the tools (the stack, the benchmark, the tests' private servers):
 * running commands, daemons the stack starts and records in pid files (and stops only if they
 * are still what it recorded), bounded waits, TCP and HTTP probes.
 *
 * @module
 */

/** A failure with a one-line reason for the user; the CLI prints it and exits 1. */
export class StackError extends Error {
  override name = "StackError";
}

/** Where progress lines go. */
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
  const command = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
    ...rest,
  });
  let output: Deno.CommandOutput;
  try {
    output = await command.output();
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

/** The absolute path of an executable on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  // Debian puts daemons (pgbouncer) in sbin, which a non-login PATH may lack.
  const dirs = (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  for (const dir of dirs.filter((d) => d !== "")) {
    try {
      const info = Deno.statSync(`${dir}/${cmd}`);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return `${dir}/${cmd}`;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Whether this process runs as root (so it may install packages and start system services). */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** Removes `://user:password@` credentials from text before it is printed. */
export function redact(text: string): string {
  return text.replace(/(\/\/[^\s/:@]+):[^\s/@]*@/g, "$1:***@");
}

/** The last `lines` lines of a text, indented, for error reports. */
export function tail(text: string, lines = 20): string {
  const all = redact(text).trimEnd().split("\n");
  return all.slice(-lines).map((line) => `    ${line}`).join("\n");
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
export function firstLine(result: RunResult): string {
  return (result.stderr || result.stdout).trim().split("\n")[0] ?? "";
}

// ---------------------------------------------------------------------------------------------
// Processes

/** Whether a process with this pid exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  if (Deno.build.os !== "linux") {
    try {
      Deno.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  try {
    // "pid (comm) S ...": the state letter follows the last ")". A zombie (its parent has not
    // reaped it, common under a container's init) has ended.
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** The command line of a process (arguments joined by spaces), or undefined if it is gone. */
function commandLine(pid: number): string | undefined {
  try {
    if (Deno.build.os === "linux") {
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
    }
    const out = new Deno.Command("ps", { args: ["-o", "args=", "-p", String(pid)], stderr: "null" })
      .outputSync();
    const text = decoder.decode(out.stdout).trim();
    return out.success && text !== "" ? text : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is alive and still the process the stack recorded: its command line contains
 * `marker`. This guards against pid reuse, so the stack never signals a stranger.
 */
export function isRecordedProcess(pid: number, marker: string): boolean {
  if (!isAlive(pid)) return false;
  return commandLine(pid)?.includes(marker) ?? false;
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

/**
 * Starts a command in its own session (so Ctrl-C in the calling terminal and the end of the
 * calling shell do not reach it), stdin from /dev/null, stdout and stderr to `logPath`
 * (truncated), with only `env` as its environment when `clearEnv`. Returns its pid; the caller
 * may exit while it runs.
 */
export function spawnDetached(
  cmd: string,
  args: string[],
  options: { cwd: string; env: Record<string, string>; logPath: string; clearEnv?: boolean },
): number {
  Deno.mkdirSync(options.logPath.slice(0, options.logPath.lastIndexOf("/")), { recursive: true });
  // sh replaces itself with the command (exec), so the child's pid is the command's pid.
  const child = new Deno.Command("sh", {
    args: ["-c", 'log=$1; shift; exec "$@" >"$log" 2>&1 </dev/null', "sh", options.logPath, cmd]
      .concat(args),
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.clearEnv ?? false,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  child.unref();
  return child.pid;
}

/**
 * Starts a command detached ({@link spawnDetached}) and waits up to `timeoutMs` for `ready`;
 * if it exits or is not ready by then, it is stopped and the error quotes its log. `spawned`
 * learns the pid at once (so that an interrupted caller can stop it too).
 */
export async function startDetached(
  name: string,
  start: {
    cmd: string;
    args: string[];
    cwd: string;
    env: Record<string, string>;
    logPath: string;
    clearEnv?: boolean;
    ready: () => Promise<boolean>;
    timeoutMs: number;
    spawned?: (pid: number) => void;
  },
): Promise<number> {
  const pid = spawnDetached(start.cmd, start.args, start);
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

/** Records a daemon's pid (creating the directory). */
export function recordPid(daemon: Daemon, pid: number): void {
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

/** Removes a file if it exists. */
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

/**
 * Makes sure a daemon of the stack runs: the recorded one is kept if `fits` (it answers, its
 * settings did not change), else stopped; a new one is started detached on `port` (refused if
 * anything else listens there: `portSetting` moves it) and recorded.
 */
export async function ensureDaemon(
  daemon: Daemon & {
    cmd: string;
    args: string[];
    cwd: string;
    env: Record<string, string>;
    logPath: string;
    port: number;
    portSetting: string;
    /** Where it answers, for the log lines. */
    where: string;
    ready: () => Promise<boolean>;
    fits: () => Promise<boolean>;
    timeoutMs: number;
  },
  log: Log,
): Promise<number> {
  const previous = runningPid(daemon);
  if (previous !== undefined) {
    if (await daemon.fits()) {
      log(`${daemon.name}: reusing pid ${previous} on ${daemon.where}`);
      return previous;
    }
    log(`${daemon.name}: restarting pid ${previous} (not answering, or settings changed)`);
    await stopProcess(previous);
  }
  removeFile(daemon.pidFile);
  if (await tcpOpen("127.0.0.1", daemon.port)) {
    throw new StackError(
      `port ${daemon.port} is in use by another process (set ${daemon.portSetting} to move the ` +
        `${daemon.name})`,
    );
  }
  let pid: number | undefined;
  try {
    pid = await startDetached(daemon.name, { ...daemon, spawned: (p) => recordPid(daemon, p) });
  } finally {
    if (pid === undefined) removeFile(daemon.pidFile);
  }
  log(`${daemon.name}: started pid ${pid} on ${daemon.where} (log ${daemon.logPath})`);
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
  if (pid === undefined) {
    log(`${daemon.name}: not started by the stack, left as it is`);
    return;
  }
  if (!isRecordedProcess(pid, daemon.marker)) {
    log(`${daemon.name}: pid ${pid} is gone or no longer ${daemon.marker}; nothing to stop`);
    removeFile(daemon.pidFile);
    return;
  }
  const by = await stopProcess(pid, signals, graceMs);
  if (by === undefined) throw new StackError(`${daemon.name} (pid ${pid}) did not stop`);
  removeFile(daemon.pidFile);
  log(`${daemon.name}: stopped pid ${pid} (${by})`);
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
  while (true) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    const ms = Math.min(intervalMs, Math.max(0, deadline - Date.now()));
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
}

/** Whether something accepts TCP connections on host:port (within `timeoutMs`). */
export async function tcpOpen(hostname: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname, port, signal: AbortSignal.timeout(timeoutMs) });
    conn.close();
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
