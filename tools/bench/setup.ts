/**
 * The `bench` profile's stack and data. Like `deno task stack up --profile test`, but with its
 * own database (`torvus_bench`, created, bootstrapped and `supabase db reset` on every run),
 * Redis bridge port, dev-server port and Redis prefix (`torvus-bench`, cleared on every run),
 * and `TORVUS_DEV_PASS_FORWARDED=false`: every request comes from 127.0.0.1, as behind a gateway.
 * Settings are kept in `.local/bench.env` (the bridge token is generated once).
 *
 * PostgreSQL and Redis are made to run with the stack's own helpers and left running; the
 * bridge (unless a healthy one with our token is reused), the dev server and the baseline
 * server are started here and stopped by the caller through procs.ts.
 *
 * @module
 */
import { devServerArgs, EDGE_DENO, EDGE_DENO_ENV } from "../runtime/edge_deno.ts";
import { Redis } from "@upstash/redis";
import { randomToken, ROOT } from "../stack/config.ts";
import { ensurePostgres } from "../stack/postgres.ts";
import { ensureRedis } from "../stack/redis.ts";
import { run } from "../stack/process.ts";
import { connect, createApiKey, createTier, mintTokenFor } from "../admin/ops.ts";
import { parseEnvFile } from "../local_env.ts";
import { childEnv, logTail, portFree, type Proc, spawnLogged, waitHttp } from "./procs.ts";

type Log = (line: string) => void;

/** Ports and names of the bench profile. */
export const BENCH = {
  database: "torvus_bench",
  bridgePort: 8090,
  serverPort: 29351,
  baselinePort: 29352,
  coldPort: 29353,
  redisPrefix: "torvus-bench",
};

export const LOGS = `${ROOT}/.local/bench/logs`;
const DENO = Deno.execPath();
const ENV_FILE = `${ROOT}/.local/bench.env`;

/** The environment of the dev server and of the functions in the bench profile. */
export function benchEnv(token: string): Record<string, string> {
  return {
    SUPABASE_URL: `http://127.0.0.1:${BENCH.serverPort}`,
    SUPABASE_DB_URL: `postgresql://postgres@127.0.0.1:5432/${BENCH.database}?sslmode=disable`,
    UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${BENCH.bridgePort}`,
    UPSTASH_REDIS_REST_TOKEN: token,
    BRIDGE_PORT: String(BENCH.bridgePort),
    TORVUS_HOST: "127.0.0.1",
    TORVUS_PORT: String(BENCH.serverPort),
    TORVUS_KEY_MODES: "live,test",
    TORVUS_GATEWAY_SECRET: randomToken(),
    TORVUS_DIRECT_ACCESS: "allow",
    TORVUS_DIRECT_IP_SOURCE: "header:cf-connecting-ip",
    TORVUS_LOG_REQUESTS_PER_10S: "1000000",
    TORVUS_REDIS_PREFIX: BENCH.redisPrefix,
    TORVUS_DEV_PASS_FORWARDED: "false",
    TORVUS_PROFILE: "bench",
  };
}

/** The settings of the bench profile, written to `.local/bench.env` (token kept between runs). */
export function benchSettings(): Record<string, string> {
  let token: string | undefined;
  try {
    token = parseEnvFile(Deno.readTextFileSync(ENV_FILE)).get("UPSTASH_REDIS_REST_TOKEN");
  } catch {
    token = undefined;
  }
  const env = benchEnv(token && token.length >= 16 ? token : randomToken());
  const text =
    "# Settings of the 'bench' profile, written by `deno task bench`. Secret: never share.\n" +
    Object.entries(env).map(([k, v]) => `${k}=${v}`).join("\n") + "\n";
  Deno.mkdirSync(`${ROOT}/.local`, { recursive: true });
  Deno.writeTextFileSync(ENV_FILE, text, { mode: 0o600 });
  return env;
}

async function psql(url: string, args: string[]): Promise<string> {
  const r = await run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, ...args], {
    env: { PGOPTIONS: "-c client_min_messages=warning", PGCONNECT_TIMEOUT: "5" },
  });
  if (!r.success) throw new Error(`psql failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** PostgreSQL and Redis up; `torvus_bench` created, bootstrapped and reset to the migrations. */
export async function prepareDatabase(env: Record<string, string>, log: Log): Promise<void> {
  await ensurePostgres("127.0.0.1", 5432, log);
  await ensureRedis("127.0.0.1", 6379, log);
  const url = env.SUPABASE_DB_URL!;
  const admin = url.replace(`/${BENCH.database}?`, "/postgres?");
  const exists = await psql(admin, [
    "-At",
    "-c",
    `select 1 from pg_database where datname = '${BENCH.database}'`,
  ]);
  if (exists !== "1") await psql(admin, ["-c", `create database "${BENCH.database}"`]);
  await psql(url, ["-f", `${ROOT}/supabase/local/bootstrap.sql`]);
  const supabase = `${ROOT}/tools/toolchain/node_modules/.bin/supabase`;
  const reset = await run(supabase, ["db", "reset", "--db-url", url, "--yes"], {
    cwd: ROOT,
    timeoutMs: 180_000,
  });
  if (!reset.success) throw new Error(`supabase db reset failed:\n${reset.stdout}${reset.stderr}`);
  log(`database: ${BENCH.database} ${exists === "1" ? "reset" : "created and reset"}`);
}

async function bridgeAccepts(port: number, token: string): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: '["PING"]',
      signal: AbortSignal.timeout(2_000),
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Reuses a healthy bridge that accepts our token, else starts one. Returns it if started. */
export async function ensureBridge(
  env: Record<string, string>,
  log: Log,
): Promise<Proc | undefined> {
  const token = env.UPSTASH_REDIS_REST_TOKEN!;
  if (await bridgeAccepts(BENCH.bridgePort, token)) {
    log(`bridge: reusing the one on ${BENCH.bridgePort}`);
    return undefined;
  }
  if (!portFree(BENCH.bridgePort)) throw new Error(`port ${BENCH.bridgePort} is taken`);
  const proc = spawnLogged(
    "bridge",
    DENO,
    ["run", "--allow-net", "--allow-env", "--allow-read", "tools/redis_bridge/main.ts"],
    {
      cwd: ROOT,
      env: childEnv({
        BRIDGE_PORT: String(BENCH.bridgePort),
        BRIDGE_HOSTNAME: "127.0.0.1",
        BRIDGE_TOKEN: token,
        REDIS_URL: "redis://127.0.0.1:6379",
      }),
      logPath: `${LOGS}/bridge.log`,
    },
  );
  if (!await waitHttp(`http://127.0.0.1:${BENCH.bridgePort}/health`, 15_000, proc)) {
    throw new Error(`the bridge did not start:\n${logTail(proc.logPath)}`);
  }
  log(`bridge: started pid ${proc.pid} on ${BENCH.bridgePort}`);
  return proc;
}

/** Deletes every Redis key under the bench prefix (rate-limit windows, key epoch). */
export async function clearRedisPrefix(env: Record<string, string>): Promise<number> {
  const redis = new Redis({
    url: env.UPSTASH_REDIS_REST_URL!,
    token: env.UPSTASH_REDIS_REST_TOKEN!,
    enableTelemetry: false,
  });
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, { match: `${BENCH.redisPrefix}:*`, count: 1000 });
    cursor = String(next);
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== "0");
  return deleted;
}

/** Starts the dev server (optionally with `--cpu-prof` into `profDir`). */
export async function startServer(
  env: Record<string, string>,
  log: Log,
  profDir?: string,
): Promise<Proc> {
  if (!portFree(BENCH.serverPort)) throw new Error(`port ${BENCH.serverPort} is taken`);
  const prof = profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [];
  const proc = spawnLogged("dev server", EDGE_DENO, devServerArgs(prof), {
    cwd: ROOT,
    env: childEnv({ ...env, ...EDGE_DENO_ENV }),
    logPath: `${LOGS}/server.log`,
  });
  const jwks = `${env.SUPABASE_URL}/auth/v1/.well-known/jwks.json`;
  if (!await waitHttp(jwks, 30_000, proc)) {
    throw new Error(`the dev server did not start:\n${logTail(proc.logPath)}`);
  }
  log(`dev server: pid ${proc.pid} on ${env.SUPABASE_URL} (log ${proc.logPath})`);
  return proc;
}

/** Starts the bare `Deno.serve` baseline. */
export async function startBaseline(log: Log): Promise<Proc> {
  if (!portFree(BENCH.baselinePort)) throw new Error(`port ${BENCH.baselinePort} is taken`);
  const proc = spawnLogged(
    "baseline",
    DENO,
    ["run", "--allow-net", "--allow-env", "tools/bench/baseline_server.ts"],
    {
      cwd: ROOT,
      env: childEnv({ BENCH_BASELINE_PORT: String(BENCH.baselinePort) }),
      logPath: `${LOGS}/baseline.log`,
    },
  );
  if (!await waitHttp(`http://127.0.0.1:${BENCH.baselinePort}/`, 15_000, proc)) {
    throw new Error(`the baseline server did not start:\n${logTail(proc.logPath)}`);
  }
  log(`baseline: pid ${proc.pid} on ${BENCH.baselinePort}`);
  return proc;
}

/** The credentials the cases use. */
export interface Fixtures {
  /** Live key on the huge tier. */
  validKey: string;
  /** Read-scoped key on the huge tier, owner of the vaults. */
  readKey: string;
  /** A well-formed key whose checksum fails. */
  invalidKey: string;
  /** Key on a 1/min, 1/day tier, already used once. */
  limitedKey: string;
  /** ES256 access tokens of distinct users (each user may make 1,000 requests an hour). */
  tokens: string[];
  vaults: number;
}

/** Breaks a key's checksum: its last character encodes only checksum bits. */
export function corruptKey(key: string): string {
  const last = key.at(-1);
  return key.slice(0, -1) + (last === "A" ? "B" : "A");
}

/** Creates tiers, keys, users and vaults in the freshly reset database. */
export async function createFixtures(
  env: Record<string, string>,
  users: number,
  vaults: number,
  log: Log,
): Promise<Fixtures> {
  const sql = connect(env.SUPABASE_DB_URL!);
  const base = env.SUPABASE_URL!;
  const issuer = `${base}/auth/v1`;
  try {
    const huge = 10_000_000;
    await createTier(sql, { name: "bench-huge", perMinute: huge, perDay: huge });
    await createTier(sql, { name: "bench-exhausted", perMinute: 1, perDay: 1 });
    const email = "bench@torvus.local";
    const valid = await createApiKey(sql, {
      email,
      tier: "bench-huge",
      mode: "live",
      name: "bench",
    });
    const read = await createApiKey(sql, {
      email,
      tier: "bench-huge",
      mode: "live",
      name: "bench read",
      scopes: ["read"],
    });
    const writer = await createApiKey(sql, {
      email,
      tier: "bench-huge",
      mode: "live",
      name: "bench write",
      scopes: ["read", "write"],
    });
    const limited = await createApiKey(sql, { email, tier: "bench-exhausted", mode: "live" });
    const tokens: string[] = [];
    for (let i = 0; i < users; i++) {
      tokens.push(
        (await mintTokenFor(sql, `bench-user-${i}@torvus.local`, 3600, { issuer })).token,
      );
    }

    for (let i = 0; i < vaults; i++) {
      const res = await fetch(`${base}/api/v1/vaults`, {
        method: "POST",
        headers: { "X-API-Key": writer.key, "Content-Type": "application/json" },
        body: JSON.stringify({
          name: `bench vault ${i}`,
          description: "benchmark",
          tags: ["bench"],
        }),
      });
      await res.body?.cancel();
      if (res.status !== 201) throw new Error(`creating a vault answered ${res.status}`);
    }
    const first = await fetch(`${base}/api/v1/test`, { headers: { "X-API-Key": limited.key } });
    await first.body?.cancel();
    if (first.status !== 200) throw new Error(`the limited key's one request got ${first.status}`);
    log(`fixtures: 2 tiers, 4 keys, ${users} users with tokens, ${vaults} vaults`);
    return {
      validKey: valid.key,
      readKey: read.key,
      invalidKey: corruptKey(valid.key),
      limitedKey: limited.key,
      tokens,
      vaults,
    };
  } finally {
    await sql.end();
  }
}
