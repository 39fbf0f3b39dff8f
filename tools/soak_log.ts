/**
 * The request log's soak (issue 27): `deno task soak:log [--minutes 10.5] [--slice 30]`. Not part
 * of CI (it takes its minutes); run it by hand and keep its figures (README "Capacity").
 *
 * On the benchmark's own stack (tools/bench/stack.ts: `torvus_bench`, PgBouncer in transaction
 * mode, loopback only) it loads `/api/v1/test` with a valid key through wrk (50 connections) in
 * slices of `--slice` seconds, for `--minutes`, and around each slice reads: req/s, p50, p99, the
 * log's rows and bytes (all its partitions), dead tuples of the log's partitions, PostgreSQL's
 * CPU per request. Before the load it forces what a day brings:
 *   - today's partition is split at a minute a third of the way into the run, so the writers
 *     cross a partition boundary under load;
 *   - a partition 6 days old (beyond the 4 days kept) is filled with 300,000 rows, and at two
 *     thirds of the run `call public.purge_expired()` drops it under load.
 * `--raw-log all|failed|none` sets `request_log_settings.raw_log` first (default all): runs with
 * `all` and `none` side by side give PostgreSQL's CPU and WAL per logged row. WAL is the whole
 * cluster's (other databases' writes count too on a shared machine).
 * Prints one line per slice and a summary; writes `.local/bench/soak-<time>.json`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { LOCAL } from "./stack/config.ts";
import { portOf, startStack } from "./bench/stack.ts";
import { createFixtures } from "./bench/fixtures.ts";
import * as meter from "./bench/meter.ts";
import { runWrk } from "./bench/wrk.ts";

const log = (line: string) => console.log(`[soak] ${line}`);
const MINUTE = 60_000;

/** What one slice measured. */
interface Slice {
  at: string;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  rows: number;
  bytes: number;
  deadTuples: number;
  pgCpuUsPerRequest: number;
  walBytesPerRequest: number;
  event?: string;
}

async function main(minutes: number, sliceS: number, rawLog: string) {
  const started: { stop?: () => Promise<void> } = {};
  const stopAll = async () => await started.stop?.();
  Deno.addSignalListener("SIGINT", async () => {
    await stopAll();
    Deno.exit(130);
  });
  const slices: Slice[] = [];
  const startedAt = new Date();
  try {
    const stack = await startStack(log, started);
    const fx = await createFixtures(stack, { users: 1, churnKeys: 1, changes: 0 }, log);
    const sql = stack.sql;
    await sql`update public.request_log_settings set raw_log = ${rawLog}`;
    const runMs = minutes * MINUTE;
    const t0 = Date.now();
    // The boundary: today's partition split a third into the run (on a whole minute).
    const boundary = new Date(Math.ceil((t0 + runMs / 3) / MINUTE) * MINUTE);
    const today = new Date(t0 - (t0 % 86_400_000));
    const tomorrow = new Date(today.getTime() + 86_400_000);
    await sql.begin(async (tx) => {
      const [p] = await tx<{ name: string }[]>`select name from public.request_log_partitions()
        where lower = ${today}`;
      if (p) {
        await tx.unsafe(`alter table public.api_request_log detach partition public.${p.name}`);
        await tx.unsafe(`alter table public.${p.name} rename to soak_today`);
      }
      await tx`select public.request_log_add_partition(${today}, ${boundary})`;
      await tx`select public.request_log_add_partition(${boundary}, ${tomorrow})`;
      if (p) {
        await tx`insert into public.api_request_log select * from public.soak_today`;
        await tx`drop table public.soak_today`;
      }
    });
    log(`partition boundary forced at ${boundary.toISOString()}`);
    const old = new Date(today.getTime() - 6 * 86_400_000);
    await sql`select public.request_log_add_partition(${old}, ${new Date(
      old.getTime() + 86_400_000,
    )})`;
    await sql`insert into public.api_request_log (created_at, request_id, shape, key_id, latency_ms,
        status, ip)
      select ${old}::timestamptz + i * interval '250 ms', gen_random_uuid(), 0, gen_random_uuid(),
        1, 200, '198.51.100.1' from generate_series(1, 300000) i`;
    log("an expired partition of 300,000 rows made, to be dropped under load");
    const dropAt = t0 + (2 * runMs) / 3;
    let dropped = false;

    const walLsn = async () =>
      (await sql<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`)[0]!.lsn;
    const state = async () => {
      const [r] = await sql<{ rows: number; bytes: number; dead: number }[]>`
        select coalesce(sum(s.n_live_tup), 0)::float8 as rows,
          coalesce(sum(pg_total_relation_size(s.relid)), 0)::float8 as bytes,
          coalesce(sum(s.n_dead_tup), 0)::float8 as dead
        from pg_stat_user_tables s where s.relname like 'api_request_log_%'`;
      return r!;
    };
    const url = `http://127.0.0.1:${portOf("v1-test")}/v1-test`;
    const headers = { ...stack.gateway("203.0.113.2"), "X-API-Key": fx.validKey };
    while (Date.now() - t0 < runMs) {
      const sliceStart = Date.now();
      let event: string | undefined;
      if (sliceStart <= boundary.getTime() && boundary.getTime() < sliceStart + sliceS * 1000) {
        event = "partition boundary";
      }
      let drop: Promise<unknown> | undefined;
      if (!dropped && sliceStart >= dropAt) {
        dropped = true;
        event = "retention drop";
        drop = sql.unsafe("call public.purge_expired()").simple().then((r) => {
          log(`purge_expired: ${JSON.stringify(r[0])}`);
        });
      }
      const wal0 = await walLsn();
      const stopCpu = meter.meterCpu({
        postgres: () => meter.clusterCpuSeconds(stack.pids.postgres),
      });
      const w = await runWrk({ url, connections: 50, seconds: sliceS, headers });
      const used = stopCpu();
      const [wal] = await sql<{ bytes: number }[]>`
        select pg_wal_lsn_diff(pg_current_wal_lsn(), ${wal0})::float8 as bytes`;
      await drop;
      const s = await state();
      const slice: Slice = {
        at: new Date(sliceStart).toISOString(),
        rps: Math.round(w.rps),
        p50: w.latencyMs.p50,
        p99: w.latencyMs.p99,
        requests: w.requests,
        rows: s.rows,
        bytes: s.bytes,
        deadTuples: s.dead,
        pgCpuUsPerRequest: Math.round((used.seconds.postgres * 1e6) / Math.max(1, w.requests)),
        walBytesPerRequest: Math.round(wal!.bytes / Math.max(1, w.requests)),
        ...(event ? { event } : {}),
      };
      slices.push(slice);
      log(
        `${slice.at.slice(11, 19)} ${slice.rps} req/s p50 ${slice.p50} p99 ${slice.p99} ms, ` +
          `log ${slice.rows} rows ${
            (slice.bytes / 1e6).toFixed(1)
          } MB, dead ${slice.deadTuples}, ` +
          `PG ${slice.pgCpuUsPerRequest} µs/req, WAL ${slice.walBytesPerRequest} B/req` +
          (event ? `  <- ${event}` : ""),
      );
    }
  } finally {
    await stopAll();
  }
  summarize(slices, startedAt, minutes, rawLog);
}

function summarize(slices: Slice[], startedAt: Date, minutes: number, rawLog: string) {
  const p99s = slices.map((s) => s.p99).sort((a, b) => a - b);
  const q = (f: number) => p99s[Math.min(p99s.length - 1, Math.floor(f * p99s.length))]!;
  const at = (e: string) => slices.find((s) => s.event === e);
  const steady = slices.filter((s) => !s.event);
  const growth = steady.slice(1).map((s, i) => {
    const prev = steady[i]!;
    return (s.bytes - prev.bytes) / Math.max(1, s.rows - prev.rows);
  }).filter((b) => Number.isFinite(b) && b > 0);
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const summary = {
    rawLog,
    slices: slices.length,
    requests: slices.reduce((n, s) => n + s.requests, 0),
    rps: { min: Math.min(...slices.map((s) => s.rps)), max: Math.max(...slices.map((s) => s.rps)) },
    p99: { min: p99s[0], median: q(0.5), max: p99s.at(-1) },
    boundary: at("partition boundary"),
    drop: at("retention drop"),
    maxDeadTuples: Math.max(...slices.map((s) => s.deadTuples)),
    medianPgCpuUsPerRequest: median(steady.map((s) => s.pgCpuUsPerRequest)),
    medianWalBytesPerRequest: median(steady.map((s) => s.walBytesPerRequest)),
    bytesPerRowBetweenSlices: growth,
  };
  console.log(JSON.stringify(summary, null, 2));
  const dir = `${LOCAL}/bench`;
  Deno.mkdirSync(dir, { recursive: true });
  const file = `${dir}/soak-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`;
  Deno.writeTextFileSync(file, JSON.stringify({ startedAt, minutes, slices, summary }, null, 2));
  log(`written ${file}`);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      minutes: { type: "string", default: "10.5" },
      slice: { type: "string", default: "30" },
      "raw-log": { type: "string", default: "all" },
    },
  });
  const minutes = Number(values.minutes);
  const slice = Number(values.slice);
  const rawLog = String(values["raw-log"]);
  if (
    !(minutes > 0 && minutes <= 60) || !(slice >= 5 && slice <= 120) ||
    !["all", "failed", "none"].includes(rawLog)
  ) {
    console.error(
      "soak: --minutes in (0, 60], --slice in [5, 120] seconds, --raw-log all|failed|none",
    );
    Deno.exit(2);
  }
  try {
    await main(minutes, slice, rawLog);
    Deno.exit(0);
  } catch (error) {
    console.error(`soak: ${error instanceof Error ? error.stack : String(error)}`);
    Deno.exit(1);
  }
}
