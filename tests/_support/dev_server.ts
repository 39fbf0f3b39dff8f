/**
 * Child processes of the end-to-end suites: a dev server of their own against the test profile's
 * database and Redis bridge (`startDevServer`), processes whose output goes to a log file
 * (`spawnLogged`), bounded waits, free ports and log tails.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { devServerArgs, EDGE_DENO, EDGE_DENO_ENV } from "../../tools/runtime/edge_deno.ts";
import { parseEnvFile } from "../../tools/local_env.ts";
import { randomToken } from "../../tools/stack/config.ts";
import { httpStatus } from "../../tools/stack/process.ts";

/** The repository root, without a trailing slash. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
/** Where child processes write their logs. */
export const LOG_DIR = `${ROOT}/.local/logs`;

/** A child process whose output goes to a log file. */
export interface Child {
  name: string;
  pid: number;
  log: string;
  /** Resolves when the process ends. */
  status: Promise<Deno.CommandStatus>;
  /** Set once the process has ended. */
  exited: Deno.CommandStatus | undefined;
  /** Sends a signal (ignored once the process has ended). */
  kill(signal?: Deno.Signal): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
}

/** The variables a child needs from this process: PATH, HOME and Deno's cache. */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "TMPDIR", "LANG"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/**
 * Starts `cmd args…` with only `env` in its environment, stdout and stderr appended to `log`.
 * The shell `exec`s the command, so the pid is the command's own and signals reach it.
 */
export function spawnLogged(
  name: string,
  cmd: string,
  args: readonly string[],
  options: { env: Record<string, string>; log: string; cwd?: string },
): Child {
  Deno.mkdirSync(LOG_DIR, { recursive: true });
  const process = new Deno.Command("/bin/sh", {
    args: ["-c", 'exec "$0" "$@" >>"$CHILD_LOG" 2>&1 </dev/null', cmd, ...args],
    env: { ...options.env, CHILD_LOG: options.log },
    clearEnv: true,
    cwd: options.cwd ?? ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const child: Child = {
    name,
    pid: process.pid,
    log: options.log,
    exited: undefined,
    status: process.status.then((s) => {
      child.exited = s;
      return s;
    }),
    kill(signal = "SIGTERM") {
      if (child.exited !== undefined) return;
      try {
        process.kill(signal);
      } catch {
        // already gone
      }
    },
    async stop(graceMs = 5000) {
      if (child.exited !== undefined) return child.exited;
      child.kill("SIGCONT");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      try {
        return await child.status;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  return child;
}

/** Resolves once `probe` is true; rejects after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs: number,
  intervalMs = 100,
): Promise<number> {
  const start = performance.now();
  while (true) {
    let ok = false;
    try {
      ok = await probe();
    } catch {
      ok = false;
    }
    const elapsed = performance.now() - start;
    if (ok) return elapsed;
    if (elapsed > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

/** Waits `ms` milliseconds (the tree's one pause, deadline.ts). */
export { delay as sleep } from "../../supabase/functions/_shared/deadline.ts";
import { delay as sleep } from "../../supabase/functions/_shared/deadline.ts";

/** A TCP port nobody listens on right now (bound and released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Settings of the stack a dev server of our own runs against. */
export interface StackEnv {
  dbUrl: string;
  redisUrl: string;
  redisToken: string;
  redisPrefix: string;
  keyFile: string | undefined;
  /** Where they came from. */
  source: string;
}

/**
 * The database and Redis bridge of the test profile: from the environment when
 * `SUPABASE_DB_URL` and `UPSTASH_REDIS_REST_URL` are set there (scripts/test exports them),
 * else from `.local/<TORVUS_PROFILE or test>.env`.
 */
export function stackEnv(): StackEnv {
  const env = (n: string) => Deno.env.get(n);
  let get = env;
  let source = "environment";
  if (!env("SUPABASE_DB_URL") || !env("UPSTASH_REDIS_REST_URL")) {
    const profile = env("TORVUS_PROFILE") ?? "test";
    const file = `${ROOT}/.local/${profile}.env`;
    let values: Map<string, string>;
    try {
      values = parseEnvFile(Deno.readTextFileSync(file));
    } catch {
      throw new Error(
        `no stack settings: set SUPABASE_DB_URL and UPSTASH_REDIS_REST_URL/_TOKEN, or run ` +
          `\`deno task stack up --profile ${profile}\` (${file} is missing)`,
      );
    }
    get = (n) => env(n) ?? values.get(n);
    source = file;
  }
  const need = (n: string) => {
    const v = get(n);
    if (!v) throw new Error(`${n} is not set (${source})`);
    return v;
  };
  return {
    dbUrl: need("SUPABASE_DB_URL"),
    redisUrl: need("UPSTASH_REDIS_REST_URL"),
    redisToken: need("UPSTASH_REDIS_REST_TOKEN"),
    redisPrefix: get("TORVUS_REDIS_PREFIX") ?? "torvus-test",
    keyFile: get("TORVUS_AUTH_KEY_FILE") || undefined,
    source,
  };
}

/** A dev server of our own. */
export interface DevServer extends Child {
  url: string;
  port: number;
  /** The token issuer it expects: `${url}/auth/v1`. */
  issuer: string;
}

/** Options of {@link startDevServer}. */
export interface DevServerOptions {
  port: number;
  dbUrl: string;
  redisUrl: string;
  redisToken: string;
  redisPrefix: string;
  /** Log file name under .local/logs. */
  logName: string;
  keyFile?: string | undefined;
  /** Further variables (they win over the defaults). */
  extraEnv?: Record<string, string>;
  /** How long to wait for it to answer; default 30 s. */
  readyTimeoutMs?: number;
}

/**
 * Starts tools/dev_server.ts on `port` against the given database and Redis bridge, serving
 * its own JWKS (so tokens minted with {@link DevServer.issuer} verify), passing
 * `X-Forwarded-For` through, and waits until it answers.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const url = `http://127.0.0.1:${options.port}`;
  const env: Record<string, string> = {
    ...baseEnv(),
    SUPABASE_URL: url,
    SUPABASE_JWKS_URL: `${url}/auth/v1/.well-known/jwks.json`,
    SUPABASE_DB_URL: options.dbUrl,
    UPSTASH_REDIS_REST_URL: options.redisUrl,
    UPSTASH_REDIS_REST_TOKEN: options.redisToken,
    TORVUS_HOST: "127.0.0.1",
    TORVUS_PORT: String(options.port),
    TORVUS_REDIS_PREFIX: options.redisPrefix,
    TORVUS_DEV_PASS_FORWARDED: "true",
    TORVUS_RUNTIME_CONTROL: "true",
    TORVUS_GATEWAY_SECRET: randomToken(),
    TORVUS_DIRECT_ACCESS: "allow",
    TORVUS_DIRECT_IP_SOURCE: "header:cf-connecting-ip",
    TORVUS_LOG_REQUESTS_PER_10S: "1000000",
    TORVUS_KEY_MODES: "live,test",
    // A profile without a settings file: nothing is filled in from .local/<profile>.env.
    TORVUS_PROFILE: options.logName,
    ...(options.keyFile ? { TORVUS_AUTH_KEY_FILE: options.keyFile } : {}),
    ...options.extraEnv,
  };
  const log = `${LOG_DIR}/${options.logName}-server.log`;
  await Deno.writeTextFile(log, "");
  const child = spawnLogged("dev server", EDGE_DENO, devServerArgs(), {
    env: { ...env, ...EDGE_DENO_ENV },
    log,
  });
  const server: DevServer = Object.assign(child, {
    url,
    port: options.port,
    issuer: `${url}/auth/v1`,
  });
  try {
    await waitFor(
      `dev server on ${url}`,
      async () => {
        if (child.exited) throw new Error(`dev server exited: ${await tail(log)}`);
        return (await httpStatus(`${url}/api/v1/health`, {}, 1000)) !== undefined;
      },
      options.readyTimeoutMs ?? 30_000,
    );
  } catch (error) {
    await child.stop();
    throw new Error(`${(error as Error).message}\n${await tail(log)}`);
  }
  return server;
}

/** The last lines of a log file (for failure messages). */
export async function tail(path: string, lines = 20): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
