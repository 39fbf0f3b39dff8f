/**
 * The benchmark's tables and the goals of issue 13.
 *
 * @module
 */
import type { WrkResult } from "./wrk.ts";
import type { ChurnResult } from "./fixtures.ts";

/** The processes whose CPU time a case reads. */
export type Process = "server" | "bridge" | "redis" | "postgres" | "pgbouncer" | "wrk";

/** What one case measured (`tools/bench.ts`), as the tables and the JSON report show it. */
export interface CaseResult {
  id: string;
  label: string;
  connections: number;
  seconds: number;
  rps: number;
  /** Throughput as a share of the bare baseline's in the same run. */
  ratio: number | undefined;
  latencyMs: WrkResult["latencyMs"];
  /** Answers by status, as the served function counted them. */
  statuses: Record<number, number>;
  /** Socket errors and answers of a status the case does not expect. */
  unexpected: number;
  /**
   * Warning and error lines the function logged during the case (a Redis outage, say, which the
   * limiter survives by letting requests through uncounted: figures that would flatter).
   */
  warnings: number;
  requests: number;
  /** CPU µs per request, by process. */
  cpuUs: Record<Process, number>;
  busyCores: number;
  /** REST calls, and the commands they carried (what Upstash bills), per request. */
  redis: { calls: number; perRequest: number; commandsPerRequest: number };
  /** 1 − key lookups in PostgreSQL per request, for the API-key cases. */
  hitRatio: number | undefined;
  verifyCalls: number | undefined;
  churn: ChurnResult | undefined;
  /** Which run of the case this is, when the cases ran in several rounds (`--rounds`). */
  round?: number;
}

/** A goal of issue 13 and whether this run met it. */
export interface Goal {
  goal: string;
  value: string;
  pass: boolean | undefined;
}

const fix = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(digits);
const pct = (n: number | undefined, digits = 1) =>
  n === undefined || !Number.isFinite(n) ? "–" : `${(n * 100).toFixed(digits)} %`;
const int = (n: number) => Math.round(n).toLocaleString("en-US");

function markdown(head: string, rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const cols = head.split("|");
  const rule = cols.map((c, i) => i === 0 || c === "server answered" || c === "" ? "---" : "---:");
  return [line(cols), line(rule), ...rows.map(line)].join("\n");
}

const labelOf = (r: CaseResult) =>
  r.round === undefined ? r.label : `${r.label} (round ${r.round})`;

/** The two tables: throughput and latency; cost per request. */
export function tables(results: readonly CaseResult[]): string {
  const statuses = (r: CaseResult) =>
    Object.entries(r.statuses).map(([s, n]) => `${s}×${int(n)}`).join(" ") +
    (r.unexpected > 0 ? ` ⚠ ${int(r.unexpected)} unexpected` : "") +
    (r.warnings > 0 ? ` ⚠ ${int(r.warnings)} warning/error log lines` : "");
  const speed = markdown(
    "case|conns|req/s|vs bare|p50 ms|p99 ms|server answered",
    results.map((r) => [
      labelOf(r),
      String(r.connections),
      int(r.rps),
      pct(r.ratio),
      fix(r.latencyMs.p50, 2),
      fix(r.latencyMs.p99, 2),
      statuses(r),
    ]),
  );
  const cpu = ["server", "bridge", "redis", "postgres", "pgbouncer", "wrk"] as const;
  const cost = markdown(
    "case|server|bridge|Redis|PostgreSQL|PgBouncer|wrk|busy cores|Redis calls/req|Upstash commands/req|key cache hits",
    results.map((r) => [
      labelOf(r),
      ...cpu.map((k) => fix(r.cpuUs[k])),
      fix(r.busyCores, 2),
      r.id.startsWith("baseline")
        ? "–"
        : `${fix(r.redis.perRequest, 3)} (${int(r.redis.calls)} calls)`,
      r.id.startsWith("baseline") ? "–" : fix(r.redis.commandsPerRequest, 2),
      pct(r.hitRatio, 2),
    ]),
  );
  return `${speed}\n\nCPU µs per request of each process, Redis calls and Upstash commands per ` +
    `request:\n\n${cost}`;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/**
 * The goals of issues 13 and 26 over the cases that ran, in one round or several: each case by its
 * run of median server CPU (of an even count, the higher of the two middle runs), and each function
 * against its floor by the median of the rounds' ratios (each round pairs the two).
 */
export function goals(results: readonly CaseResult[]): Goal[] {
  const runs = Map.groupBy(results, (r) => r.id);
  const by = new Map(
    [...runs].map(([id, rs]) => {
      const byCpu = rs.toSorted((a, b) => a.cpuUs.server - b.cpuUs.server);
      return [id, byCpu[Math.floor(byCpu.length / 2)]!];
    }),
  );
  const out: Goal[] = [];
  const add = (goal: string, value: number | undefined, ok: (v: number) => boolean, show = fix) =>
    out.push({
      goal,
      value: value === undefined ? "not measured" : show(value),
      pass: value === undefined ? undefined : ok(value),
    });
  const cpu = (id: string) => by.get(id)?.cpuUs.server;
  add("server CPU, valid key on /api/v1/test ≤ 40 µs", cpu("v1-test"), (v) => v <= 40);
  for (const id of ["bad-key", "limited-key", "anonymous"]) {
    add(`server CPU, refused (${by.get(id)?.label ?? id}) ≤ 20 µs`, cpu(id), (v) => v <= 20);
  }
  add("server CPU, /api/me ≤ 80 µs", cpu("me"), (v) => v <= 80);
  add("server CPU, /api/v1/vaults ≤ 150 µs", cpu("vaults"), (v) => v <= 150);
  const api = results.filter((r) => !r.id.startsWith("baseline") && r.connections >= 50);
  const worst = api.reduce<CaseResult | undefined>(
    (w, r) => (w === undefined || r.redis.perRequest > w.redis.perRequest ? r : w),
    undefined,
  );
  add(
    `Redis calls per API request ≤ 0.1 at 50 connections (worst: ${worst?.label ?? "–"})`,
    worst?.redis.perRequest,
    (v) => v <= 0.1,
    (v) => fix(v, 3),
  );
  for (const [id, what] of [["me", "/api/me"], ["vaults", "/api/v1/vaults"]] as const) {
    const pairs = (runs.get(id) ?? []).flatMap((r) => {
      const floor = runs.get(`floor-${id}`)?.find((f) => f.round === r.round);
      return floor ? [r.cpuUs.server / floor.cpuUs.server] : [];
    });
    const ratio = pairs.length === 0 ? undefined : median(pairs);
    const range = pairs.length > 1
      ? `, median of ${pairs.length} rounds: ${pairs.map((p) => p.toFixed(2)).join(" ")}`
      : "";
    add(
      `server CPU of ${what} ≤ 1.3 × its floor's (issue 26${range})`,
      ratio,
      (v) => v <= 1.3,
      (v) => `${fix(v, 2)}×`,
    );
  }
  add(
    "Upstash commands per valid-key request ≤ 1.0 (issue 26)",
    by.get("v1-test")?.redis.commandsPerRequest,
    (v) => v <= 1.0,
    (v) => fix(v, 2),
  );
  const base1 = by.get("baseline-1c")?.latencyMs.p50;
  const test1 = by.get("v1-test-1c")?.latencyMs.p50;
  add(
    "added median latency of /api/v1/test at 1 connection ≤ 1 ms",
    base1 === undefined || test1 === undefined ? undefined : test1 - base1,
    (v) => v <= 1,
    (v) => `${fix(v, 3)} ms`,
  );
  add("/api/v1/test throughput ≥ 15 % of bare", by.get("v1-test")?.ratio, (v) => v >= 0.15, pct);
  const cache = by.get("cache");
  add(
    `key cache hit ratio ≥ 90 % with ${fix(cache?.churn?.perSecond, 1)} key changes/s`,
    cache?.hitRatio,
    (v) => v >= 0.9,
    pct,
  );
  return out;
}

/** The goals as a table. */
export function goalTable(list: readonly Goal[]): string {
  const mark = (p: boolean | undefined) => (p === undefined ? "–" : p ? "pass" : "FAIL");
  return markdown("goal (issue 13)|this run|", list.map((g) => [g.goal, g.value, mark(g.pass)]));
}
