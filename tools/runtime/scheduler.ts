/**
 * Scheduled jobs of the local platform: what pg_cron runs on hosted Supabase (see
 * docs/DEPLOY.md), the dev server runs here, with the same SQL. A job runs shortly after start,
 * then every `everyMs`; a run never overlaps the previous one, and a failure is logged, not
 * fatal.
 *
 * @module
 */
import postgres from "postgres";

/** A scheduled job. */
export interface Job {
  name: string;
  everyMs: number;
  /** Does the work; what it returns is logged (nothing: no line). */
  run(): Promise<Record<string, unknown> | undefined>;
}

type Log = (
  level: "info" | "warn" | "error",
  msg: string,
  fields?: Record<string, unknown>,
) => void;

/** Starts the jobs; the returned function stops them and waits for a run in progress. */
export function startScheduler(jobs: Job[], log: Log, firstAfterMs = 5_000): () => Promise<void> {
  const timers: ReturnType<typeof setTimeout>[] = [];
  const running = new Set<Promise<void>>();
  for (const job of jobs) {
    let busy = false;
    const tick = () => {
      if (busy) return;
      busy = true;
      const started = performance.now();
      const run = job.run().then(
        (result) =>
          result && log("info", "scheduled job done", {
            job: job.name,
            ms: Math.round(performance.now() - started),
            ...result,
          }),
        (error) => log("warn", "scheduled job failed", { job: job.name, error: String(error) }),
      ).finally(() => {
        busy = false;
        running.delete(run);
      });
      running.add(run);
    };
    timers.push(setTimeout(() => {
      tick();
      timers.push(setInterval(tick, job.everyMs));
    }, firstAfterMs));
  }
  return async () => {
    for (const t of timers) clearTimeout(t);
    await Promise.allSettled([...running]);
  };
}

/**
 * The retention job: `call public.purge_expired()` (migrations `..._usage.sql` and
 * `..._request_log_partitioned.sql`): batched deletes of the other tables, and the request log's
 * partitions created ahead and dropped when expired.
 */
export function purgeJob(dbUrl: string, everyMs: number): Job {
  return {
    name: "purge_expired",
    everyMs,
    run: async () => {
      const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
      try {
        // The simple protocol, as pg_cron runs it: the procedure commits between batches.
        const [row] = await sql.unsafe<{ deleted: string; maintained: unknown }[]>(
          "call public.purge_expired()",
        ).simple();
        return { deleted: Number(row?.deleted ?? 0), partitions: row?.maintained };
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  };
}

/**
 * The webhook sweep, called as pg_cron calls it through pg_net on hosted Supabase (docs/DEPLOY.md):
 * `POST /functions/v1/webhooks/sweep` with `X-Torvus-Cron-Secret`. Undefined without a cron
 * secret or with an interval of 0. It logs one line per outage, not one per run.
 */
export function webhookSweepJob(
  baseUrl: string,
  env: (name: string) => string | undefined,
  log: Log,
): Job | undefined {
  const secret = env("TORVUS_CRON_SECRET");
  const everyMs = Number(env("TORVUS_WEBHOOK_SWEEP_EVERY_MS") || "60000");
  if (!secret || !(everyMs > 0)) return undefined;
  let failing = false;
  return {
    name: "webhook-sweep",
    everyMs,
    async run() {
      try {
        const r = await fetch(`${baseUrl}/functions/v1/webhooks/sweep`, {
          method: "POST",
          headers: { "X-Torvus-Cron-Secret": secret },
          signal: AbortSignal.timeout(30_000),
        });
        await r.body?.cancel();
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        if (failing) log("info", "webhook sweep works again");
        failing = false;
      } catch (error) {
        if (!failing) log("warn", "webhook sweep failed", { error: String(error) });
        failing = true;
      }
      return undefined;
    },
  };
}
