/**
 * What the benchmark reads around each measured run: CPU time of processes from /proc, the
 * counters a served function keeps (tools/bench/serve.ts), and the calls of
 * `public.verify_api_key` in `pg_stat_user_functions`.
 *
 * @module
 */
import type postgres from "postgres";
import { run, waitUntil } from "../stack/process.ts";

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const HZ = 100;

function stat(pid: number | "self"): string[] | undefined {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after "pid (comm)": [0] state, [1] ppid, ... [11] utime, [12] stime, [13] cutime.
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

const seconds = (f: string[], at: number) => (Number(f[at]) + Number(f[at + 1])) / HZ;

/**
 * CPU seconds (user + system) of a process, of its children that it reaped (`children`: for
 * this process, the load tool's), or of both.
 */
export function cpuSeconds(pid: number | "self", of: "own" | "children" | "both" = "own"): number {
  const f = stat(pid);
  if (f === undefined) return NaN;
  return (of === "children" ? 0 : seconds(f, 11)) + (of === "own" ? 0 : seconds(f, 13));
}

/**
 * CPU seconds of a whole PostgreSQL cluster: the postmaster, the backends it reaped since it
 * started, and the ones alive now (so backends that come and go are counted exactly once).
 */
export function clusterCpuSeconds(postmaster: number): number {
  let total = cpuSeconds(postmaster, "both");
  for (const entry of Deno.readDirSync("/proc")) {
    const f = /^\d+$/.test(entry.name) ? stat(Number(entry.name)) : undefined;
    if (f?.[1] === String(postmaster)) total += seconds(f, 11);
  }
  return total;
}

/** The parent of a process (the postmaster of a backend). */
export function parentPid(pid: number): number {
  return Number(stat(pid)?.[1]);
}

/** Busy and total CPU seconds of the machine (all cores), from /proc/stat. */
function machine(): [number, number] {
  const v = (Deno.readTextFileSync("/proc/stat").split("\n")[0] ?? "").trim().split(/\s+/)
    .slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return [(total - (v[3] ?? 0) - (v[4] ?? 0)) / HZ, total / HZ];
}

/**
 * Starts metering CPU seconds of named readers; the returned function ends the interval and
 * gives them with the machine's busy cores on average (2: both cores of this machine busy).
 */
export function meterCpu<K extends string>(readers: Record<K, () => number>) {
  const names = Object.keys(readers) as K[];
  const read = () => names.map((k) => readers[k]());
  const [b0, t0] = machine();
  const start = read();
  return () => {
    const end = read();
    const [b1, t1] = machine();
    const seconds = Object.fromEntries(names.map((k, i) => [k, end[i]! - start[i]!]));
    const busyCores = ((b1 - b0) / Math.max(1e-9, t1 - t0)) * navigator.hardwareConcurrency;
    return { seconds: seconds as Record<K, number>, busyCores };
  };
}

/** What a served function counted since the last reading (tools/bench/serve.ts). */
export interface Counters {
  requests: number;
  statuses: Record<string, number>;
  /** REST calls the function's Redis client made (every one a pipeline: redis.ts). */
  redisCalls: number;
  /** Commands those calls carried: what Upstash bills (scripts count one each). */
  redisCommands: number;
}

/** Takes a served function's counters (they start afresh). */
export async function takeCounters(port: number): Promise<Counters> {
  return await (await fetch(`http://127.0.0.1:${port}/__bench/counters`)).json();
}

/**
 * Calls of `public.verify_api_key` so far. Backends flush their function statistics at most
 * once a second and may hold them for 10 s when idle; one that exits flushes at once. So
 * PgBouncer is first told to close its server connections as each is released (RECONNECT: no
 * transaction is cut short), and the reading waits until they are gone; PgBouncer opens new
 * ones on demand.
 */
export async function verifyCalls(sql: postgres.Sql, database: string, pooler: number) {
  const [{ t0 }] = await sql<[{ t0: Date }]>`select clock_timestamp() as t0`;
  const args = ["-X", "-q", "-h", "127.0.0.1", "-p", String(pooler), "-U", "postgres"];
  const r = await run("psql", [...args, "-d", "pgbouncer", "-c", `RECONNECT ${database}`]);
  if (!r.success) throw new Error(`PgBouncer's RECONNECT failed: ${r.stderr.trim()}`);
  const gone = await waitUntil(
    async () => {
      const [row] = await sql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity
      where datname = ${database} and pid <> pg_backend_pid() and backend_start < ${t0}`;
      return row?.n === 0;
    },
    10_000,
    20,
  );
  if (!gone) throw new Error("PgBouncer's server connections did not close within 10 s");
  const [row] = await sql<{ calls: string }[]>`select coalesce(sum(calls), 0) as calls
    from pg_stat_user_functions where schemaname = 'public' and funcname = 'verify_api_key'`;
  return Number(row?.calls ?? 0);
}
