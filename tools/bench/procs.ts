/**
 * Processes the benchmark starts (bridge, dev server, baseline, load tool): spawned with their
 * output in a log file, recorded, and all stopped at the end, on failure and on Ctrl-C.
 *
 * @module
 */

/** A process the benchmark started and will stop. */
export interface Proc {
  name: string;
  pid: number;
  child: Deno.ChildProcess;
  logPath: string;
}

const started: Proc[] = [];

/** Environment variables passed through to children besides the ones a caller sets. */
const PASS_ENV = [
  "PATH",
  "HOME",
  "TMPDIR",
  "LANG",
  "TZ",
  "TORVUS_AUTH_KEY_FILE",
  // Deno's cache and how it reaches registries (certificates, proxies).
  "DENO_DIR",
  "DENO_CERT",
  "DENO_TLS_CA_STORE",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "NODE_EXTRA_CA_CERTS",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "NPM_CONFIG_REGISTRY",
];

/** A clean environment for a child (no settings of other profiles): a few basics plus `extra`. */
export function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of PASS_ENV) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

/**
 * Starts `cmd args` with stdout and stderr written to `logPath` by the kernel (`sh` execs the
 * command, so the pid is the command's own), and records it for {@link stopAll}.
 */
export function spawnLogged(
  name: string,
  cmd: string,
  args: string[],
  options: { cwd: string; env: Record<string, string>; logPath: string },
): Proc {
  Deno.mkdirSync(options.logPath.slice(0, options.logPath.lastIndexOf("/")), { recursive: true });
  const child = new Deno.Command("sh", {
    args: ["-c", 'log=$1; shift; exec "$@" >"$log" 2>&1 </dev/null', "sh", options.logPath, cmd]
      .concat(args),
    cwd: options.cwd,
    env: options.env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const proc = { name, pid: child.pid, child, logPath: options.logPath };
  started.push(proc);
  return proc;
}

/** Records a child spawned elsewhere (the load tool) so that an interrupt stops it too. */
export function track(name: string, child: Deno.ChildProcess): () => void {
  const proc = { name, pid: child.pid, child, logPath: "" };
  started.push(proc);
  return () => {
    const i = started.indexOf(proc);
    if (i >= 0) started.splice(i, 1);
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Whether a child has ended within `ms`. */
async function endsWithin(child: Deno.ChildProcess, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  const ended = await Promise.race([child.status.then(() => true), timeout]);
  clearTimeout(timer);
  return ended;
}

/** Stops one process: SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(proc: Proc, graceMs = 8_000): Promise<void> {
  const i = started.indexOf(proc);
  if (i >= 0) started.splice(i, 1);
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    try {
      proc.child.kill(signal);
    } catch {
      return; // already gone
    }
    if (await endsWithin(proc.child, graceMs)) return;
  }
}

let stopping: Promise<void> | undefined;

/**
 * Stops every recorded process, newest first. Concurrent calls (an interrupt while the normal
 * clean-up runs) share one pass, so every process is waited for before anyone exits.
 */
export function stopAll(log: (line: string) => void = () => {}): Promise<void> {
  stopping ??= (async () => {
    while (started.length > 0) {
      const proc = started[started.length - 1]!;
      await stop(proc);
      log(`stopped ${proc.name} (pid ${proc.pid})`);
    }
  })().finally(() => stopping = undefined);
  return stopping;
}

/** Runs `cleanup` then exits on SIGINT or SIGTERM. */
export function onInterrupt(cleanup: () => Promise<void>): void {
  let stopping = false;
  const handler = async () => {
    if (stopping) return;
    stopping = true;
    console.error("\ninterrupted: stopping what the benchmark started");
    await cleanup();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", handler);
  Deno.addSignalListener("SIGTERM", handler);
}

/** Whether nothing listens on 127.0.0.1:`port`. */
export function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/** Polls `url` until it answers 2xx, `timeoutMs` passes or `proc` (if given) ends. */
export async function waitHttp(
  url: string,
  timeoutMs: number,
  proc?: Proc,
  init: RequestInit = {},
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && await endsWithin(proc.child, 0)) return false;
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.ok) return true;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  return false;
}

/** The last lines of a log file, indented. */
export function logTail(path: string, lines = 15): string {
  try {
    return Deno.readTextFileSync(path).trimEnd().split("\n").slice(-lines).map((l) => `    ${l}`)
      .join("\n");
  } catch {
    return `    (no log at ${path})`;
  }
}
