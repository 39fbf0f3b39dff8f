/**
 * Process and I/O helpers of the local stack: running commands, pid files, stopping processes
 * the stack started (and only those), bounded waits, TCP and HTTP probes.
 *
 * @module
 */

/** A failure with a one-line reason for the user; the CLI prints it and exits 1. */
export class StackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StackError";
  }
}

/** The result of {@link run}: exit code and the captured output. */
export interface RunResult {
  code: number;
  success: boolean;
  stdout: string;
  stderr: string;
}

/** Options of {@link run}. */
export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Kill the command (SIGTERM) after this many milliseconds; default 120 s. */
  timeoutMs?: number;
}

const decoder = new TextDecoder();

/** Runs a command to completion with captured output; a missing executable is a StackError. */
export async function run(
  cmd: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const command = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  let output: Deno.CommandOutput;
  try {
    output = await command.output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new StackError(`${cmd} is not installed`);
    throw error;
  }
  const result = {
    code: output.code,
    success: output.success,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
  if (output.signal === "SIGTERM" && !output.success) {
    result.stderr += `\n(${cmd} was stopped after ${timeoutMs / 1000} s)`;
  }
  return result;
}

/** The absolute path of an executable on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  // Debian puts daemons (pgbouncer) in sbin, which a non-login PATH may lack.
  const dirs = (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  for (const dir of dirs) {
    if (dir === "") continue;
    const path = `${dir}/${cmd}`;
    try {
      const info = Deno.statSync(path);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return path;
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

/** The last lines of a log file, or a note that it cannot be read. */
export function logTail(path: string, lines = 20): string {
  try {
    return tail(Deno.readTextFileSync(path), lines);
  } catch {
    return `    (no log at ${path})`;
  }
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
export function commandLine(pid: number): string | undefined {
  if (Deno.build.os !== "linux") {
    try {
      const out = new Deno.Command("ps", {
        args: ["-o", "args=", "-p", String(pid)],
        stderr: "null",
      })
        .outputSync();
      const text = decoder.decode(out.stdout).trim();
      return out.success && text !== "" ? text : undefined;
    } catch {
      return undefined;
    }
  }
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
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
  const cmdline = commandLine(pid);
  return cmdline !== undefined && cmdline.includes(marker);
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

// ---------------------------------------------------------------------------------------------
// Pid files

/** The pid recorded in a pid file, or undefined if there is none (or it is garbage). */
export function readPidFile(path: string): number | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
  const pid = Number(text.trim().split(/\s+/)[0]);
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

/** Records a pid (creating the directory). */
export function writePidFile(path: string, pid: number): void {
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  Deno.writeTextFileSync(path, `${pid}\n`);
}

/** Removes a file if it exists. */
export function removeFile(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
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
    args: [
      "-c",
      'log=$1; shift; exec "$@" >"$log" 2>&1 </dev/null',
      "sh",
      options.logPath,
      cmd,
      ...args,
    ],
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

// ---------------------------------------------------------------------------------------------
// Waiting and probing

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
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
