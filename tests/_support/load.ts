/**
 * The load test of the end-to-end suite (tests/load_test.ts): the main routes at once on loopback,
 * one wrk process each (tools/bench/wrk.ts), against a dev server of its own on the test
 * profile's database and Redis bridge, so its pid is known and its RSS can be read from
 * `/proc/<pid>/status`:
 *
 * | route | credential | expected |
 * | --- | --- | --- |
 * | `GET /api/v1/test` | keys of a tier with a very high limit | 200 |
 * | `GET /api/me` | tokens of 50 users, rotated | 200, 429 (1,000 per user and hour) |
 * | `GET /api/v1/vaults?limit=5`, every 10th a `POST` | a high-limit key | 200, 201 |
 * | `GET /api/v1/test` | a key of a tier of N per minute | 200, 429 |
 *
 * It reports requests, errors (any other status, socket errors, timeouts over wrk's 2 s), RSS
 * before (after a warm-up) and after, and the rate limit's exactness: the 200s of the limited
 * key, bucketed by the `X-RateLimit-Reset` each carried (the window the limiter counted it
 * in), must never exceed N in any window, must reach exactly N in the first window (a fresh
 * key under saturation), and must equal the request log's count of 200s for that key.
 *
 * @module
 */
import postgres from "postgres";
import { createApiKey, createTier, mintTokenFor } from "../../tools/admin/ops.ts";
import { runWrk } from "../../tools/bench/wrk.ts";
import { type DevServer, freePort, stackEnv, startDevServer, waitFor } from "./dev_server.ts";

/** The resident set size of a process in KiB, from /proc/<pid>/status. */
function rssKiB(pid: number): number | undefined {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** A random address of the IPv6 documentation prefix: a rate-limit bucket nobody else has. */
function freshIp(): string {
  const words = crypto.getRandomValues(new Uint16Array(6));
  return `2001:db8:${[...words].map((w) => w.toString(16)).join(":")}`;
}

/** One route of the load, run by one wrk process. */
export interface LoadRoute {
  name: string;
  path: string;
  connections: number;
  /** Credential headers, rotated request by request. */
  credentials: ReadonlyArray<readonly [string, string]>;
  /** Statuses that are not errors. */
  expected: readonly number[];
  /** Every n-th request is a POST of `postBody` (JSON) to `postPath`. */
  post?: { every: number; path: string; body: string };
}

/** What wrk measured for one route. */
export interface RouteResult {
  name: string;
  requests: number;
  statuses: Record<string, number>;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** Responses whose status is not among the expected ones. */
  unexpected: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** 200s per rate-limit window (reset epoch seconds). */
  windows: Record<string, number>;
}

/** Runs one wrk process per route, all at once, for `seconds`, each from an address of its own. */
function runRoutes(
  baseUrl: string,
  routes: readonly LoadRoute[],
  seconds: number,
): Promise<RouteResult[]> {
  return Promise.all(routes.map(async (route) => {
    const w = await runWrk({
      url: `${baseUrl}${route.path}`,
      connections: route.connections,
      seconds,
      headers: { "X-Forwarded-For": freshIp() },
      rotate: route.credentials.map(([h, v]) => ({ [h]: v })),
      ...(route.post ? { post: route.post } : {}),
      countStatuses: true,
    });
    const unexpected = Object.entries(w.statuses)
      .filter(([s]) => !route.expected.includes(Number(s)))
      .reduce((n, [, c]) => n + c, 0);
    const { requests, statuses, socketErrors, latencyMs, windows } = w;
    return { name: route.name, requests, statuses, socketErrors, unexpected, latencyMs, windows };
  }));
}

/** Options of {@link runLoadTest}. */
export interface LoadOptions {
  /** Measured run, seconds. */
  durationS: number;
  /** Total connections over the four routes (at least 8). */
  connections: number;
  /** Warm-up before RSS "before" is read, seconds. */
  warmupS: number;
  /** Per-minute limit of the rate-limited key. */
  limitedPerMinute: number;
  /** Caps the server's V8 old space (MiB): a leak then ends in an out-of-memory exit. */
  maxHeapMiB?: number;
  /** Progress lines; default none. */
  log?: (line: string) => void;
}

/** The outcome of a load test. */
export interface LoadReport {
  durationS: number;
  connections: number;
  routes: RouteResult[];
  requests: number;
  /** Statuses outside each route's expected set, plus socket errors and timeouts. */
  errors: number;
  /** 429s on the routes where they are expected. */
  expected429: number;
  rssKiB: { start: number; before: number; after: number; growthPct: number };
  rateLimit: {
    perMinute: number;
    /** 200s of the limited key per window, by window end (ISO time). */
    windows: Record<string, number>;
    /** The request log's count of 200s for the limited key. */
    audited200: number;
    wrk200: number;
    /** Broken limits: more than N in a window, or not exactly N for a fresh key. */
    problems: string[];
    /** A window after the first that got fewer 200s than its sliding window allows. */
    shortfalls: string[];
  };
  serverExited: boolean;
  /** "unhandled rejection" / "Uncaught" lines in the server's log. */
  logProblems: string[];
}

/** Runs the load test against a dev server of its own; stops it before returning. */
export async function runLoadTest(options: LoadOptions): Promise<LoadReport> {
  const say = options.log ?? (() => {});
  const stack = stackEnv();
  const sql = postgres(stack.dbUrl, { max: 4, onnotice: () => {} });
  let server: DevServer | undefined;
  try {
    const port = freePort();
    server = await startDevServer({
      ...stack,
      port,
      logName: "loadtest",
      extraEnv: {
        // What is measured is the functions under load, not the runtime replacing isolates
        // for CPU time (a cold start on these shared cores takes seconds under load, see
        // tools/runtime/runtime_test.ts for the recycling itself): the soft limit is an hour's CPU.
        TORVUS_RUNTIME_CPU_SOFT_MS: "3600000",
        TORVUS_RUNTIME_CPU_HARD_MS: "7200000",
        ...(options.maxHeapMiB
          ? { DENO_V8_FLAGS: `--max-old-space-size=${options.maxHeapMiB}` }
          : {}),
      },
    });
    say(`server: ${server.url} (pid ${server.pid}), stack from ${stack.source}`);
    const rssStart = rssKiB(server.pid) ?? 0;

    // Fixtures: a very-high-limit tier, a tier of N per minute, keys and 50 users.
    const tag = crypto.randomUUID().slice(0, 8);
    const big = await createTier(sql, {
      name: `load-big-${tag}`,
      perMinute: 10_000_000,
      perDay: 1_000_000_000,
      testPerMinute: 10_000_000,
      testPerDay: 1_000_000_000,
    });
    const n = options.limitedPerMinute;
    const small = await createTier(sql, {
      name: `load-n-${tag}`,
      perMinute: n,
      perDay: 1_000_000,
      testPerMinute: n,
      testPerDay: 1_000_000,
    });
    const email = (what: string) => `load-${what}-${crypto.randomUUID()}@test.local`;
    const key = (tier: string, scopes: ("read" | "write")[] = ["read"]) =>
      createApiKey(sql, { email: email("key"), tier, mode: "test", scopes });
    const testKeys = await Promise.all([1, 2, 3, 4].map(() => key(big.name)));
    const vaultKey = await key(big.name, ["read", "write"]);
    const limitedKey = await key(small.name);
    const tokens: string[] = [];
    for (let i = 0; i < 50; i++) {
      const minted = await mintTokenFor(sql, email("user"), 3600, {
        issuer: server.issuer,
        ...(stack.keyFile ? { keyFile: stack.keyFile } : {}),
      });
      tokens.push(minted.token);
    }

    const c = Math.max(8, options.connections);
    const share = (f: number) => Math.max(1, Math.round(c * f));
    const limitedConns = share(0.1);
    const meConns = share(0.2);
    const vaultConns = share(0.2);
    const testConns = c - limitedConns - meConns - vaultConns;
    const routes: LoadRoute[] = [
      {
        name: "GET /api/v1/test (high-limit keys)",
        path: "/api/v1/test",
        connections: testConns,
        credentials: testKeys.map((k) => ["X-API-Key", k.key] as const),
        expected: [200],
      },
      {
        name: "GET /api/me (50 users)",
        path: "/api/me",
        connections: meConns,
        credentials: tokens.map((t) => ["Authorization", `Bearer ${t}`] as const),
        expected: [200, 429],
      },
      {
        name: "GET+POST /api/v1/vaults",
        path: "/api/v1/vaults?limit=5",
        connections: vaultConns,
        credentials: [["X-API-Key", vaultKey.key]],
        expected: [200, 201],
        post: { every: 10, path: "/api/v1/vaults", body: '{"name":"load","tags":["load"]}' },
      },
      {
        name: `GET /api/v1/test (key of ${n}/min)`,
        path: "/api/v1/test",
        connections: limitedConns,
        credentials: [["X-API-Key", limitedKey.key]],
        expected: [200, 429],
      },
    ];

    // Warm-up (JIT, pools, caches) on other keys, so the limited key stays fresh.
    if (options.warmupS > 0) {
      say(`warm-up: ${options.warmupS} s`);
      const warm = await runRoutes(server.url, routes.slice(0, 3), options.warmupS);
      const bad = warm.reduce((s, r) => s + r.unexpected, 0);
      if (bad > 0) say(`warm-up: ${bad} unexpected responses`);
    }
    const before = rssKiB(server.pid) ?? 0;
    say(`run: ${c} connections for ${options.durationS} s`);
    const runStart = Date.now();
    const results = await runRoutes(server.url, routes, options.durationS);
    const runEnd = Math.min(Date.now(), runStart + options.durationS * 1000);
    const after = rssKiB(server.pid) ?? 0;

    // The request log's view of the limited key (flushed within a second or two).
    const limitedResult = results[3]!;
    const wrk200 = limitedResult.statuses["200"] ?? 0;
    let audited200 = 0;
    await waitFor(
      "request log of the limited key",
      async () => {
        const [row] = await sql<{ n: string }[]>`select count(*) as n from public.api_request_log
        where key_id = public.key_uuid(${limitedKey.id}) and status = 200`;
        audited200 = Number(row?.n ?? 0);
        return audited200 >= wrk200;
      },
      10_000,
      250,
    ).catch(() => {});

    const problems: string[] = [];
    const shortfalls: string[] = [];
    const windows: Record<string, number> = {};
    const untagged = limitedResult.windows["none"] ?? 0;
    if (untagged > 0) problems.push(`${untagged} 200s without X-RateLimit-Reset`);
    // Every minute window the run touched, in order, with the 200s the limiter counted in it.
    const MINUTE = 60_000;
    let prev = 0;
    for (let end = Math.ceil(runStart / MINUTE) * MINUTE; end - MINUTE < runEnd; end += MINUTE) {
      const count = limitedResult.windows[String(end / 1000)] ?? 0;
      const label = new Date(end).toISOString();
      windows[label] = count;
      if (count > n) problems.push(`window ending ${label}: ${count} 200s > limit ${n}`);
      const first = end - MINUTE <= runStart;
      if (first) {
        // A fresh key under saturation: exactly N at once (unless the run began in the last
        // second of the window).
        if (count !== n && end - runStart > 1000) {
          problems.push(`first window: ${count} 200s, expected exactly ${n} (fresh key)`);
        }
      } else {
        // Sliding window: by the fraction p of this window the run covered, a saturating
        // client gets N - floor((1 - p) * previous window's count) (less 2 for timing).
        // A shortfall here means a denied key is blocked for too long (the limiter's memory
        // block is capped at one token's time for this reason: N, 1, N, 1 ... before the cap).
        const p = Math.min(1, (runEnd - (end - MINUTE)) / MINUTE);
        const allowed = n - Math.floor((1 - p) * prev);
        if (count < allowed - 2) {
          shortfalls.push(
            `window ending ${label}: ${count} 200s, but the sliding window allows ${allowed} ` +
              `by the end of the run (${Math.round(p * 100)} % of it, previous window ${prev})`,
          );
        }
      }
      prev = count;
    }
    // wrk does not count requests still in flight when it stops; the server logs them.
    if (audited200 < wrk200 || audited200 > wrk200 + limitedConns) {
      problems.push(`request log has ${audited200} 200s for the key, wrk saw ${wrk200}`);
    }

    const requests = results.reduce((s, r) => s + r.requests, 0);
    const socket = results.reduce(
      (s, r) =>
        s + r.socketErrors.connect + r.socketErrors.read + r.socketErrors.write +
        r.socketErrors.timeout,
      0,
    );
    const errors = results.reduce((s, r) => s + r.unexpected, 0) + socket;
    const expected429 = (results[1]!.statuses["429"] ?? 0) + (limitedResult.statuses["429"] ?? 0);
    const log = await Deno.readTextFile(server.log);
    const logProblems = log.split("\n").filter((l) => /unhandled rejection|Uncaught/i.test(l));
    return {
      durationS: options.durationS,
      connections: c,
      routes: results,
      requests,
      errors,
      expected429,
      rssKiB: {
        start: rssStart,
        before,
        after,
        growthPct: before > 0 ? Math.round(((after - before) / before) * 1000) / 10 : 0,
      },
      rateLimit: { perMinute: n, windows, audited200, wrk200, problems, shortfalls },
      serverExited: server.exited !== undefined,
      logProblems,
    };
  } finally {
    await server?.stop();
    await sql.end({ timeout: 5 });
  }
}

/** A human-readable report. */
export function formatReport(r: LoadReport): string {
  const mb = (k: number) => `${(k / 1024).toFixed(1)} MiB`;
  const lines = [
    `load test: ${r.connections} connections, ${r.durationS} s`,
    ...r.routes.map((x) => {
      const statuses = Object.entries(x.statuses).map(([s, n]) => `${s}×${n}`).join(" ");
      const se = x.socketErrors;
      return `  ${x.name}: ${x.requests} requests (${statuses}), unexpected ${x.unexpected}, ` +
        `socket errors ${se.connect + se.read + se.write}, timeouts ${se.timeout}, ` +
        `p50 ${x.latencyMs.p50.toFixed(1)} ms, p99 ${x.latencyMs.p99.toFixed(1)} ms, ` +
        `max ${x.latencyMs.max.toFixed(1)} ms`;
    }),
    `requests: ${r.requests} (${Math.round(r.requests / r.durationS)}/s), errors: ${r.errors}, ` +
    `expected 429s: ${r.expected429}`,
    `RSS: ${mb(r.rssKiB.start)} at start, ${mb(r.rssKiB.before)} after warm-up, ` +
    `${mb(r.rssKiB.after)} after the run (${
      r.rssKiB.growthPct >= 0 ? "+" : ""
    }${r.rssKiB.growthPct} %)`,
    `rate limit (${r.rateLimit.perMinute}/min): 200s per window ${
      JSON.stringify(r.rateLimit.windows)
    }, wrk ${r.rateLimit.wrk200}, request log ${r.rateLimit.audited200}` +
    (r.rateLimit.problems.length ? `; PROBLEMS: ${r.rateLimit.problems.join("; ")}` : "; exact") +
    (r.rateLimit.shortfalls.length ? `; SHORTFALL: ${r.rateLimit.shortfalls.join("; ")}` : ""),
    `server: ${r.serverExited ? "EXITED" : "alive"}, log problems: ${r.logProblems.length}`,
  ];
  return lines.join("\n");
}

/** True when the report shows no failure. */
export function passed(r: LoadReport): boolean {
  return r.errors === 0 && r.rateLimit.problems.length === 0 &&
    r.rateLimit.shortfalls.length === 0 && !r.serverExited && r.logProblems.length === 0;
}
