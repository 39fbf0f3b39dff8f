/**
 * The performance benchmark of issue 13: `deno task bench [options]` (`--help` lists them).
 *
 * Starts its own production-shaped stack (tools/bench/stack.ts: each function served alone on
 * Deno 2.1, PgBouncer in transaction mode, a Redis bridge and prefix of its own), creates its
 * data, then loads each case with wrk (1 thread) beside a bare `Deno.serve` baseline on the
 * same Deno and wrapper, after a warm-up, and reads around the measured seconds: req/s, p50,
 * p99 (wrk); requests by status and REST calls to Redis (the served function's counters); CPU
 * time of the function's process, the bridge, redis-server, the whole PostgreSQL cluster,
 * PgBouncer and wrk (/proc); calls of `public.verify_api_key` (pg_stat_user_functions), hence
 * the key cache's hit ratio. Prints markdown tables and the goals of issue 13, writes the run
 * to `.local/bench/<timestamp>.json`, and stops what it started (also on Ctrl-C or failure).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { LOCAL } from "./stack/config.ts";
import { BENCH, logPathOf, portOf, type Served, type Stack, startStack } from "./bench/stack.ts";
import { createFixtures, type Fixtures, startChurn } from "./bench/fixtures.ts";
import * as meter from "./bench/meter.ts";
import { runWrk, type WrkLoad } from "./bench/wrk.ts";
import { type CaseResult, goals, goalTable, tables } from "./bench/report.ts";
import { inspectorPortOf, startProfile, summarize } from "./bench/profile.ts";

/** A case: what wrk sends to which served process. */
interface CaseDef {
  id: string;
  label: string;
  fn: Served;
  /** The path asked, when not the function's own. */
  path?: string;
  headers: Record<string, string>;
  expect: readonly number[];
  rotate?: Array<Record<string, string>>;
  connections?: number;
  /** Key-state changes in the background. */
  churn?: boolean;
}
/** A token's claims, as the function puts them in `request.jwt.claims` (the payload, verified there). */
const tokenClaims = (token: string) =>
  new TextDecoder().decode(
    Uint8Array.from(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")), (ch) =>
      ch.charCodeAt(0)),
  );

/** Where a served process is asked: the gateway's path below `/functions/v1`. */
const pathOf = (
  fn: Served,
) => (fn === "baseline" ? "/" : fn === "vaults" ? "/vaults/v1" : `/${fn}`);
const CASES = ["baseline", "v1-test", "bad-key", "limited-key", "anonymous", "me", "app-me"]
  .concat(["vaults"])
  .concat(["cache", "latency", "floor-me", "floor-vaults"]);

function caseDefs(stack: Stack, fx: Fixtures, o: Options): CaseDef[] {
  const T = "/api/v1/test";
  const labels: Record<string, string> = {
    baseline: "bare Deno.serve",
    "v1-test": `${T}, valid key`,
    "bad-key": `${T}, bad checksum (401, then 429)`,
    "limited-key": `${T}, rate-limited key (429)`,
    anonymous: "/api/me, no credentials, address over budget (429)",
    me: `/api/me, ES256 tokens of ${fx.tokens.length} users`,
    "app-me": `/api/me, a third-party app's tokens of the same ${fx.appTokens.length} users`,
    vaults: `/api/v1/vaults, read key (${fx.vaults} vaults)`,
    cache: `${T}, ${fx.churnKeys.length} keys, ${o.changes} key changes/s`,
    "baseline-1c": "bare Deno.serve, 1 connection",
    "v1-test-1c": `${T}, 1 connection`,
    "floor-me": "floor of /api/me: its transaction alone (tools/bench/floor.ts)",
    "floor-vaults": "floor of /api/v1/vaults: its transaction alone",
  };
  const at = (n: number, h = {}) => ({ ...stack.gateway(`203.0.113.${n}`), ...h });
  const key = (k: string) => ({ "X-API-Key": k });
  const c = (id: string, fn: Served, headers: object, expect: number[], more = {}) =>
    ({ id, label: labels[id], fn, headers, expect, ...more }) as CaseDef;
  const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });
  return [
    c("baseline", "baseline", at(1), [200]),
    c("v1-test", "v1-test", at(2, key(fx.validKey)), [200]),
    c("bad-key", "v1-test", at(3, key(fx.invalidKey)), [401, 429]),
    c("limited-key", "v1-test", at(4, key(fx.limitedKey)), [429]),
    c("anonymous", "me", at(5), [401, 429]),
    c("me", "me", at(6), [200], { rotate: fx.tokens.map(bearer) }),
    c("app-me", "me", at(9), [200], { rotate: fx.appTokens.map(bearer) }),
    c("vaults", "vaults", at(7, key(fx.readKey)), [200]),
    c("cache", "v1-test", at(8), [200], { rotate: fx.churnKeys.map(key), churn: true }),
    c("baseline-1c", "baseline", at(1), [200], { connections: 1 }),
    c("v1-test-1c", "v1-test", at(2, key(fx.validKey)), [200], { connections: 1 }),
    c("floor-me", "floor", {}, [200], {
      path: "/me",
      rotate: fx.tokens.map((t) => ({ "X-Floor-Claims": tokenClaims(t) })),
    }),
    c("floor-vaults", "floor", { "X-Floor-Claims": JSON.stringify(fx.readClaims) }, [200], {
      path: "/vaults",
    }),
  ].filter((d) => o.cases.includes(d.id.endsWith("-1c") ? "latency" : d.id));
}

/** The options: default and meaning. */
const FLAGS = {
  duration: ["8", "measured seconds per case"],
  warmup: ["2", "warm-up seconds before each case"],
  connections: ["50", "wrk connections of the loaded cases"],
  "latency-seconds": ["5", "seconds of each 1-connection run of the latency case"],
  users: ["300", "users whose tokens /api/me rotates, 1,000 requests/h each"],
  "cache-keys": ["1000", "API keys the cache case rotates"],
  changes: ["10", "key-state changes per second during the cache case"],
  rounds: ["1", "times the chosen cases run, in turn (a floor case paired with its function's)"],
} as const;
type Flag = keyof typeof FLAGS;
type Options = Record<Flag, number> & { cases: string[]; profile: boolean };

function options(args: string[]): Options {
  const spec = Object.fromEntries(
    Object.entries(FLAGS).map(([k, [d]]) => [k, { type: "string" as const, default: d }]),
  );
  const { values } = parseArgs({
    args,
    options: {
      ...spec,
      cases: { type: "string", default: CASES.join(",") },
      profile: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  const usage = "usage: deno task bench [options]\n" +
    Object.entries(FLAGS).map(([k, [d, what]]) => `  --${k.padEnd(16)} ${what} (default ${d})`)
      .join("\n") +
    `\n  --cases            comma-separated, default all: ${CASES.join(",")}` +
    "\n  --profile          a CPU profile of each function's measured seconds (V8 inspector):\n" +
    "                     .local/bench/<run>/<case>[.round-N].cpuprofile, and tables of time per request";
  if (values.help) {
    console.log(usage);
    Deno.exit(0);
  }
  const cases = String(values.cases).split(",").filter((c) => c !== "");
  const unknown = cases.filter((c) => !CASES.includes(c));
  if (unknown.length > 0) throw new Error(`unknown case(s): ${unknown.join(", ")}\n${usage}`);
  const o = { cases, profile: values.profile === true } as Options;
  for (const k of Object.keys(FLAGS) as Flag[]) {
    o[k] = Number((values as Record<string, unknown>)[k]);
    const min = k === "warmup" ? 0 : 1;
    if (!Number.isInteger(o[k]) || o[k] < min) throw new Error(`--${k} needs an integer ≥ ${min}`);
  }
  return o;
}

const log = (line: string) => console.log(`[bench] ${line}`);

const calls = (stack: Stack) => meter.verifyCalls(stack.sql, BENCH.database, BENCH.poolerPort);

/** One measured case; per-request figures are over the requests the server counted. */
async function measure(
  stack: Stack,
  fx: Fixtures,
  c: CaseDef,
  o: Options,
  bareRps?: number,
  /** Where this case's CPU profile goes (`<path>.cpuprofile`); none: not profiled. */
  profileAt?: string,
): Promise<CaseResult> {
  const port = portOf(c.fn);
  const connections = c.connections ?? o.connections;
  const seconds = connections === 1 ? o["latency-seconds"] : o.duration;
  const url = `http://127.0.0.1:${port}${c.path ?? pathOf(c.fn)}`;
  const load: WrkLoad = { url, connections, seconds, headers: c.headers };
  if (c.rotate) load.rotate = c.rotate;
  log(`${c.label}: ${connections} connection(s), ${o.warmup} s warm-up + ${seconds} s`);
  const stopChurn = c.churn ? startChurn(stack, fx.changers, o.changes) : undefined;
  try {
    if (o.warmup > 0) await runWrk({ ...load, seconds: o.warmup });
    const keys = c.fn === "v1-test" || c.fn === "vaults";
    const calls0 = keys ? await calls(stack) : 0;
    await meter.takeCounters(port);
    const logPath = logPathOf(c.fn);
    const logStart = Deno.statSync(logPath).size;
    const p = stack.pids;
    // Attached before the metering starts: connecting to the inspector is not the case's CPU.
    const profiling = profileAt !== undefined && c.fn !== "baseline"
      ? await startProfile(inspectorPortOf(port))
      : undefined;
    const stopCpu = meter.meterCpu({
      server: () => meter.cpuSeconds(p[c.fn]),
      bridge: () => meter.cpuSeconds(p.bridge),
      redis: () => meter.cpuSeconds(p.redis),
      postgres: () => meter.clusterCpuSeconds(p.postgres),
      pgbouncer: () => meter.cpuSeconds(p.pgbouncer),
      wrk: () => meter.cpuSeconds("self", "children"),
    });
    const w = await runWrk(load);
    const cpu = stopCpu();
    const k = await meter.takeCounters(port);
    const profile = await profiling?.();
    if (profile) {
      Deno.writeTextFileSync(`${profileAt}.cpuprofile`, JSON.stringify(profile));
      console.log(`\n### ${c.label}: profile\n\n${summarize(profile, k.requests)}\n`);
    }
    const lookups = keys ? await calls(stack) - calls0 : undefined;
    const n = Math.max(1, k.requests);
    const warnings = logLinesSince(logPath, logStart)
      .filter((line) => /"level":"(warn|error)"/.test(line)).length;
    if (warnings > 0) log(`  WARNING: ${warnings} warning/error lines in ${logPath}`);
    const unexpected = Object.entries(k.statuses).filter(([s]) => !c.expect.includes(Number(s)));
    const result: CaseResult = {
      id: c.id,
      label: c.label,
      connections,
      seconds: w.seconds,
      rps: w.rps,
      ratio: bareRps === undefined ? undefined : w.rps / bareRps,
      latencyMs: w.latencyMs,
      statuses: k.statuses,
      unexpected: [...Object.values(w.socketErrors), ...unexpected.map(([, v]) => v)]
        .reduce((a, b) => a + b, 0),
      warnings,
      requests: k.requests,
      cpuUs: Object.fromEntries(
        Object.entries(cpu.seconds).map(([name, s]) => [name, (Number(s) * 1e6) / n]),
      ) as CaseResult["cpuUs"],
      busyCores: cpu.busyCores,
      redis: {
        calls: k.redisCalls,
        perRequest: k.redisCalls / n,
        commandsPerRequest: k.redisCommands / n,
      },
      hitRatio: lookups === undefined ? undefined : 1 - lookups / n,
      verifyCalls: lookups,
      churn: await stopChurn?.(),
    };
    const server = Math.round(result.cpuUs.server);
    log(`  ${Math.round(w.rps)} req/s, p50 ${w.latencyMs.p50} ms, server ${server} µs/request`);
    return result;
  } finally {
    await stopChurn?.();
  }
}

/** The lines a log file gained since it was `from` bytes long. */
function logLinesSince(path: string, from: number): string[] {
  const file = Deno.openSync(path, { read: true });
  try {
    file.seekSync(from, Deno.SeekMode.Start);
    const size = Deno.statSync(path).size - from;
    const bytes = new Uint8Array(Math.max(0, size));
    let read = 0;
    while (read < bytes.length) {
      const n = file.readSync(bytes.subarray(read));
      if (n === null) break;
      read += n;
    }
    return new TextDecoder().decode(bytes.subarray(0, read)).split("\n");
  } finally {
    file.close();
  }
}

/** Checks that a key lookup shows in pg_stat_user_functions, so the hit ratio means something. */
async function checkCounting(stack: Stack, fx: Fixtures): Promise<void> {
  const before = await calls(stack);
  const headers = { ...stack.gateway("203.0.113.9"), "X-API-Key": fx.churnKeys[0]! };
  await (await fetch(`http://127.0.0.1:${portOf("v1-test")}/v1-test`, { headers })).text();
  const counted = await calls(stack) - before;
  if (counted < 1) throw new Error("pg_stat_user_functions does not count verify_api_key calls");
}

async function main(o: Options): Promise<void> {
  const startedAt = new Date();
  /** The run's name: its JSON report and its profiles' folder under .local/bench. */
  const runName = startedAt.toISOString().replace(/[:.]/g, "-");
  const loadavg = Deno.loadavg();
  if (loadavg[0]! > 1) log(`WARNING: load average ${loadavg[0]} at the start: figures will suffer`);
  const started: { stop?: () => Promise<void> } = {};
  const interrupted = async () => {
    log("interrupted: stopping what the bench started");
    await started.stop?.();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  Deno.addSignalListener("SIGTERM", interrupted);
  const results: CaseResult[] = [];
  try {
    const stack = await startStack(log, started, o.profile);
    const profileDir = o.profile ? `${LOCAL}/bench/${runName}` : undefined;
    if (profileDir) Deno.mkdirSync(profileDir, { recursive: true });
    const changes = o.cases.includes("cache")
      ? o.changes * (o.warmup + o.duration + 5) * o.rounds
      : 0;
    const sizes = { users: o.users, churnKeys: o["cache-keys"], changes };
    const fx = await createFixtures(stack, sizes, log);
    await checkCounting(stack, fx);
    const bare: Record<number, number> = {};
    // Rounds take the cases in turn, so a function and its floor meet the same moment's machine.
    for (let round = 1; round <= o.rounds; round++) {
      for (const c of caseDefs(stack, fx, o)) {
        // One profile per case and round: a later round does not overwrite an earlier one's.
        const profileAt = profileDir === undefined
          ? undefined
          : `${profileDir}/${c.id}${o.rounds > 1 ? `.round-${round}` : ""}`;
        const r = await measure(stack, fx, c, o, bare[c.connections ?? o.connections], profileAt);
        if (c.fn === "baseline") bare[r.connections] = r.rps;
        if (o.rounds > 1) r.round = round;
        results.push(r);
      }
    }
  } finally {
    await started.stop?.();
    Deno.removeSignalListener("SIGINT", interrupted);
    Deno.removeSignalListener("SIGTERM", interrupted);
  }

  const goalList = goals(results);
  const setting = `wrk 1 thread, ${o.warmup} s warm-up + ${o.duration} s per case; each ` +
    `function alone on Deno 2.1 through PgBouncer (transaction mode); ` +
    `${navigator.hardwareConcurrency} CPUs, load average ${
      loadavg.map((l) => l.toFixed(2)).join(" ")
    } at the start`;
  const title = `## Torvus benchmark ${startedAt.toISOString()}`;
  console.log(`\n${title}\n\n${setting}\n\n${tables(results)}\n\n${goalTable(goalList)}\n`);
  const dir = `${LOCAL}/bench`;
  Deno.mkdirSync(dir, { recursive: true });
  const file = `${dir}/${runName}.json`;
  const machine = { cpus: navigator.hardwareConcurrency, loadavg, deno: Deno.version };
  const run = { startedAt, finishedAt: new Date(), machine, options: o, BENCH, results };
  Deno.writeTextFileSync(file, JSON.stringify({ ...run, goals: goalList }, null, 2) + "\n");
  log(`written ${file}`);
}

if (import.meta.main) {
  try {
    await main(options(Deno.args));
    Deno.exit(0);
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
