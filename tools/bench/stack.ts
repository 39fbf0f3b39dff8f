/**
 * The benchmark's own stack, shaped like production: database `torvus_bench` reset to the
 * migrations (function statistics on), a PgBouncer of its own in transaction mode that the
 * functions reach it through, a Redis bridge of its own with a Redis prefix of its own, an ES256
 * JWKS served by this process, and each function served alone on Deno 2.1 through
 * tools/bench/serve.ts, with the gateway's secret and client address on every request.
 * PostgreSQL and Redis are made to run with the stack's helpers and left running; everything
 * else started here is stopped by the `stop` that {@link startStack} hands out.
 *
 * @module
 */
import postgres from "postgres";
import { EDGE_DENO, EDGE_DENO_ENV } from "../runtime/edge_deno.ts";
import { LOCAL, randomToken, REDIS_HOST, REDIS_PORT, ROOT } from "../stack/config.ts";
import { ensurePgbouncer, stopPgbouncer } from "../stack/pgbouncer.ts";
import { ensureCommands, TOOL_REQUIREMENTS } from "../stack/packages.ts";
import { ensurePostgres, migrateDatabase } from "../stack/postgres.ts";
import { ensureRedis, redisCommand, redisServerPid } from "../stack/redis.ts";
import {
  type Detached,
  httpStatus,
  type Log,
  startDetached,
  stopProcess,
  tcpOpen,
} from "../stack/process.ts";
import { publicJwks } from "../local_auth.ts";
import { bridgeCommand } from "../stack/bridge.ts";
import { parentPid } from "./meter.ts";
import { inspectorPortOf } from "./profile.ts";

/** The processes a case may load: the bare baseline, the functions and their floor (floor.ts). */
export const SERVED = ["baseline", "v1-test", "me", "vaults", "api-keys", "floor"] as const;
export type Served = (typeof SERVED)[number];

/** Names and ports of the benchmark (clear of the dev and test profiles and other tools). */
export const BENCH = {
  database: "torvus_bench",
  redisPrefix: "torvus-bench",
  bridgePort: 8090,
  poolerPort: 6545,
  authPort: 29350,
  /** The served processes listen on 29351 and up, in {@link SERVED}'s order. */
  firstPort: 29351,
};
const LOGS = `${LOCAL}/bench/logs`;
/** Where a started process writes its output. */
export const logPathOf = (name: string) => `${LOGS}/${name}.log`;
/** The port a served process listens on. */
export const portOf = (name: Served) => BENCH.firstPort + SERVED.indexOf(name);
const DIRECT_URL = `postgresql://postgres@127.0.0.1:5432/${BENCH.database}?sslmode=disable`;

/** What the cases need of the running stack. */
export interface Stack {
  sql: postgres.Sql;
  /** CPU time readers' pids. */
  pids: Record<Served | "bridge" | "redis" | "postgres" | "pgbouncer", number>;
  /** Headers of the gateway (its secret) stating `ip` as the client's address. */
  gateway(ip: string): Record<string, string>;
  /** The issuer of the tokens the functions accept. */
  issuer: string;
}

/** Creates or resets the database (function statistics on) and clears the Redis prefix. */
async function resetData(log: Log): Promise<void> {
  // wrk and PgBouncer, as `stack up` installs them: a fresh machine benches without a hand step.
  await ensureCommands(TOOL_REQUIREMENTS, log);
  await ensurePostgres("127.0.0.1", 5432, log);
  await ensureRedis(REDIS_HOST, REDIS_PORT, log);
  const admin = postgres(DIRECT_URL.replace(`/${BENCH.database}?`, "/postgres?"), { max: 1 });
  const [exists] = await admin`select 1 from pg_database where datname = ${BENCH.database}`;
  if (!exists) await admin.unsafe(`create database ${BENCH.database}`);
  await admin.unsafe(`alter database ${BENCH.database} set track_functions = 'all'`);
  await admin.end();
  await migrateDatabase(DIRECT_URL, "reset", () => {});
  log(`database: ${BENCH.database} reset to the migrations, track_functions = all`);
  const script = "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do " +
    "redis.call('DEL', k) n = n + 1 end return n";
  const keys = `${BENCH.redisPrefix}:*`;
  const cleared = await redisCommand(REDIS_HOST, REDIS_PORT, ["EVAL", script, "0", keys]);
  log(`redis: ${cleared} keys under ${BENCH.redisPrefix}: cleared`);
}

/**
 * Starts the stack; `started.stop` stops what it started so far (on Ctrl-C too), and is called
 * on failure before the error is thrown. With `profile`, each function opens the V8 inspector
 * (tools/bench/profile.ts) on its port + 1,000.
 */
export async function startStack(
  log: Log,
  started: { stop?: () => Promise<void> },
  profile = false,
): Promise<Stack> {
  const pids: number[] = [];
  let auth: Deno.HttpServer | undefined;
  let sql: postgres.Sql | undefined;
  let pooler = false;
  const stop = async () => {
    for (const pid of pids.splice(0).reverse()) await stopProcess(pid);
    if (pooler) await stopPgbouncer("bench", log);
    pooler = false;
    await auth?.shutdown();
    auth = undefined;
    await sql?.end({ timeout: 2 });
    sql = undefined;
  };
  started.stop = stop;
  // Only what a child needs besides its settings: nothing of a profile's shell leaks in.
  const basics = ["PATH", "HOME", "DENO_DIR", "TMPDIR", "LANG", "DENO_CERT"]
    .flatMap((k) => Deno.env.get(k) === undefined ? [] : [[k, Deno.env.get(k)!]]);
  const spawn = (name: string, command: Pick<Detached, "cmd" | "args" | "env">, ready: string) =>
    startDetached(name, {
      ...command,
      cwd: ROOT,
      env: { ...Object.fromEntries(basics), NO_COLOR: "1", ...command.env },
      clearEnv: true,
      logPath: logPathOf(name),
      ready: async () => await httpStatus(ready) === 200,
      timeoutMs: 60_000,
      spawned: (pid) => pids.push(pid),
    });
  try {
    await resetData(log);
    sql = postgres(DIRECT_URL, { max: 1, onnotice: () => {} });
    const [backend] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    for (const port of [BENCH.bridgePort, BENCH.authPort, ...SERVED.map(portOf)]) {
      if (await tcpOpen("127.0.0.1", port)) throw new Error(`port ${port} is taken`);
    }
    pooler = true;
    const pgbouncer = await ensurePgbouncer("bench", BENCH.poolerPort, "127.0.0.1", 5432, log);
    const jwks = await publicJwks();
    const listen = { hostname: "127.0.0.1", port: BENCH.authPort, onListen: () => {} };
    auth = Deno.serve(listen, () => Response.json(jwks));

    const token = randomToken();
    const bridgeUrl = `http://127.0.0.1:${BENCH.bridgePort}`;
    const redisUrl = `redis://${REDIS_HOST}:${REDIS_PORT}`;
    const bridgeRun = bridgeCommand(BENCH.bridgePort, token, redisUrl);
    const bridge = await spawn("bridge", bridgeRun, `${bridgeUrl}/health`);
    log(`bridge: pid ${bridge} on ${bridgeUrl}`);

    const secret = randomToken();
    const supabaseUrl = `http://127.0.0.1:${BENCH.authPort}`;
    const functionEnv = {
      ...EDGE_DENO_ENV,
      SUPABASE_URL: supabaseUrl,
      SUPABASE_DB_URL: DIRECT_URL,
      TORVUS_DB_URL: DIRECT_URL.replace(":5432/", `:${BENCH.poolerPort}/`),
      TORVUS_DB_POOL_MODE: "transaction",
      UPSTASH_REDIS_REST_URL: bridgeUrl,
      UPSTASH_REDIS_REST_TOKEN: token,
      TORVUS_REDIS_PREFIX: BENCH.redisPrefix,
      TORVUS_GATEWAY_SECRET: secret,
      TORVUS_KEY_MODES: "live,test",
    };
    const readers = {
      bridge,
      redis: await redisServerPid(REDIS_HOST, REDIS_PORT) ?? NaN,
      postgres: parentPid(backend!.pid),
      pgbouncer,
    } as Stack["pids"];

    const perms = ["--allow-net", "--allow-env", "--allow-read", "--allow-sys"];
    for (const name of SERVED) {
      // The floor runs the vaults function's driver and schemas: its deno.json.
      const config = name === "baseline"
        ? ["--no-config"]
        : ["--config", `supabase/functions/${name === "floor" ? "vaults" : name}/deno.json`];
      // BENCH_V8_FLAGS (e.g. `--prof`) goes to each served function's V8, for profiling.
      const v8 = Deno.env.get("BENCH_V8_FLAGS");
      const flags = v8 ? [`--v8-flags=${v8}`] : [];
      if (profile && name !== "baseline") {
        flags.push(`--inspect=127.0.0.1:${inspectorPortOf(portOf(name))}`);
      }
      const args = ["run", "--no-lock", ...flags, ...config, ...perms, "tools/bench/serve.ts"];
      const env = { ...functionEnv, BENCH_FUNCTION: name, BENCH_PORT: String(portOf(name)) };
      const ready = `http://127.0.0.1:${portOf(name)}/__bench/counters`;
      readers[name] = await spawn(name, { cmd: EDGE_DENO, args, env }, ready);
    }
    log(`served alone on Deno 2.1: ${SERVED.map((n) => `${n} :${portOf(n)}`).join(", ")}`);
    return {
      sql,
      pids: readers,
      gateway: (ip) => ({ "X-Torvus-Gateway-Secret": secret, "X-Torvus-Client-IP": ip }),
      issuer: `${supabaseUrl}/auth/v1`,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
