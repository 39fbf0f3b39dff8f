/**
 * The webhook sweep as a job of the local stack: what pg_cron does on hosted Supabase
 * (docs/DEPLOY.md), the dev server does here, calling the webhooks function the same way pg_net
 * would: `POST /functions/v1/webhooks/sweep` with `X-Torvus-Cron-Secret`.
 *
 * Kept in one small place so it can join a scheduler of the dev server as one more job: a job is
 * a name, an interval and a `run` that settles (and never throws).
 *
 * @module
 */

/** A job of the local scheduler. */
export interface Job {
  name: string;
  everyMs: number;
  run(): Promise<void>;
}

type Log = (
  level: "info" | "warn" | "error",
  msg: string,
  fields?: Record<string, unknown>,
) => void;

/**
 * The sweep job, from the dev server's settings: undefined when there is no cron secret or the
 * interval is 0.
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
        // One line per outage, not one per run.
        if (!failing) log("warn", "webhook sweep failed", { error: String(error) });
        failing = true;
      }
    },
  };
}

/** Runs a job every `everyMs` (the next run starts when the previous one has settled). */
export function schedule(job: Job): { stop(): Promise<void> } {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let current: Promise<void> = Promise.resolve();
  const tick = () => {
    if (stopped) return;
    current = job.run().finally(() => {
      if (!stopped) timer = setTimeout(tick, job.everyMs);
    });
  };
  timer = setTimeout(tick, job.everyMs);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}
