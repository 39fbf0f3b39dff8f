/**
 * An open-loop client at a fixed request rate (wrk2 is not packaged for Debian): requests are
 * due on a fixed schedule (1 ms apart at 1,000/s) and fired from a timer loop over keep-alive
 * connections (fetch's pool), whatever the previous answers' latency. Each latency runs from
 * the moment the request was fired to the end of its body.
 *
 * @module
 */
import type { Target } from "./load.ts";

/** Options of {@link runFixedRate}. */
export interface FixedRateOptions {
  rate: number;
  /** Requests measured. */
  count: number;
  /** Requests sent first at the same rate and discarded. */
  warmup: number;
  /** Requests in flight at most; requests due beyond it are skipped and counted. */
  maxInFlight?: number;
}

/** A fixed-rate run's figures, milliseconds. */
export interface FixedRateResult {
  rate: number;
  sent: number;
  achievedRate: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** How late requests were fired against their schedule (client fidelity). */
  sendLagMs: { p50: number; p99: number };
  statuses: Record<string, number>;
  failed: number;
  skipped: number;
  /**
   * Medians of what the server reported per request: `X-Response-Time` as `server`, and each
   * `Server-Timing` phase (`auth`, `rl`, `db`), in milliseconds.
   */
  serverMs: Record<string, number>;
}

/** Adds a response's `X-Response-Time` and `Server-Timing` phases to `into`. */
function collectTimings(headers: Headers, into: Map<string, number[]>): void {
  const add = (name: string, ms: number) => {
    if (!Number.isFinite(ms)) return;
    let list = into.get(name);
    if (!list) into.set(name, list = []);
    list.push(ms);
  };
  const total = headers.get("x-response-time");
  if (total !== null) add("server", Number(total));
  for (const part of (headers.get("server-timing") ?? "").split(",")) {
    const m = /^\s*([\w-]+)\s*;\s*dur=([\d.]+)/.exec(part);
    if (m) add(m[1]!, Number(m[2]));
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The `p`-th percentile (0-100) of sorted values (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

async function phase(target: Target, rate: number, total: number, maxInFlight: number) {
  const latencies: number[] = [];
  const lags: number[] = [];
  const statuses: Record<string, number> = {};
  const timings = new Map<string, number[]>();
  let failed = 0;
  let skipped = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const headerSets = target.headers.length > 0 ? target.headers : [{}];
  const fire = (i: number, due: number) => {
    const sentAt = performance.now();
    lags.push(sentAt - due);
    inFlight++;
    const p = (async () => {
      try {
        const res = await fetch(target.url, { headers: headerSets[i % headerSets.length]! });
        await res.arrayBuffer();
        latencies.push(performance.now() - sentAt);
        collectTimings(res.headers, timings);
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      } catch {
        failed++;
      } finally {
        inFlight--;
      }
    })();
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  const interval = 1000 / rate;
  const start = performance.now() + 2;
  let next = 0;
  while (next < total) {
    const now = performance.now();
    while (next < total && start + next * interval <= now) {
      if (inFlight >= maxInFlight) skipped++;
      else fire(next, start + next * interval);
      next++;
    }
    await sleep(Math.max(0, Math.min(1, start + next * interval - performance.now())));
  }
  const sendEnd = performance.now();
  await Promise.all(pending);
  return {
    latencies,
    lags,
    statuses,
    timings,
    failed,
    skipped,
    seconds: (sendEnd - start) / 1000,
  };
}

/** Warms up, then measures `count` requests at `rate` per second. */
export async function runFixedRate(
  target: Target,
  options: FixedRateOptions,
): Promise<FixedRateResult> {
  const maxInFlight = options.maxInFlight ?? 256;
  if (options.warmup > 0) await phase(target, options.rate, options.warmup, maxInFlight);
  const r = await phase(target, options.rate, options.count, maxInFlight);
  const lat = r.latencies.sort((a, b) => a - b);
  const lags = r.lags.sort((a, b) => a - b);
  return {
    rate: options.rate,
    sent: r.lags.length,
    achievedRate: Math.round(r.lags.length / r.seconds),
    latencyMs: {
      p50: round(percentile(lat, 50)),
      p90: round(percentile(lat, 90)),
      p99: round(percentile(lat, 99)),
      max: round(lat[lat.length - 1] ?? NaN),
    },
    sendLagMs: { p50: round(percentile(lags, 50)), p99: round(percentile(lags, 99)) },
    statuses: r.statuses,
    failed: r.failed,
    skipped: r.skipped,
    serverMs: Object.fromEntries(
      [...r.timings].map((
        [name, list],
      ) => [name, round(percentile(list.sort((a, b) => a - b), 50))]),
    ),
  };
}
